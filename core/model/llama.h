#pragma once
// Llama-family model: weights from GGUF or a Hugging Face safetensors
// checkpoint, dequantised to float32 at load, and the CPU forward pass.
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "model/llm_arch.h"

namespace attnlab {

class attention_hook;
class job_progress;

// RoPE scaling as transformers' rope_type (and llama.cpp's rope.scaling.*).
enum class rope_scaling_type { none, linear, dynamic, yarn, llama3, longrope };
const char * rope_scaling_name(rope_scaling_type t);

struct rope_scaling {
    rope_scaling_type type = rope_scaling_type::none;
    double factor = 1.0;
    int orig_ctx = 0;                        // original_max_position_embeddings
    double low_freq_factor = 1.0, high_freq_factor = 4.0;   // llama3
    double beta_fast = 32.0, beta_slow = 1.0;               // yarn
    bool yarn_truncate = true;
    double attn_factor = 0.0;                // cos/sin multiplier; 0: the scheme's own
    std::vector<float> freq_factors;         // GGUF rope_freqs (llama3): inv_freq / f
    std::vector<float> long_factors, short_factors;         // longrope
};

struct llama_config {
    std::string arch = "llama";              // general.architecture or model_type, as the file says
    llm_arch arch_id = llm_arch::llama;      // its row of the architecture table (llm_arch.h)
    uint32_t features = 0;                   // LLM_FEAT_* on for this model
    int n_layer = 0;
    int n_embd = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    int n_ff = 0;
    int n_vocab = 0;
    int n_ctx_train = 0;
    float rope_theta = 10000.0f;
    float rms_eps = 1e-5f;
    bool tied_embeddings = true;
    float attn_scale = 0.0f;                 // score scale; 0: 1/sqrt(head_dim)
    float attn_softcap = 0.0f;               // scores -> cap * tanh(scores / cap); 0: off
    float final_softcap = 0.0f;              // the same on the logits
    float embd_scale = 1.0f;                 // embeddings are multiplied by it
    int sliding_window = 0;                  // keys i - j < window on sliding layers; 0: none
    std::vector<uint8_t> swa_layers;         // per layer: 1 = a sliding layer
    float rope_theta_local = 0.0f;           // sliding layers' RoPE base (unscaled); 0: rope_theta
    rope_scaling rope;

    bool has(llm_feature f) const { return (features & f) != 0; }
    // The window of layer il (0: full causal attention).
    int layer_window(int il) const {
        return sliding_window > 0 && il >= 0 && il < (int) swa_layers.size() && swa_layers[il] ? sliding_window : 0;
    }
    float score_scale() const;               // attn_scale, or 1/sqrt(head_dim)
};

using matrix_rm = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Linear weights are stored as in PyTorch: [out_features, in_features].
// wq/wk rows are in Hugging Face order (rotate-half RoPE); the GGUF loader
// undoes the converter's interleaving permutation so both sources agree.
// Optional parts are empty when the model lacks them (see llama_config::features).
// Norm weights are the multipliers the forward pass uses: Gemma's HF (w - 1)
// convention is undone at load.
struct llama_layer {
    Eigen::VectorXf attn_norm;
    matrix_rm wq, wk, wv, wo;
    Eigen::VectorXf bq, bk, bv;              // LLM_FEAT_QKV_BIAS
    Eigen::VectorXf q_norm, k_norm;          // LLM_FEAT_QK_NORM, [head_dim]
    Eigen::VectorXf attn_post_norm;          // LLM_FEAT_POST_NORMS
    Eigen::VectorXf ffn_norm;
    matrix_rm w_gate, w_up, w_down;
    Eigen::VectorXf ffn_post_norm;           // LLM_FEAT_POST_NORMS
};

struct llama_model {
    llama_config cfg;
    matrix_rm tok_embd;          // [n_vocab, n_embd]
    Eigen::VectorXf output_norm;
    matrix_rm output;            // [n_vocab, n_embd]; empty when tied to tok_embd
    std::vector<llama_layer> layers;
    std::string source_path;     // file or checkpoint directory
    std::string source_sha256;   // of the GGUF file, or of config.json + shards
    std::string model_id;        // general.name, or _name_or_path of config.json

    const matrix_rm & output_matrix() const { return output.size() ? output : tok_embd; }
};

// Loads a GGUF file or a Hugging Face directory (config.json + *.safetensors).
// Throws input_error naming the file and field for anything it cannot use
// (non-Llama architecture, missing tensors, wrong shapes, unknown types).
llama_model llama_model_load(const std::string & path, job_progress * progress = nullptr);

// The one check of a requested context length against the model's own:
// input_error (FILE: ctx: "N is outside MIN..n_ctx_train (the model's
// context)") when ctx is outside [min_ctx, n_ctx_train]. file defaults to
// the model's path.
void llama_check_ctx(const llama_model & m, int ctx, int min_ctx = 2, const std::string & file = "");

// A model of config c's shapes with uniform random weights in [-0.05, 0.05]
// and unit norms: for benchmarks on machines without the model file (a
// forward pass costs the same whatever the weights are).
llama_model llama_model_random(const llama_config & c);
// The default model's shapes (SmolLM2-135M: 30 layers, 576 wide, 9/3 heads of 64).
llama_config llama_config_smollm2_135m();

struct forward_options {
    attention_hook * hook = nullptr;   // capture or sparse replacement
    job_progress * progress = nullptr; // per layer; cancel throws job_cancelled
    bool all_logits = true;            // false: only the last position's logits
};

// Runs tokens [0, n) from position 0 (no KV cache: a fresh window each call).
// Returns logits, row-major [n_tokens (or 1), n_vocab].
matrix_rm llama_forward(const llama_model & m, const std::vector<int32_t> & tokens,
                        const forward_options & opt = {});

// Floating-point operations (2 per multiply-add) of the matmuls and attention
// of one forward pass over n tokens, for GFLOP/s reporting; all_logits as in
// forward_options (the vocabulary projection of every row, or of the last).
double llama_forward_flops(const llama_config & c, int64_t n_tokens, bool all_logits = true);

} // namespace attnlab
