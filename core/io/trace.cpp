#include "io/trace.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/read_file.h"
#include "base/half.h"
#include "base/job.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

namespace attnlab {

static const char * k_trace_key = "attnlab.trace";

const layer_qkv * qkv_capture::find_layer(int layer) const {
    for (const auto & l : layers) {
        if (l.layer == layer) return &l;
    }
    return nullptr;
}

static std::string tensor_name(int layer, const char * what) {
    return "layers." + std::to_string(layer) + "." + what;
}

static nlohmann::json info_to_json(const trace_info & t) {
    nlohmann::json j;
    j["format"] = "attnlab-trace";
    j["format_version"] = t.format_version;
    j["producer"] = t.producer;
    j["model_id"] = t.model_id;
    j["model_sha256"] = t.model_sha256;
    j["text_spec"] = t.text_spec;
    j["text_sha256"] = t.text_sha256;
    j["arch"] = t.arch;
    j["n_layer"] = t.n_layer;
    j["n_head"] = t.n_head;
    j["n_head_kv"] = t.n_head_kv;
    j["head_dim"] = t.head_dim;
    j["n_ctx_train"] = t.n_ctx_train;
    j["rope_theta"] = t.rope_theta;
    j["layers"] = t.layers;
    j["n_tokens"] = t.n_tokens();
    j["token_ids"] = t.token_ids;
    j["token_strings"] = t.token_strings;
    j["dtype"] = st_dtype_name(t.dtype);
    return j;
}

void trace_write(const std::string & path, const qkv_capture & cap, job_progress * cancel) {
    const trace_info & t = cap.info;
    if (t.dtype != st_dtype::F32 && t.dtype != st_dtype::F16 && t.dtype != st_dtype::BF16) {
        throw input_error(path, "dtype", std::string("traces are F32, F16 or BF16, not ") + st_dtype_name(t.dtype));
    }
    if (cap.layers.size() != t.layers.size()) {
        throw input_error(path, "layers", "captured layer count does not match the header");
    }
    // Converted copies must outlive the write call.
    std::vector<std::vector<uint16_t>> converted;
    std::vector<st_write_tensor> out;
    const int64_t n = t.n_tokens();
    for (const auto & l : cap.layers) {
        if (cancel && cancel->cancelled()) throw job_cancelled();
        const std::vector<float> * parts[3] = {&l.q, &l.k, &l.v};
        const char * names[3] = {"q", "k", "v"};
        for (int p = 0; p < 3; p++) {
            int heads = p == 0 ? t.n_head : t.n_head_kv;
            const std::vector<float> & src = *parts[p];
            if (int64_t(src.size()) != n * heads * t.head_dim) {
                throw input_error(path, tensor_name(l.layer, names[p]), "size does not match n_tokens x heads x head_dim");
            }
            st_write_tensor w;
            w.name = tensor_name(l.layer, names[p]);
            w.dtype = t.dtype;
            w.shape = {n, heads, t.head_dim};
            if (t.dtype == st_dtype::F32) {
                w.data = src.data();
                w.nbytes = src.size() * sizeof(float);
            } else {
                converted.emplace_back(src.size());
                std::vector<uint16_t> & c = converted.back();
                for (size_t i = 0; i < src.size(); i++) {
                    c[i] = t.dtype == st_dtype::F16 ? f32_to_fp16(src[i]) : f32_to_bf16(src[i]);
                }
                w.data = c.data();
                w.nbytes = c.size() * sizeof(uint16_t);
            }
            out.push_back(w);
        }
    }
    // w.data stays valid as `converted` grows: moving an inner vector keeps its buffer.
    safetensors_write(path, out, {{k_trace_key, info_to_json(t).dump()}}, cancel);
}

template <typename T>
static T json_get(const nlohmann::json & j, const char * key, const std::string & path) {
    auto it = j.find(key);
    if (it == j.end()) throw input_error(path, std::string(k_trace_key) + "." + key, "missing");
    try {
        return it->get<T>();
    } catch (const std::exception & e) {
        throw input_error(path, std::string(k_trace_key) + "." + key, std::string("wrong type: ") + e.what());
    }
}

static trace_info info_from_file(const safetensors_file & f) {
    const std::string & path = f.path();
    auto it = f.metadata().find(k_trace_key);
    if (it == f.metadata().end()) {
        throw input_error(path, std::string("__metadata__.") + k_trace_key, "not an AttnLab trace (key missing)");
    }
    const nlohmann::json j = json_parse(path, k_trace_key, it->second);
    if (!j.is_object()) throw input_error(path, k_trace_key, "not a JSON object");
    trace_info t;
    if (json_get<std::string>(j, "format", path) != "attnlab-trace") {
        throw input_error(path, std::string(k_trace_key) + ".format", "expected \"attnlab-trace\"");
    }
    t.format_version = json_get<int>(j, "format_version", path);
    if (t.format_version != 1) {
        throw input_error(path, std::string(k_trace_key) + ".format_version",
                          "unsupported version " + std::to_string(t.format_version) + " (this build reads 1)");
    }
    t.producer = json_get<std::string>(j, "producer", path);
    t.model_id = json_get<std::string>(j, "model_id", path);
    t.model_sha256 = json_get<std::string>(j, "model_sha256", path);
    t.text_spec = json_get<std::string>(j, "text_spec", path);
    t.text_sha256 = json_get<std::string>(j, "text_sha256", path);
    t.arch = json_get<std::string>(j, "arch", path);
    t.n_layer = json_get<int>(j, "n_layer", path);
    t.n_head = json_get<int>(j, "n_head", path);
    t.n_head_kv = json_get<int>(j, "n_head_kv", path);
    t.head_dim = json_get<int>(j, "head_dim", path);
    t.n_ctx_train = json_get<int>(j, "n_ctx_train", path);
    t.rope_theta = json_get<double>(j, "rope_theta", path);
    t.layers = json_get<std::vector<int>>(j, "layers", path);
    t.token_ids = json_get<std::vector<int32_t>>(j, "token_ids", path);
    t.token_strings = json_get<std::vector<std::string>>(j, "token_strings", path);
    std::string dt = json_get<std::string>(j, "dtype", path);
    auto field = [&](const char * k) { return std::string(k_trace_key) + "." + k; };
    if (dt == "F32") t.dtype = st_dtype::F32;
    else if (dt == "F16") t.dtype = st_dtype::F16;
    else if (dt == "BF16") t.dtype = st_dtype::BF16;
    else throw input_error(path, field("dtype"), "expected F32, F16 or BF16, got " + dt);

    // Sizes bounded so that a corrupt header cannot ask for absurd work.
    if (t.n_layer < 1 || t.n_layer > 1024) throw input_error(path, field("n_layer"), "out of range 1..1024");
    if (t.n_head < 1 || t.n_head > 1024) throw input_error(path, field("n_head"), "out of range 1..1024");
    if (t.n_head_kv < 1 || t.n_head_kv > t.n_head || t.n_head % t.n_head_kv != 0) {
        throw input_error(path, field("n_head_kv"), "must divide n_head");
    }
    if (t.head_dim < 1 || t.head_dim > 1024) throw input_error(path, field("head_dim"), "out of range 1..1024");
    if (t.token_ids.empty()) throw input_error(path, field("token_ids"), "no tokens");
    if (t.token_strings.size() != t.token_ids.size()) {
        throw input_error(path, field("token_strings"), "count differs from token_ids");
    }
    if (t.layers.empty()) throw input_error(path, field("layers"), "no captured layers");
    for (size_t i = 0; i < t.layers.size(); i++) {
        if (t.layers[i] < 0 || t.layers[i] >= t.n_layer || (i > 0 && t.layers[i] <= t.layers[i - 1])) {
            throw input_error(path, field("layers"), "indices must be ascending and below n_layer");
        }
    }
    auto n_tok = j.find("n_tokens");
    if (n_tok != j.end() && (!n_tok->is_number_integer() || n_tok->get<int64_t>() != t.n_tokens())) {
        throw input_error(path, field("n_tokens"), "does not match the number of token_ids");
    }
    return t;
}

static void tensor_to_floats(const safetensors_file & f, const trace_info & t, int layer, const char * what,
                             int heads, std::vector<float> & out) {
    std::string name = tensor_name(layer, what);
    const st_tensor * st = f.find(name);
    if (!st) throw input_error(f.path(), name, "tensor missing");
    if (st->dtype != t.dtype) {
        throw input_error(f.path(), name + ".dtype",
                          std::string("is ") + st_dtype_name(st->dtype) + ", header says " + st_dtype_name(t.dtype));
    }
    std::vector<int64_t> want = {int64_t(t.n_tokens()), int64_t(heads), int64_t(t.head_dim)};
    if (st->shape != want) {
        throw input_error(f.path(), name + ".shape",
                          "expected [" + std::to_string(want[0]) + ", " + std::to_string(want[1]) + ", " +
                              std::to_string(want[2]) + "]");
    }
    out = f.to_f32(*st);
    // NaN or Inf gave plausible numbers downstream (density 1, error 0, recall
    // 1): refused here, naming the tensor and the first bad element.
    for (size_t i = 0; i < out.size(); ++i) {
        if (std::isfinite(out[i])) continue;
        const size_t row = size_t(heads) * size_t(t.head_dim);
        throw input_error(f.path(), name,
                          std::string(std::isnan(out[i]) ? "NaN" : "Inf") + " at token " + std::to_string(i / row) + ", head " +
                              std::to_string(i % row / size_t(t.head_dim)) + ", dim " + std::to_string(i % size_t(t.head_dim)) +
                              " (a trace must hold finite values)");
    }
}

qkv_capture trace_read(const std::string & path, const std::vector<int> & only_layers) {
    safetensors_file f = safetensors_file::open(path);
    qkv_capture cap;
    cap.info = info_from_file(f);
    std::vector<int> want = cap.info.layers;
    if (!only_layers.empty()) {
        for (int l : only_layers) {
            if (std::find(want.begin(), want.end(), l) == want.end()) {
                throw input_error(path, "layers", "layer " + std::to_string(l) + " was not captured");
            }
        }
        want = only_layers;
        std::sort(want.begin(), want.end());
        want.erase(std::unique(want.begin(), want.end()), want.end());
    }
    for (int l : want) {
        layer_qkv lq;
        lq.layer = l;
        tensor_to_floats(f, cap.info, l, "q", cap.info.n_head, lq.q);
        tensor_to_floats(f, cap.info, l, "k", cap.info.n_head_kv, lq.k);
        tensor_to_floats(f, cap.info, l, "v", cap.info.n_head_kv, lq.v);
        cap.layers.push_back(std::move(lq));
    }
    cap.info.layers = want;
    return cap;
}

trace_info trace_read_info(const std::string & path) {
    safetensors_file f = safetensors_file::open(path);
    return info_from_file(f);
}

bool trace_is_trace(const std::string & path) {
    std::string head;
    if (!read_head(path, 8, &head) || head.size() < 8) return false;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = (len << 8) | (uint8_t)head[i];
    if (len < 2 || len > (100u << 20)) return false;
    if (!read_head(path, 8 + len, &head) || head.size() < 8 + len) return false;
    return head[8] == '{' && head.find(std::string("\"") + k_trace_key + "\"", 8) != std::string::npos;
}

} // namespace attnlab
