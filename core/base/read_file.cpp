#include "base/read_file.h"
#include "base/error.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace attnlab {

namespace {

const char * kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

std::string read_capped(const std::string & path, const std::string & field, uint64_t max_bytes, const char * hint) {
    uint64_t size = 0;
    const int fd = open_regular_file(path, field, &size);
    if (size > max_bytes) {
        ::close(fd);
        throw input_error(path, field, "file is " + std::to_string(size) + " bytes, over the " + std::to_string(max_bytes) +
                                           "-byte limit" + hint);
    }
    std::string s((size_t)size, '\0');
    size_t got = 0;
    while (got < s.size()) {
        const ssize_t n = ::read(fd, &s[got], s.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; // the file shrank: keep what was there
        got += (size_t)n;
    }
    ::close(fd);
    s.resize(got);
    return s;
}

} // namespace

int open_regular_file(const std::string & path, const std::string & field, uint64_t * size) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw input_error(path, field, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        throw input_error(path, field, std::string("cannot stat: ") + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw input_error(path, field, std::string("is ") + kind_of(st.st_mode) + ", not a regular file");
    }
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size) *size = (uint64_t)st.st_size;
    return fd;
}

std::string read_file(const std::string & path, const std::string & field, uint64_t max_bytes) {
    return read_capped(path, field, max_bytes, "");
}

bool read_head(const std::string & path, size_t n, std::string * out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return false;
    uint64_t size = 0;
    const int fd = open_regular_file(path, "file", &size);
    out->assign((size_t)std::min<uint64_t>(n, size), '\0');
    size_t got = 0;
    while (got < out->size()) {
        const ssize_t k = ::pread(fd, &(*out)[got], out->size() - got, (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    ::close(fd);
    out->resize(got);
    return true;
}

uint64_t text_max_bytes() {
    const char * env = std::getenv("ATTNLAB_MAX_TEXT_BYTES");
    if (env && *env) {
        char * end = nullptr;
        errno = 0;
        const unsigned long long v = std::strtoull(env, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || env[0] == '-') {
            throw input_error("$ATTNLAB_MAX_TEXT_BYTES", "value", std::string("expected a positive byte count, got '") + env + "'");
        }
        return (uint64_t)v;
    }
    return 64ull << 20;
}

std::string read_text_input(const std::string & path, const std::string & field) {
    return read_capped(path, field, text_max_bytes(), " for texts (raise it with ATTNLAB_MAX_TEXT_BYTES)");
}

} // namespace attnlab
