// hybrid(δ) (METHODS.md, seed 004 "FA3 adaptive"): per head, estimate from
// the pooled block scores (block_topk's Stage 1, cheap) the block density
// that a block predictor needs for `mass` (default 95%) of the attention;
// above δ the head runs dense, else sparse at that density.
//
// Estimate: per query block I, block J's share of the mass is taken as
// n_J·exp(s·Q̄_I·K̄_J) normalised over the causal J (n_J = tokens in J); the
// diagonal and block 0 come first (always kept), then blocks by score, until
// the shares reach `mass`. The count per I is what a sparse head keeps, so
// "sparse at that density" means exactly these blocks; the head's estimated
// density is Σ_I count_I / causal blocks. Pooled scores flatten each block's
// peaks, so the estimate tends to be optimistic (measured recall is the check).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "methods/block_select.h"
#include "methods/hybrid.h"

namespace attnlab {

hybrid_estimate hybrid_estimate_head(const head_inputs & in, int B, double mass, double delta) {
    const int L = in.n_tokens, d = in.head_dim, nb = (L + B - 1) / B;
    std::vector<double> qm, km;
    pool_blocks(in, B, qm, km);
    std::vector<int32_t> ptr(nb + 1, 0), cols;
    std::vector<double> w(nb);
    std::vector<int> order;
    for (int I = 0; I < nb; ++I) {
        const int nb_c = in.causal ? I + 1 : nb;
        double mx = -HUGE_VAL;
        for (int J = 0; J < nb_c; ++J) {
            double sdot = 0.0;
            for (int i = 0; i < d; ++i) sdot += qm[(size_t) I * d + i] * km[(size_t) J * d + i];
            w[J] = sdot * in.scale + std::log((double) (std::min(L, J * B + B) - J * B));
            mx = std::max(mx, w[J]);
        }
        double sum = 0.0;
        for (int J = 0; J < nb_c; ++J) sum += (w[J] = std::exp(w[J] - mx));
        order.resize(nb_c);
        std::iota(order.begin(), order.end(), 0);
        // forced blocks first, then by share (ties: lower J)
        std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
            const bool fx = x == 0 || x == I, fy = y == 0 || y == I;
            if (fx != fy) return fx;
            return w[x] > w[y];
        });
        std::vector<int32_t> kept;
        double got = 0.0;
        for (int t = 0; t < nb_c; ++t) {
            const int J = order[t];
            const bool forced = J == 0 || J == I;
            if (!forced && got >= mass * sum) break;
            kept.push_back(J);
            got += w[J];
        }
        std::sort(kept.begin(), kept.end());
        cols.insert(cols.end(), kept.begin(), kept.end());
        ptr[I + 1] = (int32_t) cols.size();
    }
    hybrid_estimate e;
    e.sparse = selection_from_blocks(L, B, in.causal, std::move(ptr), std::move(cols));
    e.density = selection_block_density(e.sparse);
    e.dense = e.density > delta;
    return e;
}

namespace {

class hybrid_method : public sparse_method {
public:
    hybrid_method(double delta, double mass, int B, std::string spec) : delta_(delta), mass_(mass), B_(B), spec_(std::move(spec)) {}
    std::string name() const override { return "hybrid"; }
    std::string spec() const override { return spec_; }
    double predictor_flops(int L, int d, bool causal) const override {
        return 2.0 * L * d + (2.0 * d + 5.0) * (double) causal_blocks(L, B_, causal);
    }
    selection select(const head_inputs & in) const override {
        hybrid_estimate e = hybrid_estimate_head(in, B_, mass_, delta_);
        return e.dense ? selection_dense(in.n_tokens, B_, in.causal) : std::move(e.sparse);
    }

private:
    double delta_, mass_;
    int B_;
    std::string spec_;
};

const method_registrar reg([] {
    method_info e;
    e.name = "hybrid";
    e.help = "per head: dense if the pooled estimate needs block density > delta for `mass`, else those blocks";
    e.params = {param_real("delta", "0.5", 0.0, 1.0, true, "density above which the head runs dense"),
                param_real("mass", "0.95", 0.0, 1.0, true, "attention mass the estimate must cover"), param_block()};
    e.create = [](const method_args & a) -> std::unique_ptr<sparse_method> {
        return std::make_unique<hybrid_method>(a.real("delta"), a.real("mass"), a.integer("B"), method_args_spec("hybrid", a));
    };
    e.uses_qk = true;
    e.order = 130;
    return e;
}());

} // namespace

} // namespace attnlab
