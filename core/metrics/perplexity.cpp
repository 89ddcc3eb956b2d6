#include "metrics/perplexity.h"
#include "io/error.h"
#include "lab/job.h"
#include "model/llama.h"

#include <chrono>
#include <cmath>

namespace attnlab {

perplexity_result perplexity_eval(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                  attention_hook * hook, job_progress * progress) {
    if (ctx < 2 || ctx > m.cfg.n_ctx_train) {
        throw input_error(m.source_path, "ctx", std::to_string(ctx) + " is outside 2.." +
                                                    std::to_string(m.cfg.n_ctx_train) + " (the model's context)");
    }
    if (tokens.size() < 2) throw input_error(m.source_path, "tokens", "perplexity needs at least 2 tokens");
    perplexity_result r;
    auto t0 = std::chrono::steady_clock::now();
    const int64_t n = int64_t(tokens.size());
    const int64_t n_windows = (n + ctx - 1) / ctx;
    for (int64_t w = 0; w < n_windows; w++) {
        int64_t begin = w * ctx;
        int64_t end = std::min<int64_t>(begin + ctx, n);
        if (end - begin < 2) break;
        std::vector<int32_t> win(tokens.begin() + begin, tokens.begin() + end);
        job_step(progress, double(w) / double(n_windows), "window " + std::to_string(w + 1) + "/" + std::to_string(n_windows));
        forward_options fo;
        fo.hook = hook;
        matrix_rm logits = llama_forward(m, win, fo);
        for (int64_t t = 0; t + 1 < int64_t(win.size()); t++) {
            // log-softmax in double: the sum over 49k logits loses digits in float
            const float * row = logits.row(t).data();
            double mx = row[0];
            for (int64_t j = 1; j < logits.cols(); j++) mx = std::max(mx, double(row[j]));
            double s = 0.0;
            for (int64_t j = 0; j < logits.cols(); j++) s += std::exp(double(row[j]) - mx);
            double logp = double(row[win[t + 1]]) - mx - std::log(s);
            r.nll_sum -= logp;
            r.n_predicted++;
        }
        r.n_tokens += int64_t(win.size());
        r.n_windows++;
    }
    job_step(progress, 1.0, "done");
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.nll = r.nll_sum / double(r.n_predicted);
    r.ppl = std::exp(r.nll);
    r.tokens_per_s = r.seconds > 0 ? double(r.n_tokens) / r.seconds : 0.0;
    return r;
}

} // namespace attnlab
