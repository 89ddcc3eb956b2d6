#include "metrics/perplexity.h"
#include "base/error.h"
#include "base/job.h"
#include "methods/method.h"
#include "model/llama.h"
#include "model/llama_gpu_api.h"

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace attnlab {

double logits_row_nll(const float * row, int64_t n_vocab, int32_t target) {
    double mx = row[0];
    for (int64_t j = 1; j < n_vocab; j++) mx = std::max(mx, double(row[j]));
    double s = 0.0;
    for (int64_t j = 0; j < n_vocab; j++) s += std::exp(double(row[j]) - mx);
    return -(double(row[target]) - mx - std::log(s));
}

int64_t logits_row_argmax(const float * row, int64_t n_vocab) {
    int64_t b = 0;
    for (int64_t j = 1; j < n_vocab; j++) {
        if (row[j] > row[b]) b = j;
    }
    return b;
}

namespace {

// One pass of the model over one window: the NLL of every predicted position
// (t < n-1 predicts t+1) and, when two passes are compared, its argmax.
struct window_scores {
    std::vector<double> nll;
    std::vector<int64_t> argmax;
};

class window_pass {
public:
    virtual ~window_pass() = default;
    virtual void score(const std::vector<int32_t> & win, bool want_argmax, window_scores & out) = 0;
};

// llama_forward on the CPU, with an optional hook; logits reduced here.
class cpu_pass : public window_pass {
public:
    cpu_pass(const llama_model & m, attention_hook * hook) : m_(m), hook_(hook) {}
    void score(const std::vector<int32_t> & win, bool want_argmax, window_scores & out) override {
        forward_options fo;
        fo.hook = hook_;
        const matrix_rm logits = llama_forward(m_, win, fo);
        out.nll.clear();
        out.argmax.clear();
        for (int64_t t = 0; t + 1 < int64_t(win.size()); t++) {
            out.nll.push_back(logits_row_nll(logits.row(t).data(), logits.cols(), win[t + 1]));
            if (want_argmax) out.argmax.push_back(logits_row_argmax(logits.row(t).data(), logits.cols()));
        }
    }

private:
    const llama_model & m_;
    attention_hook * hook_;
};

// llama_gpu::score: the reduction runs on the device; keeps the GPU's
// timings and densities summed over windows.
class gpu_pass : public window_pass {
public:
    gpu_pass(llama_gpu & g, const sparse_method * method, const score_fn & sc = score_fn())
        : g_(g), method_(method), score_(sc) {}
    void score(const std::vector<int32_t> & win, bool, window_scores & out) override {
        llama_gpu_scores s = g_.score(win, method_, score_);
        out.nll = std::move(s.nll);
        out.argmax.assign(s.argmax.begin(), s.argmax.end());
        const llama_gpu_stats & st = g_.last_stats();
        gate_s += st.gate_s;
        attention_s += st.attention_s;
        block_density += st.block_density;
        token_density += st.token_density;
        attention_path = st.attention_path;
        selection_path = st.selection_path;
    }

    double gate_s = 0.0, attention_s = 0.0, block_density = 0.0, token_density = 0.0;
    std::string attention_path, selection_path;

private:
    llama_gpu & g_;
    const sparse_method * method_;
    score_fn score_;
};

void check_args(const llama_model & m, const std::vector<int32_t> & tokens, int ctx) {
    llama_check_ctx(m, ctx);
    if (tokens.size() < 2) throw input_error(m.source_path, "tokens", "perplexity needs at least 2 tokens");
}

void finish(perplexity_result & r, double seconds) {
    r.seconds = seconds;
    r.nll = r.nll_sum / double(r.n_predicted);
    r.ppl = std::exp(r.nll);
    r.tokens_per_s = r.seconds > 0 ? double(r.n_tokens) / r.seconds : 0.0;
}

double timed(window_pass & p, const std::vector<int32_t> & win, bool want_argmax, window_scores & out) {
    const auto t0 = std::chrono::steady_clock::now();
    p.score(win, want_argmax, out);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The window loop: pass `a` alone (into c.dense), or `a` and `b` on each
// window in turn (dense, then sparse) with top-1 agreement.
perplexity_comparison run_windows(const std::vector<int32_t> & tokens, int ctx, window_pass & a, window_pass * b,
                                  job_progress * progress) {
    perplexity_comparison c;
    double t_a = 0.0, t_b = 0.0;
    int64_t agree = 0;
    window_scores sa, sb;
    const int64_t n = int64_t(tokens.size());
    const int64_t n_windows = (n + ctx - 1) / ctx;
    for (int64_t w = 0; w < n_windows; w++) {
        const int64_t begin = w * ctx, end = std::min<int64_t>(begin + ctx, n);
        if (end - begin < 2) break;
        const std::vector<int32_t> win(tokens.begin() + begin, tokens.begin() + end);
        const std::string stage = "window " + std::to_string(w + 1) + "/" + std::to_string(n_windows);
        job_step(progress, b ? double(2 * w) / double(2 * n_windows) : double(w) / double(n_windows),
                 b ? stage + " dense" : stage);
        t_a += timed(a, win, b != nullptr, sa);
        for (double x : sa.nll) c.dense.nll_sum += x;
        if (b) {
            job_step(progress, double(2 * w + 1) / double(2 * n_windows), stage + " sparse");
            t_b += timed(*b, win, true, sb);
            for (double x : sb.nll) c.sparse.nll_sum += x;
            for (size_t t = 0; t < sa.argmax.size() && t < sb.argmax.size(); t++) agree += sa.argmax[t] == sb.argmax[t];
        }
        for (perplexity_result * r : {&c.dense, &c.sparse}) {
            if (r == &c.sparse && !b) continue;
            r->n_predicted += int64_t(win.size()) - 1;
            r->n_tokens += int64_t(win.size());
            r->n_windows++;
        }
    }
    job_step(progress, 1.0, "done");
    finish(c.dense, t_a);
    if (!b) return c;
    finish(c.sparse, t_b);
    c.delta_ppl = c.sparse.ppl - c.dense.ppl;
    c.delta_ppl_rel = c.delta_ppl / c.dense.ppl;
    c.top1_agreement = double(agree) / double(c.dense.n_predicted);
    return c;
}

perplexity_report run_gpu(const std::vector<int32_t> & tokens, const perplexity_options & o) {
    if (o.hook) throw std::invalid_argument("perplexity on the GPU takes a method, not an attention hook");
    perplexity_report r;
    // the score function in the compared pass, as on the CPU (dense: softmax)
    gpu_pass dense(*o.gpu, nullptr), sparse(*o.gpu, o.method.get(), o.score);
    r.compared = o.method != nullptr;
    r.cmp = run_windows(tokens, o.ctx, dense, r.compared ? &sparse : nullptr, o.progress);
    r.dense_attention_seconds = dense.attention_s;
    r.attention_path = dense.attention_path;
    if (r.compared) {
        const int nw = std::max(1, r.cmp.sparse.n_windows);
        r.token_density = sparse.token_density / nw;
        r.block_density = sparse.block_density / nw;
        r.predictor_seconds = sparse.gate_s;
        r.sparse_kernel_seconds = sparse.attention_s;
        r.selection_path = sparse.selection_path;
    }
    return r;
}

} // namespace

perplexity_report perplexity_run(const llama_model & m, const std::vector<int32_t> & tokens_in, const perplexity_options & o) {
    const std::vector<int32_t> * tokens = &tokens_in;
    std::vector<int32_t> head;
    if (o.max_tokens > 0 && int64_t(tokens_in.size()) > o.max_tokens) {
        head.assign(tokens_in.begin(), tokens_in.begin() + o.max_tokens);
        tokens = &head;
    }
    check_args(m, *tokens, o.ctx);
    if (o.gpu) return run_gpu(*tokens, o);
    perplexity_report r;
    std::unique_ptr<sparse_attention_hook> own;
    attention_hook * hook = o.hook;
    if (o.method) {
        own.reset(new sparse_attention_hook(o.method, o.score));
        hook = own.get();
    }
    cpu_pass dense(m, nullptr), sparse(m, hook);
    r.compared = hook != nullptr;
    r.cmp = run_windows(*tokens, o.ctx, dense, r.compared ? &sparse : nullptr, o.progress);
    if (own) {
        double tok_d = 0, blk_d = 0;
        for (const auto & rec : own->records()) {
            tok_d += rec.token_density;
            blk_d += rec.block_density;
            r.predictor_seconds += rec.predictor_s;
            r.sparse_kernel_seconds += rec.kernel_s;
        }
        const double n_rec = double(std::max<size_t>(1, own->records().size()));
        r.token_density = tok_d / n_rec;
        r.block_density = blk_d / n_rec;
    }
    return r;
}

perplexity_result perplexity_eval(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                  attention_hook * hook, job_progress * progress) {
    check_args(m, tokens, ctx);
    cpu_pass pass(m, hook);
    return run_windows(tokens, ctx, pass, nullptr, progress).dense;
}

perplexity_comparison perplexity_compare(const llama_model & m, const std::vector<int32_t> & tokens, int ctx,
                                         attention_hook * sparse_hook, job_progress * progress) {
    check_args(m, tokens, ctx);
    cpu_pass dense(m, nullptr), sparse(m, sparse_hook);
    return run_windows(tokens, ctx, dense, &sparse, progress);
}

} // namespace attnlab
