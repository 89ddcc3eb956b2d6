// oracle_topk(rho): per query row the exact top ceil(rho·n_keys) keys by the
// logit s·q·k (n_keys = i+1 causal, L otherwise; ties: lower j). The upper
// bound every predictor is compared against; it pays for the full QKᵀ, which
// predictor_flops reports. Scores in double (Eigen GEMM on 64-row chunks), so
// the ranking matches a float64 reference.
#include <algorithm>

#include <Eigen/Core>

#include "methods/method.h"

namespace attnlab {

namespace {

using mat_d = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class oracle_topk_method : public sparse_method {
public:
    explicit oracle_topk_method(const method_args & a)
        : spec_(method_args_spec("oracle_topk", a)), rho_(a.real("rho")), B_(a.integer("B")) {}
    std::string name() const override { return "oracle_topk"; }
    std::string spec() const override { return spec_; }
    bool uses_qk() const override { return true; }
    double predictor_flops(int L, int d, bool causal) const override {
        return 2.0 * d * (double) causal_pairs(L, causal);   // the full QKᵀ
    }

    selection select(const head_inputs & in) const override {
        const int L = in.n_tokens, d = in.head_dim;
        mat_d q(L, d), k(L, d);
        for (int t = 0; t < L; ++t) {
            for (int i = 0; i < d; ++i) {
                q(t, i) = (double) in.q[t * in.q_stride + i] * (double) in.scale;
                k(t, i) = in.k[t * in.k_stride + i];
            }
        }
        std::vector<std::vector<int32_t>> rows(L);
        constexpr int chunk = 64;
        const int n_chunks = (L + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1)
        for (int c = 0; c < n_chunks; ++c) {
            const int r0 = c * chunk, nr = std::min(chunk, L - r0);
            const int n_cols = in.causal ? r0 + nr : L;
            mat_d s = q.middleRows(r0, nr) * k.topRows(n_cols).transpose();
            for (int r = 0; r < nr; ++r) {
                const int i = r0 + r;
                const int n_keys = in.causal ? i + 1 : L;
                topk_indices(s.row(r).data(), n_keys, oracle_row_budget(rho_, n_keys), rows[i]);
            }
        }
        return selection_from_rows(L, B_, in.causal, rows);
    }

private:
    std::string spec_;
    double rho_;
    int B_;
};

} // namespace

std::unique_ptr<sparse_method> make_oracle_topk(const method_args & a) { return std::make_unique<oracle_topk_method>(a); }

} // namespace attnlab
