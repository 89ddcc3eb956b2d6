// Loading a model from GGUF (llama_load_gguf.cpp) or a Hugging Face checkpoint
// (llama_load_hf.cpp): what both share. Weights end dequantised to float32 in
// PyTorch layout ([out_features, in_features]) with Q/K rows in Hugging Face
// (rotate-half) order, whatever family the architecture table says it is.
#include "model/llama_load_impl.h"

#include <cmath>
#include <sys/stat.h>

#include "base/checked.h"
#include "base/error.h"
#include "base/job.h"
#include "io/gguf.h"

namespace attnlab {

namespace {

// llama.cpp's converter reorders the rows of q_proj/k_proj inside each head
// so ggml's interleaved RoPE (pairs 2i, 2i+1) matches HF's rotate-half RoPE
// (pairs i, i+hd/2): GGUF row 2*i + j holds HF row j*hd/2 + i. Undo it.
void unpermute_qk_rows(matrix_rm & w, int n_heads, int head_dim) {
    const int half = head_dim / 2;
    matrix_rm src = w;
    for (int h = 0; h < n_heads; ++h) {
        const int base = h * head_dim;
        for (int i = 0; i < half; ++i)
            for (int j = 0; j < 2; ++j) w.row(base + j * half + i) = src.row(base + 2 * i + j);
    }
}

void unpermute_qk_bias(Eigen::VectorXf & b, int n_heads, int head_dim) {
    matrix_rm m(b.size(), 1);
    for (Eigen::Index i = 0; i < b.size(); ++i) m(i, 0) = b(i);
    unpermute_qk_rows(m, n_heads, head_dim);
    for (Eigen::Index i = 0; i < b.size(); ++i) b(i) = m(i, 0);
}

Eigen::VectorXf norm_of(const tensor_source & src, llm_tensor t, int il, int n) {
    Eigen::VectorXf w = src.vector(src.name(t, il), n);
    if (src.norm_offset != 0.0f) w.array() += src.norm_offset;
    return w;
}

void load_layer(llama_layer & L, const llama_config & c, const tensor_source & src, int il) {
    const int E = c.n_embd, hd = c.head_dim, q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd, F = c.n_ff;
    L.attn_norm = norm_of(src, llm_tensor::attn_norm, il, E);
    if (c.has(LLM_FEAT_FUSED_QKV)) {
        const matrix_rm qkv = src.matrix(src.name(llm_tensor::attn_qkv, il), q_dim + 2 * kv_dim, E);
        L.wq = qkv.topRows(q_dim);
        L.wk = qkv.middleRows(q_dim, kv_dim);
        L.wv = qkv.bottomRows(kv_dim);
    } else {
        L.wq = src.matrix(src.name(llm_tensor::attn_q, il), q_dim, E);
        L.wk = src.matrix(src.name(llm_tensor::attn_k, il), kv_dim, E);
        L.wv = src.matrix(src.name(llm_tensor::attn_v, il), kv_dim, E);
    }
    if (c.has(LLM_FEAT_QKV_BIAS)) {
        L.bq = src.vector(src.name(llm_tensor::attn_q, il, true), q_dim);
        L.bk = src.vector(src.name(llm_tensor::attn_k, il, true), kv_dim);
        L.bv = src.vector(src.name(llm_tensor::attn_v, il, true), kv_dim);
    }
    L.wo = src.matrix(src.name(llm_tensor::attn_out, il), E, q_dim);
    if (src.qk_permuted) {
        unpermute_qk_rows(L.wq, c.n_head, hd);
        unpermute_qk_rows(L.wk, c.n_head_kv, hd);
        if (L.bq.size()) {
            unpermute_qk_bias(L.bq, c.n_head, hd);
            unpermute_qk_bias(L.bk, c.n_head_kv, hd);
        }
    }
    if (c.has(LLM_FEAT_QK_NORM)) {
        L.q_norm = norm_of(src, llm_tensor::attn_q_norm, il, hd);
        L.k_norm = norm_of(src, llm_tensor::attn_k_norm, il, hd);
    }
    if (c.has(LLM_FEAT_POST_NORMS)) {
        L.attn_post_norm = norm_of(src, llm_tensor::attn_post_norm, il, E);
        L.ffn_post_norm = norm_of(src, llm_tensor::ffn_post_norm, il, E);
    }
    L.ffn_norm = norm_of(src, llm_tensor::ffn_norm, il, E);
    if (c.has(LLM_FEAT_FUSED_GATE_UP)) {
        const matrix_rm gu = src.matrix(src.name(llm_tensor::ffn_gate_up, il), 2 * F, E);
        L.w_gate = gu.topRows(F);
        L.w_up = gu.bottomRows(F);
    } else {
        L.w_gate = src.matrix(src.name(llm_tensor::ffn_gate, il), F, E);
        L.w_up = src.matrix(src.name(llm_tensor::ffn_up, il), F, E);
    }
    L.w_down = src.matrix(src.name(llm_tensor::ffn_down, il), E, F);
}

} // namespace

std::string shape_str(const std::vector<int64_t> & s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

void check_config(const llama_config & c, const std::string & file, const config_fields & f) {
    auto pos = [&](int v, const char * field) {
        if (v <= 0 || v > (1 << 24)) throw input_error(file, field, "must be a positive integer, got " + std::to_string(v));
    };
    pos(c.n_layer, f.layer);
    pos(c.n_embd, f.embd);
    pos(c.n_head, f.head);
    pos(c.n_head_kv, f.head_kv);
    pos(c.n_ff, f.ff);
    pos(c.n_vocab, f.vocab);
    pos(c.head_dim, f.head_dim);
    if (c.n_head % c.n_head_kv != 0)
        throw input_error(file, f.head_kv, "query heads (" + std::to_string(c.n_head) +
                                               ") must be a multiple of key/value heads (" + std::to_string(c.n_head_kv) + ")");
    if (c.head_dim % 2 != 0) throw input_error(file, f.head_dim, "head dimension must be even for RoPE");
    if (!(c.rms_eps > 0.0f) || !std::isfinite(c.rms_eps)) throw input_error(file, "rms_eps", "must be positive");
    if (!(c.rope_theta > 1.0f) || !std::isfinite(c.rope_theta)) throw input_error(file, "rope_theta", "must be > 1");
    if (c.sliding_window < 0) throw input_error(file, "sliding_window", "must not be negative");
    for (float v : {c.attn_softcap, c.final_softcap, c.attn_scale})
        if (!(v >= 0.0f) || !std::isfinite(v)) throw input_error(file, "softcapping/attention scale", "must be finite and >= 0");
    const rope_scaling & s = c.rope;
    if (s.type != rope_scaling_type::none && (!(s.factor > 0.0) || !std::isfinite(s.factor)))
        throw input_error(file, "rope scaling factor", "must be positive");
    const bool needs_orig = s.type == rope_scaling_type::yarn || s.type == rope_scaling_type::longrope ||
                            (s.type == rope_scaling_type::llama3 && s.freq_factors.empty());
    if (needs_orig && s.orig_ctx <= 0)
        throw input_error(file, "original_max_position_embeddings", std::string("RoPE scaling '") +
                                                                        rope_scaling_name(s.type) + "' needs a positive value");
    if (s.type == rope_scaling_type::llama3 && s.freq_factors.empty() && !(s.high_freq_factor > s.low_freq_factor))
        throw input_error(file, "high_freq_factor", "must exceed low_freq_factor");
}

void check_budget(const llama_config & c, const std::string & file, const config_fields & f, uint64_t weight_bytes,
                  int64_t min_bits) {
    const int q_dim = checked_mul_int(c.n_head, c.head_dim, file, f.head);
    const int kv_dim = checked_mul_int(c.n_head_kv, c.head_dim, file, f.head_kv);
    // per layer: two norms, q and o (q_dim x n_embd), k and v (kv_dim x n_embd), three FFN matrices
    const int64_t e = c.n_embd;
    int64_t per_layer = checked_mul<int64_t>(e, 2 * (int64_t) q_dim + 2 * (int64_t) kv_dim, file, f.layer);
    per_layer = checked_add<int64_t>(per_layer, checked_mul<int64_t>(3 * e, c.n_ff, file, f.layer), file, f.layer);
    per_layer = checked_add<int64_t>(per_layer, 2 * e, file, f.layer);
    const int64_t weights = checked_mul<int64_t>(per_layer, c.n_layer, file, f.layer);
    const int64_t min_bytes = checked_mul<int64_t>(weights / 8, min_bits, file, f.layer);
    if ((uint64_t) min_bytes > weight_bytes) {
        throw input_error(file, f.layer, std::to_string(c.n_layer) + " layers of " + std::to_string(per_layer) +
                                             " weights need at least " + std::to_string(min_bytes) + " bytes, the file holds " +
                                             std::to_string(weight_bytes));
    }
}

void set_swa_layers(llama_config & c, int pattern, const std::vector<std::string> & layer_types, const std::string & file,
                    const char * field) {
    c.swa_layers.assign(c.n_layer, 0);
    if (!layer_types.empty()) {
        if ((int) layer_types.size() != c.n_layer)
            throw input_error(file, field, std::to_string(layer_types.size()) + " entries for " + std::to_string(c.n_layer) +
                                               " layers");
        for (int il = 0; il < c.n_layer; ++il) {
            const std::string & t = layer_types[il];
            if (t != "sliding_attention" && t != "full_attention")
                throw input_error(file, field, "layer type '" + t + "' is not supported (sliding_attention, full_attention)");
            c.swa_layers[il] = t == "sliding_attention";
        }
        return;
    }
    for (int il = 0; il < c.n_layer; ++il) c.swa_layers[il] = llm_layer_slides(pattern, il);
}

void load_weights(llama_model & m, const tensor_source & src, job_progress * progress) {
    const llama_config & c = m.cfg;
    m.tok_embd = src.matrix(src.name(llm_tensor::token_embd, -1), c.n_vocab, c.n_embd);
    m.output_norm = norm_of(src, llm_tensor::output_norm, -1, c.n_embd);
    if (!c.tied_embeddings) m.output = src.matrix(src.name(llm_tensor::output, -1), c.n_vocab, c.n_embd);
    m.layers.resize(c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) {
        job_step(progress, (double) il / c.n_layer, "loading layer " + std::to_string(il));
        load_layer(m.layers[il], c, src, il);
    }
}

llama_model llama_model_load(const std::string & path, job_progress * progress) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) throw input_error(path, "path", "no such file or directory");
    llama_model m;
    if (S_ISDIR(st.st_mode)) {
        m = load_hf(path, progress);
    } else if (gguf_is_gguf(path)) {
        m = load_gguf(path, progress);
    } else {
        throw input_error(path, "format", "neither a GGUF file nor a Hugging Face checkpoint directory");
    }
    job_step(progress, 1.0, "model loaded");
    return m;
}

void llama_check_ctx(const llama_model & m, int ctx, int min_ctx, const std::string & file) {
    if (ctx < min_ctx || ctx > m.cfg.n_ctx_train) {
        throw input_error(file.empty() ? m.source_path : file, "ctx",
                          std::to_string(ctx) + " is outside " + std::to_string(min_ctx) + ".." +
                              std::to_string(m.cfg.n_ctx_train) + " (the model's context)");
    }
}

} // namespace attnlab
