#include "base/mapped_file.h"
#include "base/error.h"
#include "base/read_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace attnlab {

mapped_file::mapped_file(const std::string & path) : path_(path) {
    uint64_t size = 0;
    const int fd = open_regular_file(path, "file", &size); // FIFOs and devices refused, never blocked on
    size_ = static_cast<size_t>(size);
    if (size_ > 0) {
        void * p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            ::close(fd);
            throw input_error(path, "file", std::string("cannot map: ") + std::strerror(errno));
        }
        data_ = static_cast<const uint8_t *>(p);
    }
    ::close(fd);
}

mapped_file::~mapped_file() {
    if (data_) ::munmap(const_cast<uint8_t *>(data_), size_);
}

} // namespace attnlab
