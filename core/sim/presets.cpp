#include "sim/presets.h"
#include "base/data_path.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/read_file.h"
#include "base/json_read.h"


namespace attnlab {

using nlohmann::json;

int64_t model_preset::layer_matmul_params() const {
    const int64_t d = hidden;
    return d * (q_dim() + 2 * kv_dim()) + q_dim() * d + 3 * d * int64_t(ffn);
}

int64_t model_preset::layer_params() const {
    int64_t p = layer_matmul_params() + 2 * int64_t(hidden); // two RMSNorm weights
    if (qkv_bias) p += q_dim() + 2 * kv_dim();
    return p;
}

int64_t model_preset::total_params() const {
    const int64_t emb = int64_t(vocab) * hidden;
    return int64_t(n_layer) * layer_params() + emb * (tied_embeddings ? 1 : 2) + hidden;
}

std::string preset_dir() {
    const char * env = std::getenv("ATTNLAB_PRESETS");
    if (env && *env) return env;
    return attnlab::data_path("assets/presets");
}

std::string sim_read_text(const std::string & path) {
    return read_file(path, "file", k_json_max_file_bytes);
}

namespace {

json parse_object(const std::string & text, const std::string & file, const char * kind) {
    const json j = json_parse(file, "json", text);
    if (!j.is_object()) throw input_error(file, "json", "top level must be an object");
    if (!j.contains("kind") || !j["kind"].is_string()) throw input_error(file, "kind", std::string("missing; expected \"") + kind + "\"");
    if (j["kind"].get<std::string>() != kind) {
        throw input_error(file, "kind", "is \"" + j["kind"].get<std::string>() + "\", expected \"" + kind + "\"");
    }
    if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty()) {
        throw input_error(file, "name", "missing or not a non-empty string");
    }
    return j;
}

std::string str_or(const json & j, const char * key, const std::string & def = "") {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

// {"value": number, "source": "non-empty"}: every number names where it comes from.
double sourced_number(const json & j, const std::string & file, const char * key, bool required, double def,
                      std::map<std::string, std::string> & sources) {
    auto it = j.find(key);
    if (it == j.end()) {
        if (required) throw input_error(file, key, "missing");
        return def;
    }
    if (!it->is_object()) throw input_error(file, key, "must be an object {\"value\": number, \"source\": text}");
    auto v = it->find("value");
    if (v == it->end() || !v->is_number()) throw input_error(file, std::string(key) + ".value", "missing or not a number");
    auto s = it->find("source");
    if (s == it->end() || !s->is_string() || s->get<std::string>().empty()) {
        throw input_error(file, std::string(key) + ".source", "missing: every number names its source");
    }
    sources[key] = s->get<std::string>();
    double x = v->get<double>();
    if (!std::isfinite(x)) throw input_error(file, std::string(key) + ".value", "not finite");
    return x;
}

int sourced_int(const json & j, const std::string & file, const char * key, bool required, int lo, int64_t hi,
                std::map<std::string, std::string> & sources) {
    double x = sourced_number(j, file, key, required, 0.0, sources);
    if (!required && !j.contains(key)) return 0;
    if (x != std::floor(x)) throw input_error(file, std::string(key) + ".value", "must be an integer");
    if (x < lo || x > double(hi)) {
        throw input_error(file, std::string(key) + ".value",
                          std::to_string(int64_t(x)) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return int(x);
}

bool sourced_bool(const json & j, const std::string & file, const char * key, std::map<std::string, std::string> & sources) {
    auto it = j.find(key);
    if (it == j.end()) return false;
    if (!it->is_object() || !it->contains("value") || !(*it)["value"].is_boolean()) {
        throw input_error(file, key, "must be {\"value\": true|false, \"source\": text}");
    }
    sources[key] = str_or(*it, "source", "");
    return (*it)["value"].get<bool>();
}

bool looks_like_path(const std::string & s) {
    return s.find('/') != std::string::npos || (s.size() > 5 && s.compare(s.size() - 5, 5, ".json") == 0);
}

std::string resolve(const std::string & name_or_path, const std::string & dir, const char * kind) {
    if (looks_like_path(name_or_path)) return name_or_path;
    const std::string base = dir.empty() ? preset_dir() : dir;
    std::string path = base + "/" + kind + "/" + name_or_path + ".json";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        std::string known;
        for (const std::string & s : preset_list(kind, base)) known += (known.empty() ? "" : ", ") + s;
        throw input_error(name_or_path, kind, "no such preset in " + base + "/" + kind + " (known: " + (known.empty() ? "none" : known) + ")");
    }
    return path;
}

} // namespace

model_preset model_preset_parse(const std::string & text, const std::string & file) {
    json j = parse_object(text, file, "model");
    model_preset m;
    m.file = file;
    m.name = j["name"].get<std::string>();
    m.repo = str_or(j, "repo");
    m.source = str_or(j, "source");
    m.note = str_or(j, "note");
    m.n_layer = sourced_int(j, file, "n_layer", true, 1, 1000, m.sources);
    m.hidden = sourced_int(j, file, "hidden", true, 1, 1 << 20, m.sources);
    m.n_head = sourced_int(j, file, "n_head", true, 1, 4096, m.sources);
    m.n_head_kv = sourced_int(j, file, "n_head_kv", true, 1, 4096, m.sources);
    m.head_dim = sourced_int(j, file, "head_dim", true, 1, 4096, m.sources);
    m.ffn = sourced_int(j, file, "ffn", true, 1, 1 << 24, m.sources);
    m.vocab = sourced_int(j, file, "vocab", true, 1, 1 << 24, m.sources);
    m.context = sourced_int(j, file, "context", true, 1, 1 << 30, m.sources);
    m.sliding_window = sourced_int(j, file, "sliding_window", false, 0, 1 << 30, m.sources);
    m.tied_embeddings = sourced_bool(j, file, "tied_embeddings", m.sources);
    m.qkv_bias = sourced_bool(j, file, "qkv_bias", m.sources);
    if (m.n_head % m.n_head_kv != 0) {
        throw input_error(file, "n_head_kv", std::to_string(m.n_head_kv) + " does not divide n_head " + std::to_string(m.n_head));
    }
    return m;
}

hw_preset hw_preset_parse(const std::string & text, const std::string & file) {
    json j = parse_object(text, file, "hardware");
    hw_preset h;
    h.file = file;
    h.name = j["name"].get<std::string>();
    h.note = str_or(j, "note");
    h.precision = str_or(j, "precision", "bf16");
    if (h.precision != "bf16" && h.precision != "fp16" && h.precision != "f32") {
        throw input_error(file, "precision", "\"" + h.precision + "\" is not one of bf16, fp16, f32");
    }
    h.dense_tflops = sourced_number(j, file, "dense_tflops", true, 0.0, h.sources);
    h.mem_bw_gbs = sourced_number(j, file, "mem_bw", true, 0.0, h.sources);
    h.mem_gb = sourced_number(j, file, "mem", true, 0.0, h.sources);
    h.sparse_2to4_tflops = sourced_number(j, file, "sparse_2to4_tflops", false, 0.0, h.sources);
    if (!(h.dense_tflops > 0.0 && h.dense_tflops < 1e6)) throw input_error(file, "dense_tflops.value", "must be in (0, 1e6) TFLOP/s");
    if (!(h.mem_bw_gbs > 0.0 && h.mem_bw_gbs < 1e6)) throw input_error(file, "mem_bw.value", "must be in (0, 1e6) GB/s");
    if (!(h.mem_gb > 0.0 && h.mem_gb < 1e6)) throw input_error(file, "mem.value", "must be in (0, 1e6) GB");
    // The datasheets print the 2:4 figure in large type; a dense value close to
    // it is almost certainly the sparse one copied by mistake.
    if (h.sparse_2to4_tflops > 0.0 && h.dense_tflops > 0.75 * h.sparse_2to4_tflops) {
        throw input_error(file, "dense_tflops.value",
                          "is not below 3/4 of sparse_2to4_tflops: the dense peak looks like the 2:4-sparsity figure");
    }
    if (j.contains("device_match")) {
        if (!j["device_match"].is_array()) throw input_error(file, "device_match", "must be an array of strings");
        for (const auto & s : j["device_match"]) {
            if (!s.is_string()) throw input_error(file, "device_match", "must be an array of strings");
            h.device_match.push_back(s.get<std::string>());
        }
    }
    if (j.contains("measured")) {
        const json & m = j["measured"];
        if (!m.is_object() || !m.contains("date") || !m["date"].is_string()) {
            throw input_error(file, "measured.date", "a measured preset must give the date it was measured");
        }
        h.measured = true;
        h.measured_date = m["date"].get<std::string>();
    }
    return h;
}

model_preset model_preset_load(const std::string & name_or_path, const std::string & dir) {
    std::string path = resolve(name_or_path, dir, "models");
    return model_preset_parse(sim_read_text(path), path);
}

hw_preset hw_preset_load(const std::string & name_or_path, const std::string & dir) {
    std::string path = resolve(name_or_path, dir, "hardware");
    return hw_preset_parse(sim_read_text(path), path);
}

std::vector<std::string> preset_list(const std::string & kind, const std::string & dir) {
    std::vector<std::string> out;
    const std::string base = (dir.empty() ? preset_dir() : dir) + "/" + kind;
    DIR * d = opendir(base.c_str());
    if (!d) return out;
    while (dirent * e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) out.push_back(n.substr(0, n.size() - 5));
    }
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace attnlab
