// Guard max_keys(k) (METHODS.md, seed 004 "production guard"): wraps any
// method; a query row whose selection holds more than k keys keeps the k with
// the highest logits s·q·k among them (ties: lower j). Rows at or under the
// cap are untouched; the result is token-level once any row is capped.
// Spec: max_keys:k=256,inner=block_topk:rho=0.2|B=64 ('|' stands for the
// inner spec's ',', since a value cannot hold ','; a guard inside a guard
// wraps its own inner in '(...)': method_spec_nest in method_spec.h).
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "methods/max_keys.h"
#include "methods/registry_trained.h"

namespace attnlab {

max_keys_report max_keys_report_of(const selection & inner, int k) {
    max_keys_report r;
    const int L = inner.n_tokens;
    std::vector<int64_t> n(L);
    std::vector<int32_t> keys;
    for (int i = 0; i < L; ++i) {
        if (inner.token_level) {
            n[i] = inner.tok_ptr[i + 1] - inner.tok_ptr[i];
        } else {
            selection_row_keys(inner, i, keys);
            n[i] = (int64_t) keys.size();
        }
    }
    r.rows = L;
    if (L == 0) return r;
    for (int64_t x : n) {
        r.rows_over += x > k;
        r.mean_keys += (double) x / L;
    }
    r.share_over = (double) r.rows_over / L;
    std::sort(n.begin(), n.end());
    r.min_keys = n.front();
    r.max_keys = n.back();
    const auto q = [&](double p) { return (double) n[std::min<size_t>(L - 1, (size_t) std::floor(p * (L - 1) + 0.5))]; };
    r.p50 = q(0.5);
    r.p90 = q(0.9);
    r.p99 = q(0.99);
    return r;
}

selection max_keys_cap(const head_inputs & in, const selection & inner, int k) {
    const int L = in.n_tokens, d = in.head_dim;
    std::vector<std::vector<int32_t>> rows(L);
    bool capped = false;
    std::vector<double> sc;
    std::vector<int32_t> top;
    for (int i = 0; i < L; ++i) {
        selection_row_keys(inner, i, rows[i]);
        if ((int) rows[i].size() <= k) continue;
        capped = true;
        const float * q = in.q + i * in.q_stride;
        sc.resize(rows[i].size());
        for (size_t t = 0; t < rows[i].size(); ++t) {
            const float * kk = in.k + rows[i][t] * in.k_stride;
            double dot = 0.0;
            for (int x = 0; x < d; ++x) dot += (double) q[x] * kk[x];
            sc[t] = dot * in.scale;
        }
        // topk over positions in the row list (sorted keys: lower index = lower j)
        topk_indices(sc.data(), (int) sc.size(), k, top);
        std::vector<int32_t> kept;
        for (int32_t t : top) kept.push_back(rows[i][t]);
        rows[i] = std::move(kept);
    }
    if (!capped) return inner;
    return selection_from_rows(L, inner.block, in.causal, rows);
}

namespace {

class max_keys_method : public sparse_method {
public:
    max_keys_method(int k, std::unique_ptr<sparse_method> inner, std::string spec)
        : k_(k), inner_(std::move(inner)), spec_(std::move(spec)) {}
    std::string name() const override { return "max_keys"; }
    std::string spec() const override { return spec_; }
    // A guard fits nothing itself: the wrapped method's provenance.
    const trained_provenance * provenance() const override { return inner_->provenance(); }
    double predictor_flops(int L, int d, bool causal) const override {
        // the inner predictor, plus at most k logits per capped row
        return inner_->predictor_flops(L, d, causal);
    }
    selection select(const head_inputs & in) const override { return max_keys_cap(in, inner_->select(in), k_); }
    // The inner method computes on the capped selection (spa keeps its low-rank rest).
    void attend(const attention_layer_io & io, const selection * sels, const score_fn & score) const override {
        inner_->attend(io, sels, score);
    }

private:
    int k_;
    std::unique_ptr<sparse_method> inner_;
    std::string spec_;
};

std::unique_ptr<sparse_method> create(const method_args & a) {
    const std::string inner = method_spec_unnest(a.text("inner"));
    std::unique_ptr<sparse_method> m;
    try {
        m = method_create(inner);
    } catch (const input_error & e) {
        throw input_error(a.spec_text, "inner", e.what());
    }
    // canonical: the inner method's own canonical spec, nested (method_spec.h)
    method_args c = a;
    c.values["inner"] = method_spec_nest(m->spec());
    return std::make_unique<max_keys_method>(a.integer("k"), std::move(m), method_args_spec("max_keys", c));
}

const method_registrar reg([] {
    method_info e;
    e.name = "max_keys";
    e.help = "guard: caps each query row at its k best selected keys (inner spec, ',' written '|')";
    e.params = {param_int("k", "256", 1, k_any_length, "keys per query"),
                param_text("inner", "block_topk", "the wrapped method's spec")};
    e.create = create;
    e.grain = method_info::token;
    e.uses_qk = true;
    e.order = 150;
    return e;
}());

} // namespace

} // namespace attnlab
