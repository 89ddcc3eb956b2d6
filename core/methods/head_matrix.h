#pragma once
// A head's Q (times the scale s) and K as double matrices, so that Q·Kᵀ is
// the exact logit matrix s·q·k in double (oracle_topk, the dense softmax
// references of the trained methods).
#include <Eigen/Core>

#include "methods/method.h"

namespace attnlab {

using mat_d = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline void head_qk_double(const head_inputs & in, mat_d & q, mat_d & k) {
    const int L = in.n_tokens, d = in.head_dim;
    q.resize(L, d);
    k.resize(L, d);
    for (int t = 0; t < L; ++t) {
        for (int i = 0; i < d; ++i) {
            q(t, i) = (double) in.q[t * in.q_stride + i] * (double) in.scale;
            k(t, i) = in.k[t * in.k_stride + i];
        }
    }
}

} // namespace attnlab
