#include "base/json_read.h"
#include "base/error.h"
#include "base/read_file.h"

namespace attnlab {

bool json_depth_ok(const char * p, size_t n, int max_depth) {
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        const char c = p[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') in_str = true;
        else if (c == '{' || c == '[') {
            if (++depth > max_depth) return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

nlohmann::json json_parse(const std::string & file, const std::string & field, const char * p, size_t n) {
    if (!json_depth_ok(p, n)) {
        throw input_error(file, field, "JSON nested deeper than " + std::to_string(k_json_max_depth) + " levels");
    }
    try {
        return nlohmann::json::parse(p, p + n);
    } catch (const nlohmann::json::exception & e) {
        throw input_error(file, field, std::string("invalid JSON: ") + e.what());
    }
}

nlohmann::json json_parse(const std::string & file, const std::string & field, const std::string & text) {
    return json_parse(file, field, text.data(), text.size());
}

nlohmann::json json_read_file(const std::string & path, const std::string & field) {
    return json_parse(path, field, read_file(path, "file", k_json_max_file_bytes));
}

int64_t json_int_in(const std::string & file, const std::string & field, const nlohmann::json & v, int64_t lo, int64_t hi) {
    const std::string range = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > (uint64_t)hi || (int64_t)u < lo) throw input_error(file, field, "expected " + range + ", got " + std::to_string(u));
        return (int64_t)u;
    }
    if (v.is_number_integer()) {
        const int64_t x = v.get<int64_t>();
        if (x < lo || x > hi) throw input_error(file, field, "expected " + range + ", got " + std::to_string(x));
        return x;
    }
    throw input_error(file, field, "expected " + range + ", found " + std::string(v.type_name()));
}

} // namespace attnlab
