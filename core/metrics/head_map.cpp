// Attention maps for display: one pass over query tiles (S = Q K^T by Eigen
// GEMM, softmax per row, pooling into the finest LOD level), then 2x2
// reductions for the coarser levels. Never more than a 64 x L slice of the
// score matrix per thread.
#include "metrics/head_map.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include <Eigen/Core>

#include "base/job.h"
#include "data/capture.h"

namespace attnlab {

using mat_rm = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using cmap_rm = Eigen::Map<const mat_rm>;

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

lod_level empty_level(int L, int f) {
    lod_level lv;
    lv.L = L;
    lv.factor = f;
    lv.n_rows = lv.n_cols = (L + f - 1) / f;
    lv.max.assign(size_t(lv.n_rows) * lv.n_cols, 0.0f);
    lv.sum.assign(size_t(lv.n_rows) * lv.n_cols, 0.0f);
    return lv;
}

// Pools rows [0, rows) x cols [0, cols) of a tile (row stride `ld`, zero
// padded up to a multiple of f columns) whose first row is token i0 (a
// multiple of f) into level lv. Rows first (elementwise, vectorised), then
// groups of f columns; weights are >= 0, so zero padding changes nothing.
void pool_tile(const float * a, int rows, int cols, int64_t ld, int i0, lod_level & lv, std::vector<float> & tmx,
               std::vector<float> & tsm) {
    const int f = lv.factor;
    const int ncell = (cols + f - 1) / f, padded = ncell * f;
    tmx.resize(padded);
    tsm.resize(padded);
    using arr = Eigen::Array<float, Eigen::Dynamic, 1>;
    for (int r0 = 0; r0 < rows; r0 += f) {
        const int I = (i0 + r0) / f;
        float * mx = &lv.max[size_t(I) * lv.n_cols];
        float * sm = &lv.sum[size_t(I) * lv.n_cols];
        const int rn = std::min(f, rows - r0);
        if (f == 1) {
            std::copy(a + r0 * ld, a + r0 * ld + cols, mx);
            std::copy(a + r0 * ld, a + r0 * ld + cols, sm);
            continue;
        }
        Eigen::Map<arr> vm(tmx.data(), padded), vs(tsm.data(), padded);
        vm = Eigen::Map<const arr>(a + r0 * ld, padded);
        vs = vm;
        for (int r = r0 + 1; r < r0 + rn; ++r) {
            Eigen::Map<const arr> row(a + r * ld, padded);
            vm = vm.max(row);
            vs += row;
        }
        Eigen::Map<const mat_rm> gm(tmx.data(), ncell, f), gs(tsm.data(), ncell, f);
        Eigen::Map<Eigen::VectorXf>(mx, ncell) = gm.rowwise().maxCoeff();
        Eigen::Map<Eigen::VectorXf>(sm, ncell) = gs.rowwise().sum();
    }
}

// Folds groups of f columns of the row-pooled vectors (max, sum) into the
// cells of level row I: the second half of pool_tile, for rows pooled as they
// were computed (dense-only maps).
void fold_cells(float * gmx, float * gsm, int ncell, int f, int I, lod_level & lv) {
    float * mx = &lv.max[size_t(I) * lv.n_cols];
    float * sm = &lv.sum[size_t(I) * lv.n_cols];
    if (f == 1) {
        std::copy(gmx, gmx + ncell, mx);
        std::copy(gsm, gsm + ncell, sm);
        return;
    }
    Eigen::Map<const mat_rm> gm(gmx, ncell, f), gs(gsm, ncell, f);
    Eigen::Map<Eigen::VectorXf>(mx, ncell) = gm.rowwise().maxCoeff();
    Eigen::Map<Eigen::VectorXf>(sm, ncell) = gs.rowwise().sum();
}

std::vector<lod_level> build_pyramid(lod_level finest) {
    std::vector<lod_level> out;
    out.push_back(std::move(finest));
    while (out.back().n_rows > 8) out.push_back(lod_downsample2(out.back()));
    return out;
}

} // namespace

void head_map_extract(const qkv_capture & cap, size_t li, int h, std::vector<float> & q, std::vector<float> & k,
                      float & scale) {
    attention_layer_io io = capture_layer_io(cap, li);
    const int L = io.n_tokens, d = io.head_dim, g = io.kv_head_of(h);
    const int64_t qs = int64_t(io.n_head) * d, ks = int64_t(io.n_head_kv) * d;
    scale = io.scale;
    q.resize(size_t(L) * d);
    k.resize(size_t(L) * d);
    for (int t = 0; t < L; ++t) {
        for (int i = 0; i < d; ++i) {
            q[size_t(t) * d + i] = io.q[t * qs + int64_t(h) * d + i] * io.scale;
            k[size_t(t) * d + i] = io.k[t * ks + int64_t(g) * d + i];
        }
    }
}

int head_map_finest_factor(int L) {
    int f = 1;
    while ((L + f - 1) / f > k_lod_finest_cells) f *= 2;
    return f;
}

void head_map_finish(head_map & m) {
    // Row i's largest weight is exp(0) / z = 1/z. Skip the first rows: their
    // one or two keys make the scale useless for the rest of the map.
    const int L = m.L;
    const int skip = std::min(L - 1, 16);
    float mw = 0.0f;
    double ent = 0.0;
    for (int i = 0; i < L; ++i) {
        if (i >= skip) mw = std::max(mw, m.row_inv_sum[i]);
        ent += m.row_entropy[i];
    }
    m.max_weight = mw > 0 ? mw : 1.0f;
    m.mean_entropy = L > 0 ? ent / L : 0.0;
}

size_t head_map::bytes() const {
    size_t b = (q.size() + k.size() + row_max.size() * 4) * sizeof(float);
    for (const auto * v : {&dense, &sparse, &kept}) {
        for (const auto & lv : *v) b += lv.bytes();
    }
    return b;
}

std::shared_ptr<head_map> head_map_compute(std::shared_ptr<const qkv_capture> cap, size_t layer_index,
                                           int head, std::shared_ptr<const selection> sel,
                                           job_progress * progress) {
    const double t0 = now_s();
    auto m = std::make_shared<head_map>();
    m->cap = cap;
    m->sel = sel;
    m->layer_index = layer_index;
    m->layer = cap->layers.at(layer_index).layer;
    m->head = head;
    m->L = cap->info.n_tokens();
    m->head_dim = cap->info.head_dim;
    if (head < 0 || head >= cap->info.n_head) throw std::invalid_argument("head out of range");
    if (sel && sel->n_tokens != m->L) throw std::invalid_argument("selection length differs from the capture");
    head_map_extract(*cap, layer_index, head, m->q, m->k, m->scale);

    const int L = m->L, d = m->head_dim;
    const int f0 = head_map_finest_factor(L);
    const int tile = std::max(64, f0);
    m->row_max.assign(L, 0.0f);
    m->row_inv_sum.assign(L, 0.0f);
    m->row_entropy.assign(L, 0.0f);
    if (sel) m->row_recall.assign(L, 0.0f);
    lod_level dense0 = empty_level(L, f0), sparse0, kept0;
    if (sel) {
        sparse0 = empty_level(L, f0);
        kept0 = empty_level(L, f0);
    }

    cmap_rm Q(m->q.data(), L, d), K(m->k.data(), L, d);
    const int n_tiles = (L + tile - 1) / tile;
    std::atomic<bool> stop{false};
    std::atomic<int> done{0};

    // Tiles near the end cost the most (causal): hand them out first.
#pragma omp parallel
    {
        // Columns padded to a multiple of f0 (pool_tile reads whole cells).
        const int Lp = (L + f0 - 1) / f0 * f0;
        mat_rm S = mat_rm::Zero(tile, Lp);
        mat_rm SP, KM;
        if (sel) {
            SP = mat_rm::Zero(tile, Lp);
            KM = mat_rm::Zero(tile, Lp);
        }
        Eigen::ArrayXf logits(L);
        std::vector<float> tmx, tsm;
        // Dense-only maps pool each row into these while it is still in
        // cache (f0 rows per group), instead of re-reading the whole tile:
        // the same float operations in the same order as pool_tile.
        Eigen::ArrayXf gmx, gsm;
        if (!sel) {
            gmx = Eigen::ArrayXf::Zero(Lp);
            gsm = Eigen::ArrayXf::Zero(Lp);
        }
        std::vector<int32_t> keys;
#pragma omp for schedule(dynamic, 1)
        for (int ti = n_tiles - 1; ti >= 0; --ti) {
            if (stop.load(std::memory_order_relaxed)) continue;
            if (progress && progress->cancelled()) {
                stop = true;
                continue;
            }
            const int i0 = ti * tile, i1 = std::min(L, i0 + tile), rows = i1 - i0, cols = i1;
            const int cols_p = std::min(Lp, (cols + f0 - 1) / f0 * f0);
            auto s = S.topLeftCorner(rows, cols);
            s.noalias() = Q.middleRows(i0, rows) * K.topRows(cols).transpose();
            for (int r = 0; r < rows; ++r) {
                const int i = i0 + r, n = i + 1;
                Eigen::Map<Eigen::ArrayXf> x(&S(r, 0), n);
                const float mx = x.maxCoeff();
                auto lg = logits.head(n);
                lg = x - mx;
                x = lg.exp();
                // entropy = log z - sum(e * (s - max)) / z
                const float z = x.sum();
                const float ex_dot = (x * lg).sum();
                const float inv = 1.0f / z;
                m->row_max[i] = mx;
                if (!sel) {
                    // x * inv is what `x *= inv` then pool_tile would read.
                    // Rows of a group only grow (n = i + 1), so past n the
                    // accumulators hold the zeros set by the group's first row.
                    // (Rounded once into lg, so no FMA contraction changes the sums.)
                    lg = x * inv;
                    if (r % f0 == 0) {
                        gmx.head(n) = lg;
                        if (n < cols_p) gmx.segment(n, cols_p - n).setZero();
                        gsm.head(cols_p) = gmx.head(cols_p);
                    } else {
                        gmx.head(n) = gmx.head(n).max(lg);
                        gsm.head(n) += lg;
                    }
                    m->row_inv_sum[i] = inv;
                    m->row_entropy[i] = std::log(z) - ex_dot * inv;
                    if (r % f0 == f0 - 1 || r == rows - 1) {
                        fold_cells(gmx.data(), gsm.data(), cols_p / f0, f0, i / f0, dense0);
                    }
                    continue;
                }
                x *= inv;
                if (n < cols_p) S.row(r).segment(n, cols_p - n).setZero();
                m->row_inv_sum[i] = inv;
                m->row_entropy[i] = std::log(z) - ex_dot * inv;
                if (sel) {
                    KM.row(r).head(cols_p).setZero();
                    selection_row_keys(*sel, i, keys);
                    for (int32_t j : keys) {
                        if (j < n) KM(r, j) = 1.0f;
                    }
                    auto sp = SP.row(r).head(cols_p).array();
                    sp = S.row(r).head(cols_p).array() * KM.row(r).head(cols_p).array();
                    const float rec = sp.sum();
                    m->row_recall[i] = rec;
                    if (rec > 0) sp /= rec;
                }
            }
            if (sel) {
                pool_tile(S.data(), rows, cols, S.cols(), i0, dense0, tmx, tsm);
                pool_tile(SP.data(), rows, cols, SP.cols(), i0, sparse0, tmx, tsm);
                pool_tile(KM.data(), rows, cols, KM.cols(), i0, kept0, tmx, tsm);
            }
            int dn = ++done;
            if (progress) progress->report(double(dn) / n_tiles, "attention map");
        }
    }
    if (stop) throw job_cancelled();

    m->dense = build_pyramid(std::move(dense0));
    if (sel) {
        m->sparse = build_pyramid(std::move(sparse0));
        m->kept = build_pyramid(std::move(kept0));
    }
    head_map_finish(*m);
    m->seconds = now_s() - t0;
    return m;
}

std::shared_ptr<map_window> head_map_window(const head_map & m, int r0, int r1, int c0, int c1) {
    const double t0 = now_s();
    r0 = std::max(0, r0);
    c0 = std::max(0, c0);
    r1 = std::min(m.L, std::max(r1, r0 + 1));
    c1 = std::min(m.L, std::max(c1, c0 + 1));
    const int rows = r1 - r0, cols = c1 - c0, d = m.head_dim;
    auto w = std::make_shared<map_window>();
    auto init = [&](lod_level & lv) {
        lv.L = m.L;
        lv.factor = 1;
        lv.row0 = r0;
        lv.col0 = c0;
        lv.n_rows = rows;
        lv.n_cols = cols;
        lv.sum.assign(size_t(rows) * cols, 0.0f);
    };
    init(w->dense);
    cmap_rm Q(m.q.data(), m.L, d), K(m.k.data(), m.L, d);
    Eigen::Map<mat_rm> A(w->dense.sum.data(), rows, cols);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r += 64) {
        const int rn = std::min(64, rows - r);
        A.middleRows(r, rn).noalias() = Q.middleRows(r0 + r, rn) * K.middleRows(c0, cols).transpose();
        for (int rr = r; rr < r + rn; ++rr) {
            const int i = r0 + rr;
            auto a = A.row(rr).array();
            a = ((a - m.row_max[i]).exp() * m.row_inv_sum[i]).eval();
            const int n_valid = std::max(0, std::min(cols, i + 1 - c0));  // causal
            if (n_valid < cols) A.row(rr).tail(cols - n_valid).setZero();
        }
    }
    w->dense.max = w->dense.sum;
    if (m.sel) {
        init(w->sparse);
        init(w->kept);
        std::vector<int32_t> keys;
        for (int rr = 0; rr < rows; ++rr) {
            const int i = r0 + rr;
            selection_row_keys(*m.sel, i, keys);
            float * kp = &w->kept.sum[size_t(rr) * cols];
            float * sp = &w->sparse.sum[size_t(rr) * cols];
            const float * dp = &w->dense.sum[size_t(rr) * cols];
            const float rec = m.row_recall[i];
            auto it = std::lower_bound(keys.begin(), keys.end(), c0);
            for (; it != keys.end() && *it < c1; ++it) {
                const int j = *it - c0;
                kp[j] = 1.0f;
                sp[j] = rec > 0 ? dp[j] / rec : 0.0f;
            }
        }
        w->sparse.max = w->sparse.sum;
        w->kept.max = w->kept.sum;
    }
    w->seconds = now_s() - t0;
    return w;
}

float head_map_weight(const head_map & m, int i, int j) {
    if (i < 0 || j < 0 || i >= m.L || j >= m.L || j > i) return 0.0f;
    const float * q = &m.q[size_t(i) * m.head_dim];
    const float * k = &m.k[size_t(j) * m.head_dim];
    float s = 0.0f;
    for (int t = 0; t < m.head_dim; ++t) s += q[t] * k[t];
    return std::exp(s - m.row_max[i]) * m.row_inv_sum[i];
}

} // namespace attnlab
