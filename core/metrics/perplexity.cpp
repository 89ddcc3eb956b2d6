#include "metrics/perplexity.h"
#include "base/error.h"
#include "base/job.h"
#include "model/llama.h"

#include <chrono>
#include <cmath>

namespace attnlab {

static void check_args(const llama_model & m, const std::vector<int32_t> & tokens, int ctx) {
    llama_check_ctx(m, ctx);
    if (tokens.size() < 2) throw input_error(m.source_path, "tokens", "perplexity needs at least 2 tokens");
}

// -log p(target) of one logits row, log-softmax in double: the sum over 49k
// logits loses digits in float.
static double row_nll(const float * row, int64_t n_vocab, int32_t target) {
    double mx = row[0];
    for (int64_t j = 1; j < n_vocab; j++) mx = std::max(mx, double(row[j]));
    double s = 0.0;
    for (int64_t j = 0; j < n_vocab; j++) s += std::exp(double(row[j]) - mx);
    return -(double(row[target]) - mx - std::log(s));
}

static void finish(perplexity_result & r, double seconds) {
    r.seconds = seconds;
    r.nll = r.nll_sum / double(r.n_predicted);
    r.ppl = std::exp(r.nll);
    r.tokens_per_s = r.seconds > 0 ? double(r.n_tokens) / r.seconds : 0.0;
}

perplexity_result perplexity_eval(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                  attention_hook * hook, job_progress * progress) {
    check_args(m, tokens, ctx);
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
            r.nll_sum += row_nll(logits.row(t).data(), logits.cols(), win[t + 1]);
            r.n_predicted++;
        }
        r.n_tokens += int64_t(win.size());
        r.n_windows++;
    }
    job_step(progress, 1.0, "done");
    finish(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return r;
}

perplexity_comparison perplexity_compare(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                         attention_hook * sparse_hook, job_progress * progress) {
    check_args(m, tokens, ctx);
    perplexity_comparison c;
    double t_dense = 0.0, t_sparse = 0.0;
    int64_t agree = 0;
    const int64_t n = int64_t(tokens.size());
    const int64_t n_windows = (n + ctx - 1) / ctx;
    for (int64_t w = 0; w < n_windows; w++) {
        int64_t begin = w * ctx;
        int64_t end = std::min<int64_t>(begin + ctx, n);
        if (end - begin < 2) break;
        std::vector<int32_t> win(tokens.begin() + begin, tokens.begin() + end);
        std::string stage = "window " + std::to_string(w + 1) + "/" + std::to_string(n_windows);
        job_step(progress, double(2 * w) / double(2 * n_windows), stage + " dense");
        auto t0 = std::chrono::steady_clock::now();
        matrix_rm dense = llama_forward(m, win, forward_options{});
        auto t1 = std::chrono::steady_clock::now();
        job_step(progress, double(2 * w + 1) / double(2 * n_windows), stage + " sparse");
        forward_options fo;
        fo.hook = sparse_hook;
        matrix_rm sparse = llama_forward(m, win, fo);
        auto t2 = std::chrono::steady_clock::now();
        t_dense += std::chrono::duration<double>(t1 - t0).count();
        t_sparse += std::chrono::duration<double>(t2 - t1).count();
        for (int64_t t = 0; t + 1 < int64_t(win.size()); t++) {
            c.dense.nll_sum += row_nll(dense.row(t).data(), dense.cols(), win[t + 1]);
            c.sparse.nll_sum += row_nll(sparse.row(t).data(), sparse.cols(), win[t + 1]);
            Eigen::Index a, b;
            dense.row(t).maxCoeff(&a);
            sparse.row(t).maxCoeff(&b);
            agree += a == b;
        }
        for (perplexity_result * r : {&c.dense, &c.sparse}) {
            r->n_predicted += int64_t(win.size()) - 1;
            r->n_tokens += int64_t(win.size());
            r->n_windows++;
        }
    }
    job_step(progress, 1.0, "done");
    finish(c.dense, t_dense);
    finish(c.sparse, t_sparse);
    c.delta_ppl = c.sparse.ppl - c.dense.ppl;
    c.delta_ppl_rel = c.delta_ppl / c.dense.ppl;
    c.top1_agreement = double(agree) / double(c.dense.n_predicted);
    return c;
}

} // namespace attnlab
