// Dense attention, tiled flash-style (Dao et al. 2022, on the CPU).
//
// For one (query head, query tile) we stream key/value tiles and keep, per
// query row, the running max m, the running softmax denominator l and an
// unnormalised accumulator acc = sum_j exp(s_j - m) v_j. When a new tile
// raises the max, acc and l are rescaled by exp(m_old - m_new). Scores live
// only in a Br x Bc tile, so memory is O(L * head_dim), never O(L^2).
// Both inner products are small Eigen GEMMs (S = Q K^T, acc += P V), which
// keeps the kernel close to GEMM speed; exp runs through Eigen's vectorised
// array exp.
#include "attention/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <Eigen/Core>

namespace attnlab {

namespace {

using mat_rm = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using cmap_rm = Eigen::Map<const mat_rm, 0, Eigen::OuterStride<>>;
using map_rm = Eigen::Map<mat_rm, 0, Eigen::OuterStride<>>;

constexpr int k_tile_q = 128;  // query rows per task (128x128 measured best, 2 and 16 threads)
constexpr int k_tile_k = 128;  // keys per streamed tile

// Per-thread scratch, sized once per call so the inner loop never allocates.
struct flash_scratch {
    mat_rm qs;   // scaled query tile   [br, hd]
    mat_rm s;    // scores / probs      [br, bc]
    mat_rm acc;  // unnormalised output [br, hd]
    Eigen::VectorXf m, l, alpha, sub;

    void resize(int hd) {
        qs.resize(k_tile_q, hd);
        s.resize(k_tile_q, k_tile_k);
        acc.resize(k_tile_q, hd);
        m.resize(k_tile_q);
        l.resize(k_tile_q);
        alpha.resize(k_tile_q);
        sub.resize(k_tile_q);
    }
};

void flash_tile(const attention_layer_io & io, int h, int q0, flash_scratch & sc) {
    const int L = io.n_tokens;
    const int hd = io.head_dim;
    const int g = io.kv_head_of(h);
    const int64_t q_stride = (int64_t) io.n_head * hd;
    const int64_t kv_stride = (int64_t) io.n_head_kv * hd;
    const int br = std::min(k_tile_q, L - q0);
    const float neg_inf = -std::numeric_limits<float>::infinity();

    // Scale Q once per tile instead of every score tile.
    cmap_rm q_tile(io.q + q0 * q_stride + (int64_t) h * hd, br, hd, Eigen::OuterStride<>(q_stride));
    auto qs = sc.qs.topRows(br);
    qs = q_tile * io.scale;

    auto acc = sc.acc.topRows(br);
    acc.setZero();
    auto m = sc.m.head(br);
    auto l = sc.l.head(br);
    auto alpha = sc.alpha.head(br);
    auto sub = sc.sub.head(br);
    m.setConstant(neg_inf);
    l.setZero();

    // Causal: keys beyond the last query row of this tile are never needed;
    // with a window, key tiles wholly before the first row's window neither.
    const int kv_end = io.causal ? std::min(L, q0 + br) : L;
    const int kv_begin = io.window > 0 ? std::max(0, q0 - io.window + 1) / k_tile_k * k_tile_k : 0;
    for (int k0 = kv_begin; k0 < kv_end; k0 += k_tile_k) {
        const int bc = std::min(k_tile_k, kv_end - k0);
        cmap_rm k_tile(io.k + k0 * kv_stride + (int64_t) g * hd, bc, hd, Eigen::OuterStride<>(kv_stride));
        cmap_rm v_tile(io.v + k0 * kv_stride + (int64_t) g * hd, bc, hd, Eigen::OuterStride<>(kv_stride));

        auto s = sc.s.topLeftCorner(br, bc);
        s.noalias() = qs * k_tile.transpose();
        if (io.softcap > 0.0f) s = (s.array() / io.softcap).tanh() * io.softcap;
        // The window: key j < i - window + 1 is masked for query row i.
        if (io.window > 0 && k0 < q0 + br - io.window) {
            for (int i = 0; i < br; ++i) {
                const int first_visible = q0 + i - io.window + 1 - k0;  // column of the window's first key
                for (int j = 0; j < std::min(first_visible, bc); ++j) s(i, j) = neg_inf;
            }
        }

        // Mask inside the tile that crosses the diagonal: key j > query i.
        if (io.causal && k0 + bc - 1 > q0) {
            for (int i = 0; i < br; ++i) {
                const int first_masked = q0 + i + 1 - k0;  // column of key q0+i+1
                for (int j = std::max(first_masked, 0); j < bc; ++j) s(i, j) = neg_inf;
            }
        }

        // Online softmax update. Without a window the first tile holds key 0,
        // which every row may see, so m is finite from then on. With one, a
        // row may see nothing in a tile: it subtracts 0 (exp(-inf) = 0) and
        // keeps m = -inf, never computing exp(-inf - -inf).
        for (int i = 0; i < br; ++i) {
            const float m_new = std::max(m(i), s.row(i).maxCoeff());
            if (m_new == neg_inf) {
                alpha(i) = 1.0f;
                sub(i) = 0.0f;
                continue;
            }
            alpha(i) = std::exp(m(i) - m_new);  // 0 on the first tile
            m(i) = m_new;
            sub(i) = m_new;
        }
        s.array().colwise() -= sub.array();
        s.array() = s.array().exp();
        l.array() = l.array() * alpha.array() + s.array().rowwise().sum();
        acc.array().colwise() *= alpha.array();
        acc.noalias() += s * v_tile;
    }

    map_rm out_tile(io.out + q0 * q_stride + (int64_t) h * hd, br, hd, Eigen::OuterStride<>(q_stride));
    out_tile = acc.array().colwise() / l.array();
}

} // namespace

void attention_dense_flash(const attention_layer_io & io) {
    if (io.n_tokens <= 0) return;
    if (io.n_head <= 0 || io.n_head_kv <= 0 || io.head_dim <= 0 || io.n_head % io.n_head_kv != 0) {
        throw std::invalid_argument("attention_dense_flash: bad head configuration");
    }
    const int n_qt = (io.n_tokens + k_tile_q - 1) / k_tile_q;
    const int n_tasks = io.n_head * n_qt;

#pragma omp parallel
    {
        flash_scratch sc;
        sc.resize(io.head_dim);
        // Causal tiles late in the sequence cost more; dynamic balances them.
        // Walk query tiles from the last (the most expensive) first.
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < n_tasks; ++t) {
            const int qt = n_qt - 1 - t / io.n_head;
            const int h = t % io.n_head;
            flash_tile(io, h, qt * k_tile_q, sc);
        }
    }
}

} // namespace attnlab
