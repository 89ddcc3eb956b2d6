#pragma once
// The one JSON parser entry for everything the program reads (tokenizer.json,
// config.json, safetensors headers, scenarios, snapshot manifests, presets):
// nesting is checked before parsing, so a deeply nested file is an input_error
// naming the file, never a stack overflow, and parse errors name the file.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace attnlab {

constexpr int k_json_max_depth = 64; // real inputs nest < 10 deep

// Whether [p, p + n) nests objects/arrays at most max_depth deep (a linear
// scan outside strings; malformed text is the parser's to report).
bool json_depth_ok(const char * p, size_t n, int max_depth = k_json_max_depth);

// Parses text; input_error(file, field, ...) when too deep or invalid.
nlohmann::json json_parse(const std::string & file, const std::string & field, const char * p, size_t n);
nlohmann::json json_parse(const std::string & file, const std::string & field, const std::string & text);

// Reads (regular files only, size-capped) and parses a JSON file.
nlohmann::json json_read_file(const std::string & path, const std::string & field);

// A JSON integer in [lo, hi], or input_error naming the field: a number that
// is not an integer, or one out of range (4294967297 is out of range, never
// wrapped to 1).
int64_t json_int_in(const std::string & file, const std::string & field, const nlohmann::json & v, int64_t lo, int64_t hi);

} // namespace attnlab
