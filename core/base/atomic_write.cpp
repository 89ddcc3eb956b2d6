#include "base/atomic_write.h"
#include "base/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace attnlab {

static std::string dir_of(const std::string & path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

atomic_file::atomic_file(const std::string & path) : path_(path), tmp_(path + ".tmp") {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw input_error(path_, "file", std::string("cannot create ") + tmp_ + ": " + std::strerror(errno));
}

atomic_file::~atomic_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!done_) ::unlink(tmp_.c_str());
}

void atomic_file::write(const void * data, size_t n) {
    const char * p = static_cast<const char *>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd_, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw input_error(path_, "file", std::string("write failed: ") + std::strerror(w < 0 ? errno : EIO));
        p += w;
        n -= size_t(w);
    }
}

void atomic_file::commit() {
    if (::fsync(fd_) != 0) throw input_error(path_, "file", std::string("fsync failed: ") + std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw input_error(path_, "file", std::string("close failed: ") + std::strerror(errno));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
        throw input_error(path_, "file", std::string("cannot rename the temporary file into place: ") + std::strerror(errno));
    }
    done_ = true;
    // Make the rename itself durable (best effort: some file systems refuse).
    const int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void) ::fsync(dfd);
        ::close(dfd);
    }
}

void write_file_atomic(const std::string & path, const void * data, size_t n) {
    atomic_file f(path);
    f.write(data, n);
    f.commit();
}

void write_file_atomic(const std::string & path, const std::string & text) {
    write_file_atomic(path, text.data(), text.size());
}

void dir_create_all(const std::string & dir, const std::string & field) {
    std::string cur = !dir.empty() && dir[0] == '/' ? "/" : "";
    size_t pos = 0;
    while (pos <= dir.size()) {
        size_t next = dir.find('/', pos);
        if (next == std::string::npos) next = dir.size();
        const std::string part = dir.substr(pos, next - pos);
        pos = next + 1;
        if (part.empty()) continue;
        cur += part + "/";
        struct stat st;
        if (::stat(cur.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) throw input_error(dir, field, cur + " exists and is not a directory");
            continue;
        }
        if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
            throw input_error(dir, field, "cannot create directory " + cur + ": " + std::strerror(errno));
        }
    }
}

} // namespace attnlab
