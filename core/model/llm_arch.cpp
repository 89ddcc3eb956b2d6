#include "model/llm_arch.h"

#include <cstdio>

namespace attnlab {

namespace {

// GGUF names are llama.cpp's (src/llama-arch.cpp); one list serves every
// family, since a family simply lacks the tensors it does not have. Phi-3's
// fused gate|up tensor is stored as ffn_up with 2 * n_ff rows.
const llm_tensor_name k_gguf_common[] = {
    {llm_tensor::token_embd, "token_embd"},
    {llm_tensor::output_norm, "output_norm"},
    {llm_tensor::output, "output"},
    {llm_tensor::rope_freqs, "rope_freqs"},
    {llm_tensor::rope_factors_long, "rope_factors_long"},
    {llm_tensor::rope_factors_short, "rope_factors_short"},
    {llm_tensor::attn_norm, "blk.%d.attn_norm"},
    {llm_tensor::attn_q, "blk.%d.attn_q"},
    {llm_tensor::attn_k, "blk.%d.attn_k"},
    {llm_tensor::attn_v, "blk.%d.attn_v"},
    {llm_tensor::attn_qkv, "blk.%d.attn_qkv"},
    {llm_tensor::attn_out, "blk.%d.attn_output"},
    {llm_tensor::attn_q_norm, "blk.%d.attn_q_norm"},
    {llm_tensor::attn_k_norm, "blk.%d.attn_k_norm"},
    {llm_tensor::attn_post_norm, "blk.%d.post_attention_norm"},
    {llm_tensor::ffn_norm, "blk.%d.ffn_norm"},
    {llm_tensor::ffn_gate, "blk.%d.ffn_gate"},
    {llm_tensor::ffn_up, "blk.%d.ffn_up"},
    {llm_tensor::ffn_gate_up, "blk.%d.ffn_up"},
    {llm_tensor::ffn_down, "blk.%d.ffn_down"},
    {llm_tensor::ffn_post_norm, "blk.%d.post_ffw_norm"},
    {llm_tensor::token_embd, nullptr},
};

// Hugging Face names of the Llama-like families (Llama, Mistral, Qwen2/3).
const llm_tensor_name k_hf_llama[] = {
    {llm_tensor::token_embd, "model.embed_tokens"},
    {llm_tensor::output_norm, "model.norm"},
    {llm_tensor::output, "lm_head"},
    {llm_tensor::attn_norm, "model.layers.%d.input_layernorm"},
    {llm_tensor::attn_q, "model.layers.%d.self_attn.q_proj"},
    {llm_tensor::attn_k, "model.layers.%d.self_attn.k_proj"},
    {llm_tensor::attn_v, "model.layers.%d.self_attn.v_proj"},
    {llm_tensor::attn_out, "model.layers.%d.self_attn.o_proj"},
    {llm_tensor::attn_q_norm, "model.layers.%d.self_attn.q_norm"},
    {llm_tensor::attn_k_norm, "model.layers.%d.self_attn.k_norm"},
    {llm_tensor::ffn_norm, "model.layers.%d.post_attention_layernorm"},
    {llm_tensor::ffn_gate, "model.layers.%d.mlp.gate_proj"},
    {llm_tensor::ffn_up, "model.layers.%d.mlp.up_proj"},
    {llm_tensor::ffn_down, "model.layers.%d.mlp.down_proj"},
    {llm_tensor::token_embd, nullptr},
};

// Gemma 2/3: "post_attention_layernorm" is the norm after attention (before
// the residual add); the MLP has its own pre and post norms.
const llm_tensor_name k_hf_gemma[] = {
    {llm_tensor::token_embd, "model.embed_tokens"},
    {llm_tensor::output_norm, "model.norm"},
    {llm_tensor::output, "lm_head"},
    {llm_tensor::attn_norm, "model.layers.%d.input_layernorm"},
    {llm_tensor::attn_q, "model.layers.%d.self_attn.q_proj"},
    {llm_tensor::attn_k, "model.layers.%d.self_attn.k_proj"},
    {llm_tensor::attn_v, "model.layers.%d.self_attn.v_proj"},
    {llm_tensor::attn_out, "model.layers.%d.self_attn.o_proj"},
    {llm_tensor::attn_q_norm, "model.layers.%d.self_attn.q_norm"},
    {llm_tensor::attn_k_norm, "model.layers.%d.self_attn.k_norm"},
    {llm_tensor::attn_post_norm, "model.layers.%d.post_attention_layernorm"},
    {llm_tensor::ffn_norm, "model.layers.%d.pre_feedforward_layernorm"},
    {llm_tensor::ffn_gate, "model.layers.%d.mlp.gate_proj"},
    {llm_tensor::ffn_up, "model.layers.%d.mlp.up_proj"},
    {llm_tensor::ffn_down, "model.layers.%d.mlp.down_proj"},
    {llm_tensor::ffn_post_norm, "model.layers.%d.post_feedforward_layernorm"},
    {llm_tensor::token_embd, nullptr},
};

const llm_tensor_name k_hf_phi3[] = {
    {llm_tensor::token_embd, "model.embed_tokens"},
    {llm_tensor::output_norm, "model.norm"},
    {llm_tensor::output, "lm_head"},
    {llm_tensor::attn_norm, "model.layers.%d.input_layernorm"},
    {llm_tensor::attn_qkv, "model.layers.%d.self_attn.qkv_proj"},
    {llm_tensor::attn_out, "model.layers.%d.self_attn.o_proj"},
    {llm_tensor::ffn_norm, "model.layers.%d.post_attention_layernorm"},
    {llm_tensor::ffn_gate_up, "model.layers.%d.mlp.gate_up_proj"},
    {llm_tensor::ffn_down, "model.layers.%d.mlp.down_proj"},
    {llm_tensor::token_embd, nullptr},
};

llm_hf_keys keys_llama() {
    llm_hf_keys k;
    k.window = "sliding_window";   // Mistral's; Llama has none
    return k;
}
llm_hf_keys keys_qwen2() {
    llm_hf_keys k;
    k.window = "sliding_window";
    k.window_on = "use_sliding_window";
    return k;
}
llm_hf_keys keys_gemma(bool gemma3) {
    llm_hf_keys k;
    k.act = "hidden_activation";
    k.window = "sliding_window";
    k.query_scale = "query_pre_attn_scalar";
    k.attn_softcap = "attn_logit_softcapping";
    k.final_softcap = "final_logit_softcapping";
    if (gemma3) {
        k.window_pattern = "sliding_window_pattern";
        k.local_rope_base = "rope_local_base_freq";
    }
    return k;
}

const uint32_t k_gemma_common = LLM_FEAT_QUERY_SCALE | LLM_FEAT_EMBD_SCALE | LLM_FEAT_POST_NORMS |
                                LLM_FEAT_NORM_PLUS_ONE | LLM_FEAT_GELU | LLM_FEAT_SLIDING_WINDOW;

const llm_arch_info k_archs[] = {
    // Mistral is Llama with an optional sliding window; llama.cpp's converter
    // writes it as "llama" (the window key is ours: llama.attention.sliding_window).
    {llm_arch::llama, "llama", {"llama", "mistral", nullptr}, LLM_FEAT_GGUF_QK_PERMUTED, LLM_FEAT_SLIDING_WINDOW, 1,
     "silu", keys_llama(), k_gguf_common, k_hf_llama},
    {llm_arch::qwen2, "qwen2", {"qwen2", nullptr, nullptr}, LLM_FEAT_QKV_BIAS, LLM_FEAT_SLIDING_WINDOW, 1, "silu",
     keys_qwen2(), k_gguf_common, k_hf_llama},
    {llm_arch::qwen3, "qwen3", {"qwen3", nullptr, nullptr}, LLM_FEAT_QK_NORM, LLM_FEAT_SLIDING_WINDOW, 1, "silu",
     keys_qwen2(), k_gguf_common, k_hf_llama},
    {llm_arch::gemma2, "gemma2", {"gemma2", nullptr, nullptr}, k_gemma_common | LLM_FEAT_SOFTCAP, 0, 2,
     "gelu_pytorch_tanh", keys_gemma(false), k_gguf_common, k_hf_gemma},
    {llm_arch::gemma3, "gemma3", {"gemma3_text", nullptr, nullptr},
     k_gemma_common | LLM_FEAT_QK_NORM | LLM_FEAT_LOCAL_ROPE_BASE, LLM_FEAT_SOFTCAP, 6, "gelu_pytorch_tanh",
     keys_gemma(true), k_gguf_common, k_hf_gemma},
    {llm_arch::phi3, "phi3", {"phi3", nullptr, nullptr}, LLM_FEAT_FUSED_QKV | LLM_FEAT_FUSED_GATE_UP,
     LLM_FEAT_SLIDING_WINDOW, 1, "silu", keys_llama(), k_gguf_common, k_hf_phi3},
};

std::string name_of(const llm_tensor_name * names, llm_tensor t, int il) {
    for (const llm_tensor_name * n = names; n->name; ++n) {
        if (n->t != t) continue;
        char buf[128];
        std::snprintf(buf, sizeof buf, n->name, il);
        return buf;
    }
    return "";
}

} // namespace

const llm_arch_info * llm_arch_from_gguf(const std::string & arch) {
    for (const llm_arch_info & a : k_archs)
        if (arch == a.name) return &a;
    return nullptr;
}

const llm_arch_info * llm_arch_from_hf(const std::string & model_type) {
    for (const llm_arch_info & a : k_archs)
        for (const char * t : a.hf_types)
            if (t && model_type == t) return &a;
    return nullptr;
}

const llm_arch_info & llm_arch_get(llm_arch id) {
    for (const llm_arch_info & a : k_archs)
        if (a.id == id) return a;
    return k_archs[0];
}

std::string llm_arch_list_gguf() {
    std::string r;
    for (const llm_arch_info & a : k_archs) r += (r.empty() ? "" : ", ") + std::string(a.name);
    return r;
}

std::string llm_arch_list_hf() {
    std::string r;
    for (const llm_arch_info & a : k_archs)
        for (const char * t : a.hf_types)
            if (t) r += (r.empty() ? "" : ", ") + std::string(t);
    return r;
}

std::string llm_tensor_gguf(const llm_arch_info & a, llm_tensor t, int il) {
    // The fused gate|up tensor and the separate up tensor share a GGUF name;
    // a family has one or the other.
    const bool fused = a.features & LLM_FEAT_FUSED_GATE_UP;
    if ((t == llm_tensor::ffn_gate_up && !fused) || ((t == llm_tensor::ffn_up || t == llm_tensor::ffn_gate) && fused))
        return "";
    const bool fused_qkv = a.features & LLM_FEAT_FUSED_QKV;
    if ((t == llm_tensor::attn_qkv) != fused_qkv &&
        (t == llm_tensor::attn_qkv || t == llm_tensor::attn_q || t == llm_tensor::attn_k || t == llm_tensor::attn_v))
        return "";
    return name_of(a.gguf_names, t, il);
}

std::string llm_tensor_hf(const llm_arch_info & a, llm_tensor t, int il) { return name_of(a.hf_names, t, il); }

const char * llm_feature_name(llm_feature f) {
    switch (f) {
        case LLM_FEAT_QKV_BIAS: return "q/k/v biases";
        case LLM_FEAT_QK_NORM: return "q/k RMSNorm";
        case LLM_FEAT_SLIDING_WINDOW: return "sliding-window attention";
        case LLM_FEAT_SOFTCAP: return "logit softcapping";
        case LLM_FEAT_QUERY_SCALE: return "query pre-attention scale";
        case LLM_FEAT_EMBD_SCALE: return "embedding scaling";
        case LLM_FEAT_POST_NORMS: return "post-attention/post-MLP norms";
        case LLM_FEAT_NORM_PLUS_ONE: return "(1 + w) RMSNorm";
        case LLM_FEAT_GELU: return "GeGLU";
        case LLM_FEAT_FUSED_QKV: return "fused QKV";
        case LLM_FEAT_FUSED_GATE_UP: return "fused gate/up";
        case LLM_FEAT_GGUF_QK_PERMUTED: return "interleaved q/k rows";
        case LLM_FEAT_LOCAL_ROPE_BASE: return "local RoPE base";
    }
    return "?";
}

bool llm_layer_slides(int swa_pattern, int il) {
    if (swa_pattern <= 1) return true;
    return il % swa_pattern < swa_pattern - 1;
}

} // namespace attnlab
