#include "base/dir_lock.h"
#include "base/atomic_write.h"
#include "base/error.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace attnlab {

std::string dir_lock_path(const std::string & path, dir_lock::target_kind kind) {
    if (kind == dir_lock::directory) return path + "/.attnlab-lock";
    return path + ".attnlab-lock";
}

static std::string read_fd_text(int fd) {
    char buf[512];
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string s = n > 0 ? std::string(buf, size_t(n)) : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
}

static std::string holder_text() {
    char host[256] = "unknown";
    if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown");
    host[sizeof host - 1] = '\0';
    char when[32] = "";
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    if (::gmtime_r(&t, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return "pid " + std::to_string(::getpid()) + " host " + host + " since " + when + "\n";
}

dir_lock::dir_lock(const std::string & path, target_kind kind, const std::string & field)
    : lock_path_(dir_lock_path(path, kind)) {
    if (kind == directory) dir_create_all(path, field);
    // A releasing holder unlinks the file before it unlocks: a lock won on an
    // unlinked file is retried on the new one.
    for (int attempt = 0; attempt < 100; ++attempt) {
        const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) throw input_error(path, field, "cannot create the lock " + lock_path_ + ": " + std::strerror(errno));
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            const std::string holder = read_fd_text(fd);
            ::close(fd);
            if (err == EWOULDBLOCK) {
                throw input_error(path, field, "in use by another writer (" + (holder.empty() ? std::string("a process starting up") : holder) +
                                                   "; lock " + lock_path_ + ")");
            }
            throw input_error(path, field, "cannot lock " + lock_path_ + ": " + std::strerror(err));
        }
        struct stat a, b;
        if (::fstat(fd, &a) != 0 || ::stat(lock_path_.c_str(), &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
            ::close(fd);
            continue;
        }
        // Ours now; any text is a dead holder's (its lock went with it).
        const std::string me = holder_text();
        if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != ssize_t(me.size())) {
            ::close(fd);
            throw input_error(path, field, "cannot write the lock " + lock_path_ + ": " + std::strerror(errno));
        }
        fd_ = fd;
        if (kind == directory) atomic_temp_cleanup(path);
        return;
    }
    throw input_error(path, field, "cannot lock " + lock_path_ + ": it keeps being replaced");
}

dir_lock::~dir_lock() {
    if (fd_ < 0) return;
    ::unlink(lock_path_.c_str());   // before unlocking: see the constructor
    ::close(fd_);
}

dir_lock::dir_lock(dir_lock && o) noexcept : lock_path_(std::move(o.lock_path_)), fd_(o.fd_) { o.fd_ = -1; }

} // namespace attnlab
