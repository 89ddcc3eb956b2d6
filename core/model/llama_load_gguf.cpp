// GGUF: the family from general.architecture, its hyperparameters under the
// family's key prefix, tensors by llama.cpp's names (model/llm_arch.cpp).
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/sha256.h"
#include "io/gguf.h"
#include "model/llama_load_impl.h"
#include "model/rope_theta.h"

namespace attnlab {

namespace {

class gguf_source final : public tensor_source {
public:
    gguf_source(const gguf_file & f, const llm_arch_info & a, const std::string & path) : f_(f), a_(a) { file = path; }

    std::string name(llm_tensor t, int il, bool bias = false) const override {
        const std::string n = llm_tensor_gguf(a_, t, il);
        return n.empty() ? n : n + (bias ? ".bias" : ".weight");
    }
    bool has(const std::string & name) const override { return f_.find_tensor(name) != nullptr; }

    // A linear weight, GGUF ne = [in, out], i.e. row-major [out, in].
    matrix_rm matrix(const std::string & name, int rows, int cols) const override {
        const gguf_tensor & t = need(name);
        const std::vector<int64_t> want = {cols, rows};
        if (t.ne != want) throw input_error(file, name, "shape (ggml ne) " + shape_str(t.ne) + ", expected " + shape_str(want));
        std::vector<float> data = f_.tensor_to_f32(t);
        matrix_rm m(rows, cols);
        std::memcpy(m.data(), data.data(), sizeof(float) * (size_t) rows * cols);
        return m;
    }
    Eigen::VectorXf vector(const std::string & name, int n) const override {
        const gguf_tensor & t = need(name);
        if (t.ne != std::vector<int64_t>{n})
            throw input_error(file, name, "shape (ggml ne) " + shape_str(t.ne) + ", expected [" + std::to_string(n) + "]");
        std::vector<float> data = f_.tensor_to_f32(t);
        return Eigen::Map<const Eigen::VectorXf>(data.data(), n);
    }
    std::vector<float> floats(const std::string & name, int n) const {
        const Eigen::VectorXf v = vector(name, n);
        return std::vector<float>(v.data(), v.data() + n);
    }

private:
    const gguf_tensor & need(const std::string & name) const {
        if (name.empty()) throw input_error(file, "tensor", "this architecture has no such tensor");
        const gguf_tensor * t = f_.find_tensor(name);
        if (!t) throw input_error(file, name, "missing tensor");
        return *t;
    }
    const gguf_file & f_;
    const llm_arch_info & a_;
};

struct gguf_keys {
    const gguf_file & f;
    const std::string & path;
    std::string pre;   // "llama."

    int get_int(const std::string & key) const {
        if (!f.find(key)) throw input_error(path, key, "missing");
        const uint64_t v = f.get_u64(key);
        if (v > (1u << 30)) throw input_error(path, key, "value out of range: " + std::to_string(v));
        return (int) v;
    }
    int get_int_or(const std::string & key, int def) const { return f.find(key) ? get_int(key) : def; }
    double num_or(const std::string & key, double def) const { return f.get_f64_or(key, def); }
};

// A feature the file asks for that the family does not have is refused.
void need_feature(const llm_arch_info & a, llm_feature feat, const std::string & path, const std::string & key) {
    if (!((a.features | a.optional) & feat))
        throw input_error(path, key, std::string(llm_feature_name(feat)) + " is not supported for architecture '" + a.name + "'");
}

// RoPE scaling: llama.cpp's rope.scaling.* keys, rope_freqs (Llama 3.1's
// factors) and rope_factors_long/short (Phi-3's longrope).
void read_rope_scaling(llama_config & c, const gguf_keys & k, const gguf_source & src) {
    rope_scaling & s = c.rope;
    const std::string type = k.f.get_str_or(k.pre + "rope.scaling.type", "none");
    const double factor = k.num_or(k.pre + "rope.scaling.factor", 1.0);
    s.orig_ctx = k.get_int_or(k.pre + "rope.scaling.original_context_length", 0);
    const double attn = k.num_or(k.pre + "rope.scaling.attn_factor", 0.0);
    const int half = c.head_dim / 2;
    if (type == "linear") {
        s.type = rope_scaling_type::linear;
        s.factor = factor;
    } else if (type == "yarn") {
        s.type = rope_scaling_type::yarn;
        s.factor = factor;
        s.beta_fast = k.num_or(k.pre + "rope.scaling.yarn_beta_fast", 32.0);
        s.beta_slow = k.num_or(k.pre + "rope.scaling.yarn_beta_slow", 1.0);
        // llama.cpp multiplies its attn_factor into YaRN's own mscale.
        if (attn > 0.0) s.attn_factor = attn * (factor <= 1.0 ? 1.0 : 0.1 * std::log(factor) + 1.0);
    } else if (type != "none" && type != "longrope") {
        throw input_error(k.path, k.pre + "rope.scaling.type", "RoPE scaling '" + type + "' is not supported");
    }
    const std::string freqs = llm_tensor_gguf(llm_arch_get(c.arch_id), llm_tensor::rope_freqs) + ".weight";
    if (src.has(freqs)) {
        if (s.type != rope_scaling_type::none) throw input_error(k.path, freqs, "given with rope.scaling.type " + type);
        s.type = rope_scaling_type::llama3;
        s.freq_factors = src.floats(freqs, half);
        for (float v : s.freq_factors)
            if (!(v > 0.0f) || !std::isfinite(v)) throw input_error(k.path, freqs, "factors must be positive");
    }
    const std::string lf = src.name(llm_tensor::rope_factors_long, -1), sf = src.name(llm_tensor::rope_factors_short, -1);
    if (src.has(lf) || type == "longrope") {
        s.type = rope_scaling_type::longrope;
        s.long_factors = src.floats(lf, half);
        s.short_factors = src.has(sf) ? src.floats(sf, half) : s.long_factors;
        for (const auto * v : {&s.long_factors, &s.short_factors})
            for (float x : *v)
                if (!(x > 0.0f) || !std::isfinite(x)) throw input_error(k.path, lf, "factors must be positive");
        if (attn > 0.0) s.attn_factor = attn;
        s.factor = s.orig_ctx > 0 && c.n_ctx_train > s.orig_ctx ? double(c.n_ctx_train) / s.orig_ctx : 1.0;
    }
}

// Features beyond the plain Llama block, from the family's table row and
// the keys that switch them on.
void read_features(llama_config & c, const llm_arch_info & a, const gguf_keys & k) {
    c.features = a.features & ~(uint32_t) (LLM_FEAT_SLIDING_WINDOW | LLM_FEAT_SOFTCAP);
    const std::string win_key = k.pre + "attention.sliding_window";
    if (k.f.find(win_key)) {
        need_feature(a, LLM_FEAT_SLIDING_WINDOW, k.path, win_key);
        c.sliding_window = k.get_int(win_key);
    }
    if (c.sliding_window > 0) {
        c.features |= LLM_FEAT_SLIDING_WINDOW;
        set_swa_layers(c, k.get_int_or(k.pre + "attention.sliding_window_pattern", a.swa_pattern), {}, k.path, "");
    }
    for (const char * key : {"attn_logit_softcapping", "final_logit_softcapping"}) {
        if (!k.f.find(k.pre + key)) continue;
        need_feature(a, LLM_FEAT_SOFTCAP, k.path, k.pre + key);
        (key[0] == 'a' ? c.attn_softcap : c.final_softcap) = (float) k.num_or(k.pre + key, 0.0);
    }
    if (c.attn_softcap > 0.0f || c.final_softcap > 0.0f) c.features |= LLM_FEAT_SOFTCAP;
    if (k.f.find(k.pre + "attention.scale")) {
        need_feature(a, LLM_FEAT_QUERY_SCALE, k.path, k.pre + "attention.scale");
        c.attn_scale = (float) k.num_or(k.pre + "attention.scale", 0.0);
    }
    if (c.has(LLM_FEAT_EMBD_SCALE)) c.embd_scale = std::sqrt((float) c.n_embd);
    // llama.cpp's Gemma 3 local base is a constant unless the file says.
    if (c.has(LLM_FEAT_LOCAL_ROPE_BASE)) c.rope_theta_local = (float) k.num_or(k.pre + "rope.freq_base_swa", 10000.0);
}

} // namespace

llama_model load_gguf(const std::string & path, job_progress * progress) {
    gguf_file f = gguf_file::open(path);
    llama_model m;
    llama_config & c = m.cfg;
    if (!f.find("general.architecture")) throw input_error(path, "general.architecture", "missing");
    c.arch = f.get_str("general.architecture");
    const llm_arch_info * a = llm_arch_from_gguf(c.arch);
    if (!a)
        throw input_error(path, "general.architecture",
                          "unsupported architecture '" + c.arch + "' (supported: " + llm_arch_list_gguf() + ")");
    c.arch_id = a->id;
    const gguf_keys k{f, path, std::string(a->name) + "."};
    const std::string & p = k.pre;
    gguf_source src(f, *a, path);
    src.qk_permuted = a->features & LLM_FEAT_GGUF_QK_PERMUTED;

    c.n_layer = k.get_int(p + "block_count");
    c.n_embd = k.get_int(p + "embedding_length");
    c.n_head = k.get_int(p + "attention.head_count");
    c.n_head_kv = k.get_int_or(p + "attention.head_count_kv", c.n_head);
    c.n_ff = k.get_int(p + "feed_forward_length");
    c.n_ctx_train = k.get_int_or(p + "context_length", 0);
    c.head_dim = k.get_int_or(p + "attention.key_length", c.n_head > 0 ? c.n_embd / c.n_head : 0);
    c.rope_theta = (float) rope_theta_gguf(f, c.arch);   // one reading, shared with model_info
    c.rms_eps = (float) f.get_f64_or(p + "attention.layer_norm_rms_epsilon", 1e-5);

    const std::string embd_name = src.name(llm_tensor::token_embd, -1);
    const gguf_tensor * embd = f.find_tensor(embd_name);
    if (!embd) throw input_error(path, embd_name, "missing tensor");
    c.n_vocab = f.find(p + "vocab_size") ? k.get_int(p + "vocab_size") : (embd->ne.size() == 2 ? (int) embd->ne[1] : 0);

    if (c.n_head > 0 && c.n_embd % c.n_head != 0 && !f.find(p + "attention.key_length"))
        throw input_error(path, p + "attention.head_count", "does not divide " + p + "embedding_length");
    const std::string f_layer = p + "block_count", f_embd = p + "embedding_length", f_head = p + "attention.head_count",
                      f_head_kv = p + "attention.head_count_kv", f_ff = p + "feed_forward_length",
                      f_vocab = p + "vocab_size", f_hd = p + "attention.key_length";
    const config_fields fields{f_layer.c_str(), f_embd.c_str(), f_head.c_str(), f_head_kv.c_str(),
                               f_ff.c_str(),    f_vocab.c_str(), f_hd.c_str()};
    check_config(c, path, fields);   // shapes first: the features below size vectors by them
    if (k.get_int_or(p + "attention.value_length", c.head_dim) != c.head_dim)
        throw input_error(path, p + "attention.value_length", "differs from key_length (unsupported)");
    if (k.get_int_or(p + "rope.dimension_count", c.head_dim) != c.head_dim)
        throw input_error(path, p + "rope.dimension_count", "partial rotary embeddings are not supported");
    read_features(c, *a, k);
    read_rope_scaling(c, k, src);
    check_config(c, path, fields);
    check_budget(c, path, fields, f.file_size(), 1);

    c.tied_embeddings = !f.find_tensor(src.name(llm_tensor::output, -1));
    load_weights(m, src, progress);

    m.source_path = path;
    m.source_sha256 = sha256_file(path);
    m.model_id = f.get_str_or("general.name", "");
    return m;
}

} // namespace attnlab
