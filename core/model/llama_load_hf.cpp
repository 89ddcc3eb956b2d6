// Hugging Face checkpoints: the family from config.json's model_type, its
// fields (the common Llama ones plus those the table names), tensors by the
// table's names.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_read.h"
#include "base/sha256.h"
#include "io/safetensors.h"
#include "model/llama_load_impl.h"
#include "model/rope_theta.h"

namespace attnlab {

namespace {

using json = nlohmann::json;

class hf_source final : public tensor_source {
public:
    hf_source(const hf_checkpoint & ck, const llm_arch_info & a, const std::string & dir) : ck_(ck), a_(a) { file = dir; }

    std::string name(llm_tensor t, int il, bool bias = false) const override {
        const std::string n = llm_tensor_hf(a_, t, il);
        return n.empty() ? n : n + (bias ? ".bias" : ".weight");
    }
    bool has(const std::string & name) const override { return ck_.find(name) != nullptr; }
    matrix_rm matrix(const std::string & name, int rows, int cols) const override {
        const st_tensor & t = need(name);
        const std::vector<int64_t> want = {rows, cols};
        if (t.shape != want) throw input_error(file, name, "shape " + shape_str(t.shape) + ", expected " + shape_str(want));
        std::vector<float> data = ck_.to_f32(t);
        matrix_rm m(rows, cols);
        std::memcpy(m.data(), data.data(), sizeof(float) * (size_t) rows * cols);
        return m;
    }
    Eigen::VectorXf vector(const std::string & name, int n) const override {
        const st_tensor & t = need(name);
        if (t.shape != std::vector<int64_t>{n})
            throw input_error(file, name, "shape " + shape_str(t.shape) + ", expected [" + std::to_string(n) + "]");
        std::vector<float> data = ck_.to_f32(t);
        return Eigen::Map<const Eigen::VectorXf>(data.data(), n);
    }

private:
    const st_tensor & need(const std::string & name) const {
        if (name.empty()) throw input_error(file, "tensor", "this architecture has no such tensor");
        const st_tensor * t = ck_.find(name);
        if (!t) throw input_error(file, name, "missing tensor");
        return *t;
    }
    const hf_checkpoint & ck_;
    const llm_arch_info & a_;
};

// config.json fields, each error naming config.json and the field.
struct hf_config {
    std::string cfg_file;
    const json & cfg;

    static const json * find_in(const json & obj, const char * key) {
        auto it = obj.find(key);
        return (it == obj.end() || it->is_null()) ? nullptr : &*it;
    }
    const json * find(const char * key) const { return find_in(cfg, key); }
    int get_int(const char * key) const { return int_in(cfg, key, key); }
    int int_in(const json & obj, const char * key, const std::string & field) const {
        const json * v = find_in(obj, key);
        if (!v) throw input_error(cfg_file, field, "missing");
        if (!v->is_number_integer()) throw input_error(cfg_file, field, "not an integer");
        const int64_t x = v->get<int64_t>();
        if (x < 0 || x > (1 << 30)) throw input_error(cfg_file, field, "value out of range");
        return (int) x;
    }
    int get_int_or(const char * key, int def) const { return find(key) ? get_int(key) : def; }
    double num_in(const json & obj, const char * key, double def, const std::string & field) const {
        const json * v = find_in(obj, key);
        if (!v) return def;
        if (!v->is_number()) throw input_error(cfg_file, field, "not a number");
        return v->get<double>();
    }
    double num_or(const char * key, double def) const { return num_in(cfg, key, def, key); }
    bool get_bool_or(const char * key, bool def) const {
        const json * v = find(key);
        if (!v) return def;
        if (!v->is_boolean()) throw input_error(cfg_file, key, "not a boolean");
        return v->get<bool>();
    }
    std::string str_in(const json & obj, const char * key, const std::string & field) const {
        const json * v = find_in(obj, key);
        if (!v) return "";
        if (!v->is_string()) throw input_error(cfg_file, field, std::string("expected a string, found ") + v->type_name());
        return v->get<std::string>();
    }
    std::vector<float> floats_in(const json & obj, const char * key, int n, const std::string & field) const {
        const json * v = find_in(obj, key);
        if (!v || !v->is_array()) throw input_error(cfg_file, field, "missing or not an array");
        if ((int) v->size() != n)
            throw input_error(cfg_file, field, std::to_string(v->size()) + " factors, expected head_dim/2 = " + std::to_string(n));
        std::vector<float> r;
        for (const json & x : *v) {
            if (!x.is_number() || !(x.get<double>() > 0.0)) throw input_error(cfg_file, field, "factors must be positive numbers");
            r.push_back(x.get<float>());
        }
        return r;
    }
};

// The RoPE parameters of the global layers, from rope_parameters
// (transformers 5; nested per layer type for Gemma 3) or rope_scaling (< 5).
void read_rope_scaling(llama_config & c, const hf_config & h) {
    rope_scaling & s = c.rope;
    for (const char * key : {"rope_scaling", "rope_parameters"}) {
        const json * rp = h.find(key);
        if (!rp) continue;
        std::string field = key;
        if (const json * local = hf_config::find_in(*rp, "sliding_attention")) {
            const std::string lt = h.str_in(*local, "rope_type", field + ".sliding_attention.rope_type");
            if (!lt.empty() && lt != "default")
                throw input_error(h.cfg_file, field + ".sliding_attention", "RoPE type '" + lt + "' on sliding layers is not supported");
            c.rope_theta_local = (float) h.num_in(*local, "rope_theta", c.rope_theta_local, field + ".sliding_attention.rope_theta");
        }
        if (const json * full = hf_config::find_in(*rp, "full_attention")) {
            rp = full;
            field += ".full_attention";
        }
        std::string type = h.str_in(*rp, "rope_type", field + ".rope_type");
        if (type.empty()) type = h.str_in(*rp, "type", field + ".type");
        if (h.num_in(*rp, "partial_rotary_factor", 1.0, field + ".partial_rotary_factor") != 1.0)
            throw input_error(h.cfg_file, field + ".partial_rotary_factor", "partial rotary embeddings are not supported");
        if (type.empty() || type == "default") continue;
        const int orig_top = h.get_int_or("original_max_position_embeddings", c.n_ctx_train);
        s.orig_ctx = hf_config::find_in(*rp, "original_max_position_embeddings")
                         ? h.int_in(*rp, "original_max_position_embeddings", field + ".original_max_position_embeddings")
                         : orig_top;
        const double ratio = s.orig_ctx > 0 ? double(c.n_ctx_train) / s.orig_ctx : 1.0;
        s.factor = h.num_in(*rp, "factor", type == "longrope" || type == "yarn" ? ratio : 1.0, field + ".factor");
        s.attn_factor = h.num_in(*rp, "attention_factor", 0.0, field + ".attention_factor");
        if (type == "linear") {
            s.type = rope_scaling_type::linear;
        } else if (type == "dynamic") {
            s.type = rope_scaling_type::dynamic;
        } else if (type == "yarn") {
            s.type = rope_scaling_type::yarn;
            if (hf_config::find_in(*rp, "mscale") || hf_config::find_in(*rp, "mscale_all_dim"))
                throw input_error(h.cfg_file, field + ".mscale", "YaRN with mscale/mscale_all_dim is not supported");
            s.beta_fast = h.num_in(*rp, "beta_fast", 32.0, field + ".beta_fast");
            s.beta_slow = h.num_in(*rp, "beta_slow", 1.0, field + ".beta_slow");
            if (const json * t = hf_config::find_in(*rp, "truncate")) s.yarn_truncate = !t->is_boolean() || t->get<bool>();
        } else if (type == "llama3") {
            s.type = rope_scaling_type::llama3;
            s.low_freq_factor = h.num_in(*rp, "low_freq_factor", 1.0, field + ".low_freq_factor");
            s.high_freq_factor = h.num_in(*rp, "high_freq_factor", 4.0, field + ".high_freq_factor");
        } else if (type == "longrope") {
            s.type = rope_scaling_type::longrope;
            s.long_factors = h.floats_in(*rp, "long_factor", c.head_dim / 2, field + ".long_factor");
            s.short_factors = h.floats_in(*rp, "short_factor", c.head_dim / 2, field + ".short_factor");
        } else {
            throw input_error(h.cfg_file, field, "RoPE type '" + type +
                                                     "' is not supported (default, linear, dynamic, yarn, llama3, longrope)");
        }
    }
}

// Features beyond the plain Llama block: the family's row of the table and
// the config fields it names.
void read_features(llama_config & c, const llm_arch_info & a, const hf_config & h) {
    const llm_hf_keys & k = a.hf;
    c.features = a.features & ~(uint32_t) (LLM_FEAT_SLIDING_WINDOW | LLM_FEAT_SOFTCAP);
    std::string act = h.str_in(h.cfg, k.act, k.act);
    if (act.empty() && std::strcmp(k.act, "hidden_act") != 0) act = h.str_in(h.cfg, "hidden_act", "hidden_act");
    if (!act.empty() && act != a.act)
        throw input_error(h.cfg_file, k.act, "activation '" + act + "' is not supported for " + a.name + " (only " + a.act + ")");
    // Qwen2/3 have q/k/v biases by construction (Qwen2) or not at all; Llama's
    // attention_bias also puts one on o_proj, which we do not load.
    if (!(a.features & LLM_FEAT_QKV_BIAS) && h.get_bool_or("attention_bias", false))
        throw input_error(h.cfg_file, "attention_bias", "biases are not supported for " + std::string(a.name));
    if (h.get_bool_or("mlp_bias", false)) throw input_error(h.cfg_file, "mlp_bias", "biases are not supported");

    if (k.window && h.find(k.window) && (!k.window_on || h.get_bool_or(k.window_on, false))) {
        c.sliding_window = h.get_int(k.window);
        std::vector<std::string> types;
        if (const json * lt = h.find("layer_types")) {
            if (!lt->is_array()) throw input_error(h.cfg_file, "layer_types", "not an array");
            for (const json & t : *lt) {
                if (!t.is_string()) throw input_error(h.cfg_file, "layer_types", "entries must be strings");
                types.push_back(t.get<std::string>());
            }
        }
        const int pattern = k.window_pattern ? h.get_int_or(k.window_pattern, a.swa_pattern) : a.swa_pattern;
        set_swa_layers(c, pattern, types, h.cfg_file, "layer_types");
        if (c.sliding_window > 0) c.features |= LLM_FEAT_SLIDING_WINDOW;
    }
    if (k.attn_softcap) c.attn_softcap = (float) h.num_or(k.attn_softcap, 0.0);
    if (k.final_softcap) c.final_softcap = (float) h.num_or(k.final_softcap, 0.0);
    if (c.attn_softcap > 0.0f || c.final_softcap > 0.0f) c.features |= LLM_FEAT_SOFTCAP;
    if (k.query_scale && h.find(k.query_scale)) {
        const double qs = h.num_or(k.query_scale, 0.0);
        if (!(qs > 0.0)) throw input_error(h.cfg_file, k.query_scale, "must be positive");
        c.attn_scale = (float) (1.0 / std::sqrt(qs));
    }
    if (c.has(LLM_FEAT_EMBD_SCALE)) c.embd_scale = std::sqrt((float) c.n_embd);
    if (c.has(LLM_FEAT_LOCAL_ROPE_BASE))
        c.rope_theta_local = (float) (k.local_rope_base ? h.num_or(k.local_rope_base, 10000.0) : 10000.0);
}

// sha256 over config.json followed by every shard the checkpoint uses, in
// sorted file-name order (tools/export_trace.py computes the same digest).
std::string hf_sha256(const hf_checkpoint & ck) {
    sha256 h;
    h.update(ck.config_json().data(), ck.config_json().size());
    std::vector<char> buf(1 << 20);
    std::vector<std::string> shards = ck.shard_paths();
    std::sort(shards.begin(), shards.end());
    for (const std::string & p : shards) {
        std::ifstream in(p, std::ios::binary);
        if (!in) throw input_error(p, "file", "cannot open");
        while (in) {
            in.read(buf.data(), (std::streamsize) buf.size());
            if (in.gcount() > 0) h.update(buf.data(), (size_t) in.gcount());
        }
    }
    return h.hex_digest();
}

} // namespace

llama_model load_hf(const std::string & dir, job_progress * progress) {
    hf_checkpoint ck = hf_checkpoint::open(dir);
    const std::string cfg_file = dir + "/config.json";
    const json cfg = json_parse(cfg_file, "json", ck.config_json());
    if (!cfg.is_object()) throw input_error(cfg_file, "json", "not an object");
    const hf_config h{cfg_file, cfg};

    llama_model m;
    llama_config & c = m.cfg;
    const json * mt = h.find("model_type");
    if (!mt) throw input_error(cfg_file, "model_type", "missing");
    if (!mt->is_string()) throw input_error(cfg_file, "model_type", std::string("expected a string, found ") + mt->type_name());
    c.arch = mt->get<std::string>();
    const llm_arch_info * a = llm_arch_from_hf(c.arch);
    if (!a) throw input_error(cfg_file, "model_type", "unsupported model type '" + c.arch + "' (supported: " + llm_arch_list_hf() + ")");
    c.arch_id = a->id;
    hf_source src(ck, *a, dir);
    if (a->features & LLM_FEAT_NORM_PLUS_ONE) src.norm_offset = 1.0f;

    c.n_layer = h.get_int("num_hidden_layers");
    c.n_embd = h.get_int("hidden_size");
    c.n_head = h.get_int("num_attention_heads");
    c.n_head_kv = h.get_int_or("num_key_value_heads", c.n_head);
    c.n_ff = h.get_int("intermediate_size");
    c.n_vocab = h.get_int("vocab_size");
    c.n_ctx_train = h.get_int_or("max_position_embeddings", 0);
    if (c.n_head > 0 && !h.find("head_dim") && c.n_embd % c.n_head != 0)
        throw input_error(cfg_file, "num_attention_heads", "does not divide hidden_size");
    c.head_dim = h.get_int_or("head_dim", c.n_head > 0 ? c.n_embd / c.n_head : 0);
    c.rms_eps = (float) h.num_or("rms_norm_eps", 1e-6);
    c.tied_embeddings = h.get_bool_or("tie_word_embeddings", a->features & LLM_FEAT_EMBD_SCALE);
    if (h.num_or("partial_rotary_factor", 1.0) != 1.0)
        throw input_error(cfg_file, "partial_rotary_factor", "partial rotary embeddings are not supported");
    c.rope_theta = (float) rope_theta_hf(cfg, cfg_file);   // one reading, shared with model_info

    const config_fields fields{"num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
                               "intermediate_size", "vocab_size",  "head_dim"};
    check_config(c, cfg_file, fields);   // shapes first: the features below size vectors by them
    read_features(c, *a, h);
    read_rope_scaling(c, h);
    check_config(c, cfg_file, fields);

    uint64_t weight_bytes = 0;
    for (const std::string & n : ck.tensor_names()) weight_bytes += ck.find(n)->nbytes;
    check_budget(c, cfg_file, fields, weight_bytes, 8);
    load_weights(m, src, progress);

    m.source_path = dir;
    m.source_sha256 = hf_sha256(ck);
    if (const json * n = h.find("_name_or_path"); n && n->is_string()) m.model_id = n->get<std::string>();
    return m;
}

} // namespace attnlab
