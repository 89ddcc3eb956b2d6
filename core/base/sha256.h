#pragma once
// SHA-256 of bytes and files: models, texts and traces are identified by it in
// traces and snapshots.
#include <cstddef>
#include <cstdint>
#include <string>

namespace attnlab {

class sha256 {
public:
    sha256();
    void update(const void * data, size_t n);
    std::string hex_digest(); // finalises; call once

private:
    void compress(const uint8_t * block);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

std::string sha256_hex(const void * data, size_t n);
std::string sha256_hex(const std::string & s);
std::string sha256_file(const std::string & path); // throws input_error

} // namespace attnlab
