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
#include "methods/registry_trained.h"
#include "methods/train/calib.h"

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

// The metadata every trained parameter file carries: kind, version,
// provenance and trained_params' run fields.
inline void put_trained(std::map<std::string, std::string> & md, const trained_params & p) {
    md["attnlab.kind"] = p.prov.kind;
    md["format_version"] = "1";
    md["calib_text_spec"] = p.prov.calib_text_spec;
    md["calib_text_sha256"] = p.prov.calib_text_sha256;
    md["model_sha256"] = p.prov.model_sha256;
    md["model_id"] = p.prov.model_id;
    md["head_dim"] = std::to_string(p.head_dim);
    md["n_head"] = std::to_string(p.n_head);
    md["layers"] = join_ints(p.layers);
    md["steps"] = std::to_string(p.steps);
    md["lr"] = real_str(p.lr);
    md["seed"] = std::to_string(p.seed);
    md["ctx"] = std::to_string(p.ctx);
    md["windows"] = std::to_string(p.windows);
    md["final_loss"] = real_str(p.mean_final_loss());
}

// Reads them back: input_error(path, field, ...) for another kind or
// version, text that is not calibration text, or a bad field. Steps below
// min_steps are refused.
inline void read_trained(const safetensors_file & f, const std::string & kind, long long min_steps, trained_params & p) {
    const std::string & path = f.path();
    const std::string & k = get(f, "attnlab.kind");
    if (k != kind) throw input_error(path, "attnlab.kind", "'" + k + "', expected " + kind);
    if (integer(f, "format_version", 1, 1000) != 1) throw input_error(path, "format_version", "unsupported version");
    p.prov.kind = kind;
    p.prov.file = path;
    p.prov.calib_text_spec = get(f, "calib_text_spec");
    if (text_spec_part(p.prov.calib_text_spec) != text_part::calibration) {
        throw input_error(path, "calib_text_spec", "'" + p.prov.calib_text_spec + "' is not calibration text");
    }
    p.prov.calib_text_sha256 = sha(f, "calib_text_sha256");
    p.prov.model_sha256 = sha(f, "model_sha256");
    p.prov.model_id = get(f, "model_id");
    p.head_dim = (int) integer(f, "head_dim", 1, 4096);
    p.n_head = (int) integer(f, "n_head", 1, 4096);
    p.layers = layers(f, "layers");
    p.steps = (int) integer(f, "steps", min_steps, 1LL << 40);
    p.lr = real(f, "lr");
    p.seed = (uint64_t) integer(f, "seed", 0, 1LL << 62);
    p.ctx = (int) integer(f, "ctx", 2, 1 << 30);
    p.windows = (int) integer(f, "windows", 1, 1 << 30);
    real(f, "final_loss");
}

} // namespace st_meta
} // namespace attnlab
