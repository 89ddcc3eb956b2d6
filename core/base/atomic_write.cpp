#include "base/atomic_write.h"
#include "base/error.h"
#include "base/job.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace attnlab {

static std::string dir_of(const std::string & path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

static std::string base_of(const std::string & path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

static const char k_tmp_mark[] = ".attnlab-tmp-";

std::string atomic_temp_name(const std::string & path, long pid) { return path + k_tmp_mark + std::to_string(pid); }

bool atomic_temp_parse(const std::string & name, long * pid) {
    const size_t at = name.rfind(k_tmp_mark);
    if (at == std::string::npos || at == 0) return false;
    const std::string digits = name.substr(at + sizeof k_tmp_mark - 1);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
    *pid = std::strtol(digits.c_str(), nullptr, 10);
    return *pid > 0;
}

int atomic_temp_cleanup(const std::string & dir, const std::string & target) {
    DIR * d = ::opendir(dir.c_str());
    if (!d) return 0;
    int removed = 0;
    while (const dirent * e = ::readdir(d)) {
        const std::string name = e->d_name;
        long pid = 0;
        if (!atomic_temp_parse(name, &pid)) continue;
        if (!target.empty() && name.compare(0, target.size() + sizeof k_tmp_mark - 1, target + k_tmp_mark) != 0) continue;
        if (pid == long(::getpid())) continue;
        if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;   // alive (or not ours to judge)
        const std::string full = dir + "/" + name;
        struct stat st;
        if (::lstat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;   // we only ever write regular files
        if (::unlink(full.c_str()) == 0) removed++;
    }
    ::closedir(d);
    return removed;
}

atomic_file::atomic_file(const std::string & path, job_progress * cancel)
    : path_(path), tmp_(atomic_temp_name(path, long(::getpid()))), cancel_(cancel) {
    atomic_temp_cleanup(dir_of(path_), base_of(path_));   // a killed run's leftover of this file
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
        // pieces of at most 8 MB, each after a look at the cancel request
        if (cancel_ && cancel_->cancelled()) throw job_cancelled();
        const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t(8) << 20));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw input_error(path_, "file", std::string("write failed: ") + std::strerror(w < 0 ? errno : EIO));
        p += w;
        n -= size_t(w);
    }
}

void atomic_file::commit() {
    if (cancel_ && cancel_->cancelled()) throw job_cancelled();
    if (::fsync(fd_) != 0) throw input_error(path_, "file", std::string("fsync failed: ") + std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw input_error(path_, "file", std::string("close failed: ") + std::strerror(errno));
    // the last point where a cancel leaves PATH as it was
    if (cancel_ && cancel_->cancelled()) throw job_cancelled();
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

void write_file_atomic(const std::string & path, const void * data, size_t n, job_progress * cancel) {
    atomic_file f(path, cancel);
    f.write(data, n);
    f.commit();
}

void write_file_atomic(const std::string & path, const std::string & text, job_progress * cancel) {
    write_file_atomic(path, text.data(), text.size(), cancel);
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
