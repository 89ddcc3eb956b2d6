// Pooling and the block choice shared by the block predictors (block_select.h).
#include "methods/block_select.h"

#include <algorithm>
#include <cmath>

namespace attnlab {

void pool_blocks(const head_inputs & in, int B, std::vector<double> & qm, std::vector<double> & km) {
    const int L = in.n_tokens, d = in.head_dim, nb = (L + B - 1) / B;
    qm.assign((size_t) nb * d, 0.0);
    km.assign((size_t) nb * d, 0.0);
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
}

void select_block_row(double * row, int I, int nb_c, double rho, double tau, std::vector<int32_t> & top) {
    if (tau > 0.0) {
        top.clear();
        for (int J = 0; J < nb_c; ++J) {
            if (J == 0 || J == I || row[J] >= tau) top.push_back(J);
        }
        return;
    }
    // Forced blocks outrank every scored one and count toward the budget.
    row[I] = HUGE_VAL;
    row[0] = HUGE_VAL;
    topk_indices(row, nb_c, oracle_row_budget(rho, nb_c), top);
    if (!std::binary_search(top.begin(), top.end(), 0)) top.insert(top.begin(), 0);
    if (!std::binary_search(top.begin(), top.end(), I)) top.insert(std::upper_bound(top.begin(), top.end(), I), I);
}

selection select_blocks_by_score(int L, int B, bool causal, const std::vector<double> & score, double rho, double tau) {
    const int nb = (L + B - 1) / B;
    std::vector<int32_t> ptr(nb + 1, 0), cols, top;
    std::vector<double> row(nb);
    for (int I = 0; I < nb; ++I) {
        const int nb_c = causal ? I + 1 : nb;
        for (int J = 0; J < nb_c; ++J) row[J] = score[(size_t) I * nb + J];
        select_block_row(row.data(), I, nb_c, rho, tau, top);
        cols.insert(cols.end(), top.begin(), top.end());
        ptr[I + 1] = (int32_t) cols.size();
    }
    return selection_from_blocks(L, B, causal, std::move(ptr), std::move(cols));
}

} // namespace attnlab
