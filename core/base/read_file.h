#pragma once
// The one way the program opens an input file: only a regular file is read.
// A FIFO or a device is refused with an input_error before any read (a FIFO
// would block forever, /dev/zero never ends), and every whole-file read has a
// byte cap checked before allocating.
#include <cstdint>
#include <string>

namespace attnlab {

// A read-only descriptor of path, which must be a regular file; its size in
// *size. The open does not block on a FIFO (O_NONBLOCK, cleared afterwards).
// Throws input_error(path, field, ...). The caller closes the descriptor.
int open_regular_file(const std::string & path, const std::string & field, uint64_t * size);

// The whole of a regular file, refused when larger than max_bytes.
std::string read_file(const std::string & path, const std::string & field, uint64_t max_bytes);

// Up to n bytes from the start of path into *out, for format sniffing: false
// when path does not exist or is a directory, input_error when it is a FIFO,
// a device or a socket (sniffing must not block either).
bool read_head(const std::string & path, size_t n, std::string * out);

// The cap on a text input (corpus files, -t, scenario texts): 64 MiB by
// default, or $ATTNLAB_MAX_TEXT_BYTES (a positive byte count).
uint64_t text_max_bytes();
// A text input, refused above text_max_bytes() with an error naming the
// variable that raises the cap.
std::string read_text_input(const std::string & path, const std::string & field);

// Cap for JSON inputs (tokenizer.json, config.json, scenarios, manifests).
constexpr uint64_t k_json_max_file_bytes = 256ull << 20;

} // namespace attnlab
