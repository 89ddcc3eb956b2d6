// Block-sparse flash attention on the CPU (see block_sparse.h).
//
// Same structure as dense_flash.cpp: S = Qs·Kᵀ and acc += P·V are small Eigen
// GEMMs on a (query block) x (key chunk) tile, and the online softmax rescales
// acc and l when a chunk raises a row's max. Differences: only kept key blocks
// are visited; token masks are applied inside the tile; a row may see no key
// at all in a chunk (token masks), so the -inf max is guarded; relu needs no
// max; hyperbolic replaces the dot product by the Poincaré distance of the
// pre-mapped points.
#include "attention/block_sparse.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>

namespace attnlab {

namespace {

using mat_rm = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using cmap_rm = Eigen::Map<const mat_rm, 0, Eigen::OuterStride<>>;
using map_rm = Eigen::Map<mat_rm, 0, Eigen::OuterStride<>>;

constexpr int k_chunk = 128;   // max keys per tile (the dense kernel's k_tile_k)
constexpr int k_max_block = 128;

struct sparse_scratch {
    mat_rm qs;   // scaled query block  [B, hd]
    mat_rm s;    // scores / weights    [B, k_chunk]
    mat_rm acc;  // unnormalised output [B, hd]
    Eigen::VectorXf m, l, alpha, msub;
    std::vector<uint64_t> bits;  // token mask: [kept block][row][word]

    void resize(int hd) {
        // Same shapes as the dense kernel's scratch for B = 64, so the GEMMs
        // see the same operands.
        qs.resize(k_max_block, hd);
        s.resize(k_max_block, k_chunk);
        acc.resize(k_max_block, hd);
        m.resize(k_max_block);
        l.resize(k_max_block);
        alpha.resize(k_max_block);
        msub.resize(k_max_block);
    }
};

// Per-call data for the hyperbolic score: every head's points mapped into the
// ball once, with their conformal factors 1 − c‖x‖².
struct ball_points {
    mat_rm q, k;               // [L, n_head*hd], [L, n_head_kv*hd]
    Eigen::MatrixXf lam_q, lam_k;  // [L, n_head], [L, n_head_kv]
};

void ball_map(const float * x, int64_t stride, int L, int n_h, int hd, float c, mat_rm & out, Eigen::MatrixXf & lam) {
    out.resize(L, (int64_t) n_h * hd);
    lam.resize(L, n_h);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < L; ++t) {
        for (int h = 0; h < n_h; ++h) {
            float * o = out.data() + (int64_t) t * n_h * hd + (int64_t) h * hd;
            const float * xi = x + t * stride + (int64_t) h * hd;
            poincare_expmap0(xi, hd, c, o);
            // 1 − c·r² from the radius in double: near the rim it is ~1e-3 and
            // recomputing it from the float point would lose 4 digits.
            double n2 = 0;
            for (int i = 0; i < hd; ++i) n2 += (double) xi[i] * xi[i];
            const double sc = std::sqrt((double) c), n = std::sqrt(n2);
            const double r = n > 0 ? std::min(std::tanh(sc * n) / sc, (1.0 - k_ball_eps) / sc) : 0.0;
            lam(t, h) = (float) (1.0 - c * r * r);
        }
    }
}

struct task {
    int h, I;
};

void sparse_tile(const attention_layer_io & io, const selection & sel, const score_fn & sf, const ball_points * bp,
                 int h, int I, sparse_scratch & sc, block_sparse_stats & st) {
    const int L = io.n_tokens;
    const int hd = io.head_dim;
    const int B = sel.block;
    const int g = io.kv_head_of(h);
    const int64_t q_stride = (int64_t) io.n_head * hd;
    const int64_t kv_stride = (int64_t) io.n_head_kv * hd;
    const int q0 = I * B;
    const int br = std::min(B, L - q0);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const bool is_relu = sf.kind == score_kind::relu;
    const bool is_hyp = sf.kind == score_kind::hyperbolic;

    map_rm out_tile(io.out + q0 * q_stride + (int64_t) h * hd, br, hd, Eigen::OuterStride<>(q_stride));
    const int32_t t_begin = sel.blk_ptr[I], t_end = sel.blk_ptr[I + 1];
    if (t_begin == t_end) {
        out_tile.setZero();
        return;
    }

    // Token mask of this query block as bits per kept block and row.
    const int words = (B + 63) / 64;
    if (sel.token_level) {
        const size_t n_bits = (size_t) (t_end - t_begin) * B * words;
        if (sc.bits.size() < n_bits) sc.bits.resize(n_bits);
        std::fill(sc.bits.begin(), sc.bits.begin() + n_bits, 0);
        // Runs of consecutive keys (windows) set whole words at a time, so a
        // row costs O(runs + words), not O(keys). Kept blocks and keys are both
        // sorted: the block slot only moves forward.
        for (int r = 0; r < br; ++r) {
            const int i = q0 + r;
            int32_t slot = t_begin;
            const int64_t t_end_row = sel.tok_ptr[i + 1];
            for (int64_t t = sel.tok_ptr[i]; t < t_end_row;) {
                int64_t u = t + 1;
                while (u < t_end_row && sel.tok_cols[u] == sel.tok_cols[u - 1] + 1) ++u;
                int j = sel.tok_cols[t];
                const int j_last = sel.tok_cols[u - 1];
                while (j <= j_last) {
                    const int J = j / B;
                    while (sel.blk_cols[slot] < J) ++slot;
                    const int c_lo = j - J * B;
                    const int c_hi = std::min(j_last, J * B + B - 1) - J * B;   // inclusive
                    uint64_t * row_bits = &sc.bits[((size_t) (slot - t_begin) * B + r) * words];
                    for (int w = c_lo / 64; w <= c_hi / 64; ++w) {
                        const int lo = std::max(c_lo, w * 64) - w * 64, hi = std::min(c_hi, w * 64 + 63) - w * 64;
                        const uint64_t upto = hi == 63 ? ~0ull : ((1ull << (hi + 1)) - 1);
                        row_bits[w] |= upto & ~((1ull << lo) - 1);
                    }
                    j = J * B + c_hi + 1;
                }
                t = u;
            }
        }
    }

    cmap_rm q_tile(io.q + q0 * q_stride + (int64_t) h * hd, br, hd, Eigen::OuterStride<>(q_stride));
    auto qs = sc.qs.topRows(br);
    if (!is_hyp) qs = q_tile * io.scale;

    auto acc = sc.acc.topRows(br);
    acc.setZero();
    auto m = sc.m.head(br);
    auto l = sc.l.head(br);
    auto alpha = sc.alpha.head(br);
    auto msub = sc.msub.head(br);
    m.setConstant(neg_inf);
    l.setZero();

    const int kv_end = io.causal ? std::min(L, q0 + br) : L;
    for (int32_t t = t_begin; t < t_end;) {
        // Merge consecutive kept blocks into one chunk of at most k_chunk keys.
        const int J0 = sel.blk_cols[t];
        int32_t t1 = t + 1;
        while (t1 < t_end && sel.blk_cols[t1] == sel.blk_cols[t1 - 1] + 1 && (t1 - t + 1) * B <= k_chunk) ++t1;
        const int k0 = J0 * B;
        const int bc = std::min(std::min(L, (sel.blk_cols[t1 - 1] + 1) * B), kv_end) - k0;
        st.blocks += t1 - t;
        st.tile_pairs += (int64_t) br * bc;

        cmap_rm k_tile(io.k + k0 * kv_stride + (int64_t) g * hd, bc, hd, Eigen::OuterStride<>(kv_stride));
        cmap_rm v_tile(io.v + k0 * kv_stride + (int64_t) g * hd, bc, hd, Eigen::OuterStride<>(kv_stride));
        auto s = sc.s.topLeftCorner(br, bc);

        if (is_hyp) {
            const int64_t qw = (int64_t) io.n_head * hd, kw = (int64_t) io.n_head_kv * hd;
            cmap_rm kh(bp->k.data() + (int64_t) k0 * kw + (int64_t) g * hd, bc, hd, Eigen::OuterStride<>(kw));
            for (int r = 0; r < br; ++r) {
                cmap_rm qh(bp->q.data() + (int64_t) (q0 + r) * qw + (int64_t) h * hd, 1, hd, Eigen::OuterStride<>(qw));
                const double lq = bp->lam_q(q0 + r, h);
                for (int j = 0; j < bc; ++j) {
                    const double diff2 = (kh.row(j) - qh.row(0)).squaredNorm();
                    const double d = poincare_distance_from_parts(diff2, lq, bp->lam_k(k0 + j, g), sf.c);
                    s(r, j) = (float) (-(double) sf.beta * d - (double) sf.gamma);
                }
            }
        } else {
            s.noalias() = qs * k_tile.transpose();
        }

        const float masked = is_relu ? 0.0f : neg_inf;
        if (is_relu) s.array() -= sf.relu_bias;
        if (io.causal && k0 + bc - 1 > q0) {
            for (int i = 0; i < br; ++i) {
                const int first_masked = q0 + i + 1 - k0;
                for (int j = std::max(first_masked, 0); j < bc; ++j) s(i, j) = masked;
            }
        }
        if (sel.token_level) {
            // Walk only the zero bits of each row's words (count-trailing-zeros):
            // fully kept rows of a block (window interiors) cost one compare.
            for (int b = 0; b < t1 - t; ++b) {
                const int c0 = b * B;                       // chunk column of the block's first key
                const int n_valid = std::min(B, bc - c0);   // keys of this block inside the chunk
                if (n_valid <= 0) break;
                const uint64_t * rows_bits = &sc.bits[(size_t) (t - t_begin + b) * B * words];
                for (int i = 0; i < br; ++i) {
                    for (int w = 0; w < words; ++w) {
                        const int nb_w = std::min(64, n_valid - w * 64);
                        if (nb_w <= 0) break;
                        const uint64_t valid = nb_w == 64 ? ~0ull : ((1ull << nb_w) - 1);
                        uint64_t z = ~rows_bits[(size_t) i * words + w] & valid;
                        while (z) {
                            s(i, c0 + w * 64 + __builtin_ctzll(z)) = masked;
                            z &= z - 1;
                        }
                    }
                }
            }
        }

        if (is_relu) {
            s = s.cwiseMax(0.0f);
            l += s.rowwise().sum();
            acc.noalias() += s * v_tile;
        } else {
            // Online softmax; a row with every key so far masked keeps m = -inf
            // and subtracts 0 instead, so exp gives (about) 0, never NaN; the
            // first real key later rescales that by alpha = exp(-inf) = 0.
            for (int i = 0; i < br; ++i) {
                const float m_new = std::max(m(i), s.row(i).maxCoeff());
                if (m_new == neg_inf) {
                    alpha(i) = 1.0f;
                    msub(i) = 0.0f;
                } else {
                    alpha(i) = std::exp(m(i) - m_new);
                    msub(i) = m_new;
                }
                m(i) = m_new;
            }
            s.array().colwise() -= msub.array();
            s.array() = s.array().exp();
            l.array() = l.array() * alpha.array() + s.array().rowwise().sum();
            acc.array().colwise() *= alpha.array();
            acc.noalias() += s * v_tile;
        }
        t = t1;
    }

    if (is_relu && !sf.relu_row_norm) {
        out_tile = acc / (float) L;
        return;
    }
    out_tile = acc.array().colwise() / l.array();
    // A row that saw no key keeps m = -inf. Its l is not exactly 0: Eigen's
    // vectorised exp clamps its argument (exp(-inf) becomes ~1e-38 on some
    // instruction sets), so test m, not l, and write zeros.
    for (int i = 0; i < br; ++i) {
        if (!(l(i) > 0.0f) || (!is_relu && m(i) == neg_inf)) out_tile.row(i).setZero();
    }
}

} // namespace

double block_sparse_stats::flops() const { return 4.0 * head_dim * (double) tile_pairs; }

block_sparse_stats attention_block_sparse(const attention_layer_io & io, const selection * sels, const score_fn & score) {
    block_sparse_stats total;
    total.head_dim = io.head_dim;
    if (io.n_tokens <= 0) return total;
    if (io.n_head <= 0 || io.n_head_kv <= 0 || io.head_dim <= 0 || io.n_head % io.n_head_kv != 0) {
        throw std::invalid_argument("attention_block_sparse: bad head configuration");
    }
    std::vector<task> tasks;
    for (int h = 0; h < io.n_head; ++h) {
        const selection & s = sels[h];
        if (s.n_tokens != io.n_tokens || s.causal != io.causal || !block_size_valid(s.block) ||
            (int) s.blk_ptr.size() != s.n_blocks() + 1) {
            throw std::invalid_argument("attention_block_sparse: selection of head " + std::to_string(h) +
                                        " does not match the layer (length, causality or block size)");
        }
        for (int I = 0; I < s.n_blocks(); ++I) tasks.push_back({h, I});
    }
    // Most expensive first (late query blocks hold the most causal keys),
    // then by head, as the dense kernel walks its tiles.
    std::stable_sort(tasks.begin(), tasks.end(), [&](const task & a, const task & b) {
        const int ra = a.I * sels[a.h].block, rb = b.I * sels[b.h].block;
        return ra != rb ? ra > rb : a.h < b.h;
    });

    ball_points bp;
    if (score.kind == score_kind::hyperbolic) {
        if (!(score.c > 0.0f)) throw std::invalid_argument("attention_block_sparse: hyperbolic c must be > 0");
        ball_map(io.q, (int64_t) io.n_head * io.head_dim, io.n_tokens, io.n_head, io.head_dim, score.c, bp.q, bp.lam_q);
        ball_map(io.k, (int64_t) io.n_head_kv * io.head_dim, io.n_tokens, io.n_head_kv, io.head_dim, score.c, bp.k,
                 bp.lam_k);
    }

    const int n_tasks = (int) tasks.size();
    int64_t blocks = 0, pairs = 0;
#pragma omp parallel reduction(+ : blocks, pairs)
    {
        sparse_scratch sc;
        sc.resize(io.head_dim);
        block_sparse_stats st;
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < n_tasks; ++t) {
            sparse_tile(io, sels[tasks[t].h], score, &bp, tasks[t].h, tasks[t].I, sc, st);
        }
        blocks += st.blocks;
        pairs += st.tile_pairs;
    }
    total.blocks = blocks;
    total.tile_pairs = pairs;
    return total;
}

} // namespace attnlab
