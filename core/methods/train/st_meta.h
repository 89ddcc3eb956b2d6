#pragma once
// Reading the parameter files of the trained methods: metadata fields and
// tensors of a safetensors file, each failure an input_error naming the file
// and the field.
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/safetensors.h"

namespace attnlab {
namespace st_meta {

inline const std::string & get(const safetensors_file & f, const std::string & key) {
    auto it = f.metadata().find(key);
    if (it == f.metadata().end()) throw input_error(f.path(), key, "missing metadata field");
    return it->second;
}

inline long long integer(const safetensors_file & f, const std::string & key, long long lo, long long hi) {
    const std::string & s = get(f, key);
    char * end = nullptr;
    const long long x = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0') throw input_error(f.path(), key, "'" + s + "' is not an integer");
    if (x < lo || x > hi) throw input_error(f.path(), key, "value " + s + " out of range");
    return x;
}

inline double real(const safetensors_file & f, const std::string & key) {
    const std::string & s = get(f, key);
    char * end = nullptr;
    const double x = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(x)) throw input_error(f.path(), key, "'" + s + "' is not a finite number");
    return x;
}

inline std::string sha(const safetensors_file & f, const std::string & key) {
    const std::string & s = get(f, key);
    bool ok = s.size() == 64;
    for (char c : s) ok = ok && std::isxdigit((unsigned char) c);
    if (!ok) throw input_error(f.path(), key, "'" + s + "' is not a sha256 hex digest");
    return s;
}

inline std::vector<int> layers(const safetensors_file & f, const std::string & key) {
    const std::string & s = get(f, key);
    std::vector<int> r;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        char * end = nullptr;
        const long x = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || x < 0 || x > 100000) throw input_error(f.path(), key, "'" + s + "' is not a list of layers");
        if (!r.empty() && x <= r.back()) throw input_error(f.path(), key, "layers not ascending");
        r.push_back((int) x);
    }
    if (r.empty()) throw input_error(f.path(), key, "no layers");
    return r;
}

inline std::vector<float> tensor(const safetensors_file & f, const std::string & name, const std::vector<int64_t> & shape) {
    const st_tensor * t = f.find(name);
    if (!t) throw input_error(f.path(), name, "missing tensor");
    if (t->shape != shape) {
        std::string want, got;
        for (auto x : shape) want += (want.empty() ? "" : ",") + std::to_string(x);
        for (auto x : t->shape) got += (got.empty() ? "" : ",") + std::to_string(x);
        throw input_error(f.path(), name, "shape [" + got + "], expected [" + want + "]");
    }
    std::vector<float> v = f.to_f32(*t);
    for (float x : v) {
        if (!std::isfinite(x)) throw input_error(f.path(), name, "non-finite value");
    }
    return v;
}

inline std::string join_ints(const std::vector<int> & v) {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? "," : "") + std::to_string(v[i]);
    return r;
}

inline std::string real_str(double x) {
    std::ostringstream os;
    os.precision(17);
    os << x;
    return os.str();
}

inline st_write_tensor f32(const char * name, std::vector<int64_t> shape, const std::vector<float> & v) {
    st_write_tensor x;
    x.name = name;
    x.dtype = st_dtype::F32;
    x.shape = std::move(shape);
    x.data = v.data();
    x.nbytes = v.size() * sizeof(float);
    return x;
}

} // namespace st_meta
} // namespace attnlab
