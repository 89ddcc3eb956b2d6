// oracle_topk(rho): per query row the exact top ceil(rho·n_keys) keys by the
// logit s·q·k (n_keys = i+1 causal, L otherwise; ties: lower j). The upper
// bound every predictor is compared against; it pays for the full QKᵀ, which
// predictor_flops reports. Scores in double (Eigen GEMM on 64-row chunks), so
// the ranking matches a float64 reference.
#include <algorithm>

#include "methods/head_matrix.h"

namespace attnlab {

namespace {

class oracle_topk_method : public sparse_method {
public:
    explicit oracle_topk_method(const method_args & a)
        : spec_(method_args_spec("oracle_topk", a)), rho_(a.real("rho")), B_(a.integer("B")) {}
    std::string name() const override { return "oracle_topk"; }
    std::string spec() const override { return spec_; }
    double predictor_flops(int L, int d, bool causal) const override {
        return 2.0 * d * (double) causal_pairs(L, causal);   // the full QKᵀ
    }

    selection select(const head_inputs & in) const override {
        const int L = in.n_tokens;
        mat_d q, k;
        head_qk_double(in, q, k);
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

const method_registrar reg([] {
    method_info e;
    e.name = "oracle_topk";
    e.help = "exact top ceil(rho*keys) keys per row by s*q*k (pays for the full QK^T)";
    e.params = {param_real("rho", "0.2", 0.0, 1.0, true, "kept fraction of each row's causal keys"), param_block()};
    e.create = [](const method_args & a) -> std::unique_ptr<sparse_method> { return std::make_unique<oracle_topk_method>(a); };
    e.grain = method_info::token;
    e.uses_qk = true;
    e.order = 80;
    return e;
}());

} // namespace

} // namespace attnlab
