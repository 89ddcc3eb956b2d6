#pragma once
// Checked integer arithmetic for values read from files. Every product of
// header values (heads x head dim, layers x bytes per layer, ...) goes through
// these, so an overflow is an input_error naming the file and the field, never
// a wrapped size that a later allocation or index trusts.
#include <cstdint>
#include <limits>
#include <string>

#include "base/error.h"

namespace attnlab {

// a * b, or input_error(file, field, ...) if it overflows T.
template <class T>
T checked_mul(T a, T b, const std::string & file, const std::string & field) {
    T r;
    if (__builtin_mul_overflow(a, b, &r)) {
        throw input_error(file, field, std::to_string(a) + " x " + std::to_string(b) + " overflows");
    }
    return r;
}

// a + b, or input_error(file, field, ...) if it overflows T.
template <class T>
T checked_add(T a, T b, const std::string & file, const std::string & field) {
    T r;
    if (__builtin_add_overflow(a, b, &r)) {
        throw input_error(file, field, std::to_string(a) + " + " + std::to_string(b) + " overflows");
    }
    return r;
}

// v as an int (the type Eigen dimensions and the model's shapes use), or
// input_error if it does not fit.
inline int checked_int(int64_t v, const std::string & file, const std::string & field) {
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
        throw input_error(file, field, std::to_string(v) + " does not fit a 32-bit int");
    }
    return (int)v;
}

// a * b as an int: heads x head dim and the like.
inline int checked_mul_int(int a, int b, const std::string & file, const std::string & field) {
    return checked_int(checked_mul<int64_t>(a, b, file, field), file, field);
}

} // namespace attnlab
