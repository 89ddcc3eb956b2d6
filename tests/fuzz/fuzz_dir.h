#pragma once
// For inputs read from a fixed name inside a directory (config.json of a
// checkpoint, manifest.json of a snapshot): one private temporary directory
// per process, and the input written to `name` in it before each run.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

// The directory (created once; "" if mkdtemp fails), in /dev/shm where there
// is one: a disk-backed /tmp made each run wait on the file system (300 runs/s).
inline const std::string & fuzz_dir(const char * tag) {
    static std::string dir = [tag] {
        struct stat st {};
        const bool shm = ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0;
        std::string t = std::string(shm ? "/dev/shm" : "/tmp") + "/attnlab_" + tag + "_XXXXXX";
        return mkdtemp(&t[0]) ? t : std::string();
    }();
    // removed when the process exits (libFuzzer ends with exit())
    static const struct remover {
        const std::string & d;
        ~remover() {
            std::error_code ec;
            if (!d.empty()) std::filesystem::remove_all(d, ec);
        }
    } rm{dir};
    (void)rm;
    return dir;
}

inline bool fuzz_write(const std::string & path, const uint8_t * data, size_t size) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(data), (std::streamsize)size);
    return bool(out);
}
