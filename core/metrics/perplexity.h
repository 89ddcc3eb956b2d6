#pragma once
// Perplexity over non-overlapping windows: the text's tokens are cut into
// windows of ctx tokens; in each window every token after the first is
// predicted from the tokens before it in that window. A last, shorter window
// counts when it has at least 2 tokens.
//
// One window loop serves every caller: dense alone, dense against a sparse
// method (or any attention hook) on the same windows, on the CPU or on a GPU
// (model/llama_gpu_api.h). `attnlab-cli ppl` is perplexity_run and printing.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/score.h"

namespace attnlab {

struct llama_model;
class attention_hook;
class job_progress;
class llama_gpu;
class sparse_method;

struct perplexity_result {
    double nll_sum = 0.0;      // natural log, summed over predicted tokens
    int64_t n_predicted = 0;
    int64_t n_tokens = 0;      // tokens run through the model
    int n_windows = 0;
    double nll = 0.0;          // mean negative log-likelihood
    double ppl = 0.0;          // exp(nll)
    double seconds = 0.0;
    double tokens_per_s = 0.0;
};

// A method patched into every layer (hook) against dense on the same windows:
// both perplexities and top-1 next-token agreement (share of predicted
// positions where the sparse model's argmax equals the dense model's).
struct perplexity_comparison {
    perplexity_result dense;
    perplexity_result sparse;
    double delta_ppl = 0.0;        // sparse.ppl - dense.ppl
    double delta_ppl_rel = 0.0;    // (sparse - dense) / dense
    double top1_agreement = 0.0;
};

struct perplexity_options {
    int ctx = 1024;
    int64_t max_tokens = 0;                       // only the first K tokens (0: all)
    // Null: dense only. Else dense and this method side by side (with
    // `score` in the method's pass, on the CPU and the GPU alike).
    std::shared_ptr<const sparse_method> method;
    score_fn score;
    // Instead of a method: a caller's hook for the second pass (CPU only).
    attention_hook * hook = nullptr;
    // Score the windows on this GPU (logits reduced on the device) instead of
    // llama_forward on the CPU.
    llama_gpu * gpu = nullptr;
    job_progress * progress = nullptr;
};

// What one run measured. `sparse` and the fields after it are set when a
// method or hook was given (`compared`).
struct perplexity_report {
    perplexity_comparison cmp;        // cmp.dense always; the rest when compared
    bool compared = false;
    // The sparse pass's selection: CPU, mean over every layer of every window
    // (method only); GPU, mean over windows of the per-layer means.
    double token_density = 0.0, block_density = 0.0;
    double predictor_seconds = 0.0;      // selection (CPU: select(); GPU: gate or host select + upload)
    double sparse_kernel_seconds = 0.0;  // attention of the sparse pass
    // GPU only.
    double dense_attention_seconds = 0.0;
    std::string attention_path, selection_path;
};

perplexity_report perplexity_run(const llama_model & m, const std::vector<int32_t> & tokens, const perplexity_options & o);

// The two common cases.
perplexity_result perplexity_eval(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                  attention_hook * hook = nullptr, job_progress * progress = nullptr);
perplexity_comparison perplexity_compare(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                         attention_hook * sparse_hook, job_progress * progress = nullptr);

// -log p(target) of one logits row, log-softmax in double (a float sum over
// 49k logits loses digits), and the row's argmax (the first of equal maxima).
double logits_row_nll(const float * row, int64_t n_vocab, int32_t target);
int64_t logits_row_argmax(const float * row, int64_t n_vocab);

} // namespace attnlab
