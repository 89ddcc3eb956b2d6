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

#include "methods/block_select.h"

namespace attnlab {

namespace {

class block_topk_method : public sparse_method {
public:
    block_topk_method(double rho, int B) : rho_(rho), B_(B) {
        method_args a;
        a.values["rho"] = method_real_text(rho);
        a.values["B"] = std::to_string(B);
        spec_ = method_args_spec("block_topk", a);
    }
    std::string name() const override { return "block_topk"; }
    std::string spec() const override { return spec_; }
    double predictor_flops(int L, int d, bool causal) const override {
        return 2.0 * L * d + 2.0 * d * (double) causal_blocks(L, B_, causal);
    }
    gpu_selector gpu_selection() const override {
        gpu_selector g;
        g.kind = gpu_selector::pooled_block_topk;
        g.block = B_;
        g.rho = rho_;
        return g;
    }

    selection select(const head_inputs & in) const override {
        const int L = in.n_tokens, d = in.head_dim, B = B_;
        const int nb = (L + B - 1) / B;
        std::vector<double> qm, km;
        pool_blocks(in, B, qm, km);
        std::vector<int32_t> ptr(nb + 1, 0), cols, top;
        std::vector<double> score(nb);
        for (int I = 0; I < nb; ++I) {
            const int nb_c = in.causal ? I + 1 : nb;
            for (int J = 0; J < nb_c; ++J) {
                double s = 0.0;
                for (int i = 0; i < d; ++i) s += qm[(size_t) I * d + i] * km[(size_t) J * d + i];
                score[J] = s * (double) in.scale;
            }
            select_block_row(score.data(), I, nb_c, rho_, 0.0, top);
            cols.insert(cols.end(), top.begin(), top.end());
            ptr[I + 1] = (int32_t) cols.size();
        }
        return selection_from_blocks(L, B, in.causal, std::move(ptr), std::move(cols));
    }

private:
    double rho_;
    int B_;
    std::string spec_;
};

const method_registrar reg([] {
    method_info e;
    e.name = "block_topk";
    e.help = "pooled block scores s*mean(Q)*mean(K)^T, top ceil(rho*nb_causal) blocks per query block incl. the "
             "diagonal and block 0";
    e.params = {param_real("rho", "0.2", 0.0, 1.0, true, "kept fraction of each query block's causal blocks"), param_block()};
    e.create = [](const method_args & a) -> std::unique_ptr<sparse_method> {
        return std::make_unique<block_topk_method>(a.real("rho"), a.integer("B"));
    };
    e.uses_qk = true;
    e.gpu = gpu_selector::pooled_block_topk;
    e.cost = method_cost::block_density;
    e.family = "block_sparse";
    e.order = 90;
    return e;
}());

} // namespace

std::unique_ptr<sparse_method> block_topk_create(double rho, int B) {
    return std::make_unique<block_topk_method>(std::min(1.0, std::max(1e-9, rho)), B);
}

} // namespace attnlab
