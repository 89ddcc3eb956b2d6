#pragma once
// The fuzz targets' input: written into an in-memory file (memfd) and opened
// by path, so the readers run exactly as on disk (mmap, bounds, everything).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

// "/proc/self/fd/N" holding exactly data[0, size); "" if the memfd fails.
inline std::string fuzz_input_path(const char * name, const uint8_t * data, size_t size) {
    static int fd = -1;
    if (fd < 0) fd = memfd_create(name, 0);
    if (fd < 0 || ftruncate(fd, 0) != 0) return "";
    size_t off = 0;
    while (off < size) {
        const ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
        if (w <= 0) return "";
        off += (size_t)w;
    }
    return "/proc/self/fd/" + std::to_string(fd);
}
