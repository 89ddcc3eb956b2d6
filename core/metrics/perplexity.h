#pragma once
// Perplexity over non-overlapping windows: the text's tokens are cut into
// windows of ctx tokens; in each window every token after the first is
// predicted from the tokens before it in that window. A last, shorter window
// counts when it has at least 2 tokens.
#include <cstdint>
#include <vector>

namespace attnlab {

struct llama_model;
class attention_hook;
class job_progress;

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

perplexity_result perplexity_eval(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                  attention_hook * hook = nullptr, job_progress * progress = nullptr);

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

perplexity_comparison perplexity_compare(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                         attention_hook * sparse_hook, job_progress * progress = nullptr);

} // namespace attnlab
