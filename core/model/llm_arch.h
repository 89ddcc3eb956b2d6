#pragma once
// The architecture table (the idea of llama.cpp's llama-arch, written for
// this engine): per family its GGUF name (also the GGUF key prefix), the
// config.json model_type values it answers to, its tensors' names in GGUF
// (llama.cpp's) and in Hugging Face checkpoints, the config fields it reads
// and the features it may switch on. The loaders and the forward passes read
// this table and the llama_config it fills; nothing else branches on a name.
#include <cstdint>
#include <string>

namespace attnlab {

enum class llm_arch { llama, qwen2, qwen3, gemma2, gemma3, phi3 };

// Features a family has; a llama_config says which are on for one model.
enum llm_feature : uint32_t {
    LLM_FEAT_QKV_BIAS = 1u << 0,        // biases on q/k/v projections (Qwen2)
    LLM_FEAT_QK_NORM = 1u << 1,         // per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3)
    LLM_FEAT_SLIDING_WINDOW = 1u << 2,  // sliding-window layers, when the config sets a window
    LLM_FEAT_SOFTCAP = 1u << 3,         // tanh softcapping of attention scores and final logits (Gemma 2)
    LLM_FEAT_QUERY_SCALE = 1u << 4,     // scores scaled by query_pre_attn_scalar^-1/2, not head_dim^-1/2
    LLM_FEAT_EMBD_SCALE = 1u << 5,      // embeddings times sqrt(n_embd) (Gemma)
    LLM_FEAT_POST_NORMS = 1u << 6,      // RMSNorm after attention and after the MLP, before the residual add
    LLM_FEAT_NORM_PLUS_ONE = 1u << 7,   // HF norms compute x * (1 + w); llama.cpp's converter stores w + 1
    LLM_FEAT_GELU = 1u << 8,            // GeGLU (tanh GELU) instead of SwiGLU
    LLM_FEAT_FUSED_QKV = 1u << 9,       // one q|k|v tensor in both formats (Phi-3)
    LLM_FEAT_FUSED_GATE_UP = 1u << 10,  // one gate|up tensor in both formats (Phi-3)
    LLM_FEAT_GGUF_QK_PERMUTED = 1u << 11,  // GGUF q/k rows interleaved for ggml's "norm" RoPE (llama)
    LLM_FEAT_LOCAL_ROPE_BASE = 1u << 12,   // sliding layers rotate with their own base, unscaled (Gemma 3)
};

// Tensors a family may have. Names are printf patterns ("%d": the layer)
// without the ".weight" / ".bias" suffix.
enum class llm_tensor {
    token_embd, output_norm, output, rope_freqs, rope_factors_long, rope_factors_short,
    attn_norm, attn_q, attn_k, attn_v, attn_qkv, attn_out, attn_q_norm, attn_k_norm, attn_post_norm,
    ffn_norm, ffn_gate, ffn_up, ffn_gate_up, ffn_down, ffn_post_norm,
};

struct llm_tensor_name {
    llm_tensor t;
    const char * name;
};

// config.json field names a family reads beyond the common Llama ones
// (nullptr: the family has no such field).
struct llm_hf_keys {
    const char * act = "hidden_act";             // activation name field
    const char * window = nullptr;               // sliding window size
    const char * window_on = nullptr;            // a boolean that enables it (Qwen2's use_sliding_window)
    const char * window_pattern = nullptr;       // every Nth layer global (Gemma 3)
    const char * query_scale = nullptr;          // query_pre_attn_scalar
    const char * attn_softcap = nullptr;
    const char * final_softcap = nullptr;
    const char * local_rope_base = nullptr;      // rope_local_base_freq
};

struct llm_arch_info {
    llm_arch id;
    const char * name;             // GGUF general.architecture and key prefix
    const char * hf_types[3];      // config.json model_type values (nullptr-terminated)
    uint32_t features;             // always on in this family
    uint32_t optional;             // on when the file's config asks for it
    int swa_pattern;               // default sliding layers: 1 every layer, N: all but every Nth (llama.cpp's rule)
    const char * act;              // the activation the family runs (checked against the config)
    llm_hf_keys hf;
    const llm_tensor_name * gguf_names;   // terminated by name == nullptr
    const llm_tensor_name * hf_names;
};

// The family of a GGUF general.architecture or a config.json model_type;
// nullptr when none (the caller refuses naming the file and field).
const llm_arch_info * llm_arch_from_gguf(const std::string & arch);
const llm_arch_info * llm_arch_from_hf(const std::string & model_type);
const llm_arch_info & llm_arch_get(llm_arch id);
// "llama, qwen2, ..." and "llama, mistral, qwen2, ...": for refusals.
std::string llm_arch_list_gguf();
std::string llm_arch_list_hf();

// A tensor's name for layer il (ignored for global tensors); "" when the
// family has no such tensor in that format.
std::string llm_tensor_gguf(const llm_arch_info & a, llm_tensor t, int il = -1);
std::string llm_tensor_hf(const llm_arch_info & a, llm_tensor t, int il = -1);

// Human names of features, for refusals ("attention logit softcapping").
const char * llm_feature_name(llm_feature f);

// llama.cpp's sliding-layer rule: with pattern N, layer il slides unless
// il % N == N - 1; pattern 1 (or 0): every layer slides.
bool llm_layer_slides(int swa_pattern, int il);

} // namespace attnlab
