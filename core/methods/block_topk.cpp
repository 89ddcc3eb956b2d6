// block_topk(rho) (METHODS.md, seed 003):
//   Stage 1: mean-pool Q and K over each block of B tokens (the last block
//            over the tokens it has) and score s·Q̄_I·K̄_Jᵀ for causal J <= I
//            (cost nb²·d, reported by predictor_flops with the pooling).
//   Stage 2: per query block keep ceil(rho·nb_causal) key blocks, with
//            nb_causal = I+1 (causal) or nb: first the diagonal I and block 0,
//            which are always kept, then the best-scoring others (ties: lower
//            J) until the budget is met. The forced blocks count toward the
//            budget, so block density tracks rho (never below the two forced).
//   Stage 3: the kernel runs exact attention on the kept blocks.
// Pooling and scores run in double in plain loops (nb²·d is small).
#include <algorithm>
#include <cmath>

#include "methods/method.h"

namespace attnlab {

namespace {

class block_topk_method : public sparse_method {
public:
    explicit block_topk_method(const method_args & a)
        : spec_(method_args_spec("block_topk", a)), rho_(a.real("rho")), B_(a.integer("B")) {}
    std::string name() const override { return "block_topk"; }
    std::string spec() const override { return spec_; }
    bool uses_qk() const override { return true; }
    double predictor_flops(int L, int d, bool causal) const override {
        return 2.0 * L * d + 2.0 * d * (double) causal_blocks(L, B_, causal);
    }

    selection select(const head_inputs & in) const override {
        const int L = in.n_tokens, d = in.head_dim, B = B_;
        const int nb = (L + B - 1) / B;
        std::vector<double> qm((size_t) nb * d, 0.0), km((size_t) nb * d, 0.0);
        for (int I = 0; I < nb; ++I) {
            const int t0 = I * B, t1 = std::min(L, t0 + B);
            double * qi = &qm[(size_t) I * d];
            double * ki = &km[(size_t) I * d];
            for (int t = t0; t < t1; ++t) {
                for (int i = 0; i < d; ++i) {
                    qi[i] += in.q[t * in.q_stride + i];
                    ki[i] += in.k[t * in.k_stride + i];
                }
            }
            for (int i = 0; i < d; ++i) {
                qi[i] /= (t1 - t0);
                ki[i] /= (t1 - t0);
            }
        }
        std::vector<int32_t> ptr(nb + 1, 0), cols, top;
        std::vector<double> score(nb);
        for (int I = 0; I < nb; ++I) {
            const int nb_c = in.causal ? I + 1 : nb;
            for (int J = 0; J < nb_c; ++J) {
                double s = 0.0;
                for (int i = 0; i < d; ++i) s += qm[(size_t) I * d + i] * km[(size_t) J * d + i];
                score[J] = s * (double) in.scale;
            }
            const int budget = oracle_row_budget(rho_, nb_c);
            // Forced blocks outrank every scored one.
            score[I] = HUGE_VAL;
            score[0] = HUGE_VAL;
            topk_indices(score.data(), nb_c, budget, top);
            if (!std::binary_search(top.begin(), top.end(), 0)) top.insert(top.begin(), 0);
            if (!std::binary_search(top.begin(), top.end(), I)) top.insert(std::upper_bound(top.begin(), top.end(), I), I);
            cols.insert(cols.end(), top.begin(), top.end());
            ptr[I + 1] = (int32_t) cols.size();
        }
        return selection_from_blocks(L, B, in.causal, std::move(ptr), std::move(cols));
    }

private:
    std::string spec_;
    double rho_;
    int B_;
};

} // namespace

std::unique_ptr<sparse_method> make_block_topk(const method_args & a) { return std::make_unique<block_topk_method>(a); }

} // namespace attnlab
