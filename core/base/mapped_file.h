#pragma once
// Read-only memory mapping of a whole file. Parsers check every offset against
// size() before touching data(), so a truncated file is an input_error, not a fault.
#include <cstddef>
#include <cstdint>
#include <string>

namespace attnlab {

class mapped_file {
public:
    explicit mapped_file(const std::string & path); // throws input_error(path, "file", ...)
    ~mapped_file();
    mapped_file(const mapped_file &) = delete;
    mapped_file & operator=(const mapped_file &) = delete;

    const uint8_t * data() const { return data_; }
    size_t size() const { return size_; }
    const std::string & path() const { return path_; }

private:
    std::string path_;
    const uint8_t * data_ = nullptr;
    size_t size_ = 0;
};

} // namespace attnlab
