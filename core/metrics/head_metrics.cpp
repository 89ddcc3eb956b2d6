// Per-head metrics of a selection against dense softmax attention (see
// head_metrics.h). One chunk of 64 query rows at a time: the chunk's logits
// S = s·Q_c·Kᵀ (double GEMM), per row the dense softmax A, the sparse weights W
// of the score function on the selected keys, the row statistics, then
// O = A·V and O_sparse = W·V as two more GEMMs.
#include "metrics/head_metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Core>

namespace attnlab {

namespace {

using mat_d = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct sums {
    double recall = 0, kl_ds = 0, kl_sd = 0, err2 = 0, ref2 = 0;
    int64_t inter = 0, n_mask = 0, n_oracle = 0;
};

// Hyperbolic score: the points in the ball (unscaled q) and their factors 1 − c‖x‖².
struct ball_points {
    bool used = false;
    mat_d qh, kh;
    std::vector<double> lq, lk;
};

// Row i's weights under the score function on the selected keys, into w_row
// (left zero elsewhere). For softmax-type scores lw[j] gets log W_ij and the
// result is true.
bool sparse_row_weights(const double * srow, const std::vector<int32_t> & keys, const score_fn & sf, int L,
                        const ball_points & pts, int i, double * w_row, std::vector<double> & lw) {
    if (keys.empty()) return false;
    if (sf.kind == score_kind::relu) {
        double sum = 0;
        for (int32_t j : keys) {
            const double x = std::max(0.0, srow[j] - (double) sf.relu_bias);
            w_row[j] = x;
            sum += x;
        }
        const double div = sf.relu_row_norm ? sum : (double) L;
        if (div > 0) {
            for (int32_t j : keys) w_row[j] /= div;
        }
        return false;
    }
    double smx = -HUGE_VAL;
    for (int32_t j : keys) {
        double x = srow[j];
        if (pts.used) {
            const double diff2 = (pts.qh.row(i) - pts.kh.row(j)).squaredNorm();
            x = -(double) sf.beta * poincare_distance_from_parts(diff2, pts.lq[i], pts.lk[j], sf.c) - (double) sf.gamma;
        }
        lw[j] = x;
        smx = std::max(smx, x);
    }
    double sz = 0;
    for (int32_t j : keys) sz += std::exp(lw[j] - smx);
    const double slse = smx + std::log(sz);
    for (int32_t j : keys) {
        lw[j] -= slse;
        w_row[j] = std::exp(lw[j]);
    }
    return true;
}

} // namespace

head_metrics head_metrics_compute(const head_inputs & in, const float * v, int64_t v_stride, const selection & sel,
                                  const score_fn & sf, double predictor_flops, double predictor_seconds) {
    head_metrics r;
    const int L = in.n_tokens, d = in.head_dim;
    r.token_density = selection_token_density(sel);
    r.block_density = selection_block_density(sel);
    r.predictor_flops = predictor_flops;
    r.predictor_seconds = predictor_seconds;
    if (L <= 0) return r;
    const double dense_flops = attention_flops(L, d, in.causal);
    r.flop_fraction = (4.0 * d * (double) selection_block_pairs(sel) + predictor_flops) / dense_flops;

    mat_d q(L, d), k(L, d), vv(L, d);
    for (int t = 0; t < L; ++t) {
        for (int i = 0; i < d; ++i) {
            q(t, i) = (double) in.q[t * in.q_stride + i] * (double) in.scale;
            k(t, i) = in.k[t * in.k_stride + i];
            vv(t, i) = v[t * v_stride + i];
        }
    }
    // Hyperbolic: the points in the ball (unscaled q) and their factors 1 − c‖x‖².
    ball_points pts;
    pts.used = sf.kind == score_kind::hyperbolic;
    if (pts.used) {
        pts.qh.resize(L, d);
        pts.kh.resize(L, d);
        pts.lq.resize(L);
        pts.lk.resize(L);
        std::vector<double> x(d);
        for (int t = 0; t < L; ++t) {
            for (int i = 0; i < d; ++i) x[i] = in.q[t * in.q_stride + i];
            poincare_expmap0(x.data(), d, (double) sf.c, &pts.qh(t, 0));
            for (int i = 0; i < d; ++i) x[i] = in.k[t * in.k_stride + i];
            poincare_expmap0(x.data(), d, (double) sf.c, &pts.kh(t, 0));
            pts.lq[t] = 1.0 - sf.c * pts.qh.row(t).squaredNorm();
            pts.lk[t] = 1.0 - sf.c * pts.kh.row(t).squaredNorm();
        }
    }

    const double rho = r.token_density;
    constexpr int chunk = 64;
    const int n_chunks = (L + chunk - 1) / chunk;
    // One partial sum per chunk, added in chunk order after the loop: the
    // result is the same whatever thread ran which chunk (snapshots compare
    // metrics bit for bit).
    std::vector<sums> per_chunk(n_chunks);

#pragma omp parallel
    {
        std::vector<int32_t> keys, top;
        std::vector<uint8_t> mark(L, 0);
        std::vector<double> lw(L);   // log of the sparse weights (softmax-type scores)
        mat_d a, w, o, os;
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < n_chunks; ++c) {
            sums & acc = per_chunk[c];
            const int r0 = c * chunk, nr = std::min(chunk, L - r0);
            const int n_cols = in.causal ? r0 + nr : L;
            const mat_d s = q.middleRows(r0, nr) * k.topRows(n_cols).transpose();
            a.setZero(nr, n_cols);
            w.setZero(nr, n_cols);
            for (int rr = 0; rr < nr; ++rr) {
                const int i = r0 + rr;
                const int n = in.causal ? i + 1 : L;
                const double * srow = s.row(rr).data();
                // Dense softmax in log space.
                double mx = -HUGE_VAL;
                for (int j = 0; j < n; ++j) mx = std::max(mx, srow[j]);
                double z = 0;
                for (int j = 0; j < n; ++j) z += std::exp(srow[j] - mx);
                const double lse = mx + std::log(z);
                for (int j = 0; j < n; ++j) a(rr, j) = std::exp(srow[j] - lse);

                selection_row_keys(sel, i, keys);
                for (int32_t j : keys) mark[j] = 1;
                double rec = 0;
                for (int32_t j : keys) rec += a(rr, j);
                acc.recall += rec;

                // Sparse weights on the selected keys.
                const bool log_valid = sparse_row_weights(srow, keys, sf, L, pts, i, &w(rr, 0), lw);

                // KLs between the dense row and the sparse row normalised to sum 1.
                double wsum = 0;
                for (int32_t j : keys) wsum += w(rr, j);
                double kl_ds = 0, kl_sd = 0;
                const double u = k_kl_mix_eps / n;
                for (int j = 0; j < n; ++j) {
                    const double la = srow[j] - lse;
                    const double aj = a(rr, j);
                    const double wj = (wsum > 0 && mark[j]) ? w(rr, j) / wsum : 0.0;
                    if (aj > 0) kl_ds += aj * (la - std::log((1.0 - k_kl_mix_eps) * wj + u));
                    if (wj > 0) kl_sd += wj * ((log_valid ? lw[j] : std::log(wj)) - la);
                }
                acc.kl_ds += kl_ds;
                acc.kl_sd += kl_sd;

                // Oracle at the same token density.
                topk_indices(srow, n, oracle_row_budget(rho, n), top);
                for (int32_t j : top) acc.inter += mark[j];
                acc.n_mask += (int64_t) keys.size();
                acc.n_oracle += (int64_t) top.size();
                for (int32_t j : keys) mark[j] = 0;
            }
            o.noalias() = a * vv.topRows(n_cols);
            os.noalias() = w * vv.topRows(n_cols);
            acc.err2 += (os - o).squaredNorm();
            acc.ref2 += o.squaredNorm();
        }
    }
    sums total;
    for (const sums & acc : per_chunk) {
        total.recall += acc.recall;
        total.kl_ds += acc.kl_ds;
        total.kl_sd += acc.kl_sd;
        total.err2 += acc.err2;
        total.ref2 += acc.ref2;
        total.inter += acc.inter;
        total.n_mask += acc.n_mask;
        total.n_oracle += acc.n_oracle;
    }

    r.mass_recall = total.recall / L;
    r.kl_dense_sparse = total.kl_ds / L;
    r.kl_sparse_dense = total.kl_sd / L;
    r.output_rel_error = total.ref2 > 0 ? std::sqrt(total.err2 / total.ref2) : 0.0;
    r.oracle_precision = total.n_mask > 0 ? (double) total.inter / (double) total.n_mask : 0.0;
    r.oracle_recall = total.n_oracle > 0 ? (double) total.inter / (double) total.n_oracle : 0.0;
    return r;
}

head_metrics head_metrics_of_method(const attention_layer_io & io, int h, const sparse_method & m, const score_fn & score) {
    const head_inputs in = head_inputs_of(io, h);
    const auto t0 = std::chrono::steady_clock::now();
    const selection sel = m.select(in);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t kv_stride = (int64_t) io.n_head_kv * io.head_dim;
    const float * v = io.v + (int64_t) io.kv_head_of(h) * io.head_dim;
    return head_metrics_compute(in, v, kv_stride, sel, score, m.predictor_flops(io.n_tokens, io.head_dim, io.causal), secs);
}

double head_entropy(const head_inputs & in) {
    using mat_f = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const int L = in.n_tokens, d = in.head_dim;
    if (L <= 0) return 0.0;
    mat_f q(L, d), k(L, d);
    for (int t = 0; t < L; ++t) {
        for (int i = 0; i < d; ++i) {
            q(t, i) = in.q[t * in.q_stride + i] * in.scale;
            k(t, i) = in.k[t * in.k_stride + i];
        }
    }
    constexpr int chunk = 64;
    double total = 0.0;
    mat_f s(chunk, L);
    for (int i0 = 0; i0 < L; i0 += chunk) {
        const int rows = std::min(chunk, L - i0), cols = in.causal ? i0 + rows : L;
        auto sc = s.topLeftCorner(rows, cols);
        sc.noalias() = q.middleRows(i0, rows) * k.topRows(cols).transpose();
        for (int r = 0; r < rows; ++r) {
            // entropy = log z - sum(e * x) / z, x = s - max, e = exp(x), z = sum e
            auto x = sc.row(r).head(in.causal ? i0 + r + 1 : L).array();
            x -= x.maxCoeff();
            const auto e = x.exp().eval();
            const float z = e.sum();
            total += std::log(z) - (e * x).sum() / z;
        }
    }
    return total / L;
}

} // namespace attnlab
