#pragma once
// Flash attention forward, dense and block-sparse, on Hopper/Ampere tensor
// cores through mma.sync.m16n8k16 (bf16 or fp16 in, fp32 accumulate).
//
// Shape of one CTA (kNW warps, kBM = 16*kNW query rows):
//   * Q tile  [kBM x D]   in shared memory, then in registers (A fragments),
//   * K/V     [kBN x D]   two stages each in shared memory (cp.async double
//     buffer: the copy of key tile i+1 is in flight while tile i is computed),
//   * S = Q K^T [16 x kBN] and O [16 x D] per warp in fp32 registers,
//   * online softmax in base 2 (scale * log2 e folded into one FMA).
// Shared-memory rows are swizzled in 16-byte chunks (chunk ^ (row & 7)) so
// that ldmatrix and cp.async are free of bank conflicts.
//
// Block-sparse: per (batch, head, query block) a count and a list of kept key
// blocks (FlexAttention's kv_num_blocks / kv_indices), block size = kBM (128
// with 8 warps, 64 with 4 warps). A kept block is kBM/kBN key tiles. Key tiles
// that cross the diagonal (causal) or the end of the sequence are masked
// inside the tile; rows whose keys are all masked produce zeros.
//
// Token masks (TOKMASK, token-level selections: windows, strided, top-k
// keys...): a partially kept block carries a bit mask, kBM rows of kBM/64
// 64-bit words (bit j of row i: key j of the block is kept for query i), as
// FlexAttention's mask_mod does per pair; kv_mask_index says which mask a
// kept block uses (-1: every causal pair of the block). A key tile (kBN <= 64
// keys) lies inside one word of each row, so a thread tests its two rows'
// words, loaded once per tile.
//
// Score functions (core/attention/score.h), chosen at compile time (SCORE),
// inside the same tile loop:
//   0 softmax     p = exp(s*scale - m), online rescaling
//   1 relu        p = max(s*scale - b, 0), no max tracking; O / L or O / sum_j p
//   2 hyperbolic  q, k already mapped into the Poincare ball by a pre-pass
//                 (attention.cu: ball_map_kernel); from s = q.k and the per-row
//                 |q|^2, 2c/lambda_q and per-key |k|^2, 1/lambda_k:
//                 t = 2c |q-k|^2 / (lambda_q lambda_k),
//                 score = -beta/sqrt(c) * ln(1 + t + sqrt(t (t + 2))) - gamma,
//                 then the softmax path (scale 1).
#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace attnlab::cuda {

struct fa_params {
    const void * q; const void * k; const void * v; void * o;
    int B, H, Hkv, L;
    // element strides: [batch, head, token]; the head dimension is contiguous
    long long qs[3], ks[3], vs[3], os[3];
    float scale_log2;   // softmax scale * log2(e)
    int causal;
    // block-sparse only
    const int * kv_num_blocks;   // [mask_B][mask_H][nqb]
    const int * kv_indices;      // [mask_B][mask_H][nqb][max_kv_blocks]
    int nqb, max_kv_blocks, mask_B, mask_H;
    const int * kv_mask_index;                  // TOKMASK: like kv_indices; -1 = whole block
    const unsigned long long * token_masks;     // TOKMASK: [n][kBM rows][kBM / 64 words]
    // score variants (SCORE = 1 relu, 2 hyperbolic)
    float relu_scale, relu_bias;    // relu: p = max(s*relu_scale - relu_bias, 0)
    float out_div;                  // relu, norm=L: O / L (0: O / row sum)
    float hyp_k2;                   // hyperbolic: beta/sqrt(c) (score in log2 units, scale_log2 = 1)
    float hyp_g2;                   // gamma * log2(e)
    const float2 * qaux;            // [B*H][aux_ld]   (|q|^2, 2c/lambda_q) of the mapped rows
    const float2 * kaux;            // [B*Hkv][aux_ld] (|k|^2, 1/lambda_k)
    int aux_ld;                     // row stride of qaux/kaux, L rounded up to 128
};

// ---------------------------------------------------------------- primitives
template <typename T> struct elem;
// bf16 and fp16 differ in the pack intrinsic and the PTX type name only.
#define ATTNLAB_ELEM(CT, CT2, CVT, PTX)                                                                               \
    template <> struct elem<CT> {                                                                                     \
        static __device__ __forceinline__ uint32_t pack(float lo, float hi) {                                         \
            CT2 v = CVT(lo, hi);                                                                                      \
            return *reinterpret_cast<uint32_t *>(&v);                                                                 \
        }                                                                                                             \
        static __device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {       \
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." PTX "." PTX ".f32 "                                 \
                         "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"                                     \
                         : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                             \
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                             \
        }                                                                                                             \
    };
ATTNLAB_ELEM(__nv_bfloat16, __nv_bfloat162, __floats2bfloat162_rn, "bf16")
ATTNLAB_ELEM(__half, __half2, __floats2half2_rn, "f16")
#undef ATTNLAB_ELEM

__device__ __forceinline__ uint32_t smem_u32(const void * p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void * src, bool valid) {
    const int n = valid ? 16 : 0;   // 0 source bytes: the 16 destination bytes are zero-filled
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldsm_x4(uint32_t r[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// ---------------------------------------------------------------- tile types
// A [ROWS x D] tile of T in shared memory, rows of D/8 16-byte chunks, swizzled.
template <typename T, int ROWS, int D>
struct smem_tile {
    static constexpr int kChunks = D / 8;
    static constexpr int kBytes = ROWS * D * int(sizeof(T));
    T * base;
    __device__ __forceinline__ int offset(int row, int chunk) const {   // in elements
        return row * D + ((chunk ^ (row & 7)) << 3);
    }
    __device__ __forceinline__ uint32_t addr(int row, int chunk) const { return smem_u32(base + offset(row, chunk)); }
    // Asynchronous copy of rows [row0, row0+ROWS) of a global [.. x D] matrix
    // (row stride in elements); rows at or past n_rows are zero-filled.
    template <int NTHREADS>
    __device__ __forceinline__ void load_async(const T * g, long long stride, int row0, int n_rows, int tid) const {
#pragma unroll
        for (int i = 0; i < ROWS * kChunks / NTHREADS; ++i) {
            const int idx = tid + i * NTHREADS;
            const int r = idx / kChunks, c = idx % kChunks;
            const int gr = row0 + r;
            const bool ok = gr < n_rows;
            const T * src = g + (long long)(ok ? gr : 0) * stride + c * 8;
            cp_async_16(addr(r, c), src, ok);
        }
    }
};

// fp32 accumulator tile of one warp: 16 rows x N columns as N/8 mma C fragments.
// Element (f, e): row = lane/4 + 8*(e/2), column = 8*f + 2*(lane%4) + e%2.
template <int N>
struct acc_tile {
    float c[N / 8][4];
    __device__ __forceinline__ void zero() {
#pragma unroll
        for (int f = 0; f < N / 8; ++f)
#pragma unroll
            for (int e = 0; e < 4; ++e) c[f][e] = 0.f;
    }
};

// ---------------------------------------------------------------- the kernel
// NW warps, each owning MF x 16 query rows. MF = 1 keeps the warp's Q
// fragments in registers; MF = 2 re-reads them from shared memory but reuses
// every K/V fragment for two row groups, halving shared-memory reads per FLOP
// (mma.sync attention on H100 is bound by ldmatrix bandwidth: see NOTES.md).
template <int D, int NW, int MF>
struct fa_shape {
    static constexpr int kThreads = 32 * NW;
    static constexpr int kBM = 16 * NW * MF;   // query rows per CTA = sparse block size
    static constexpr int kBN = (D == 128 && MF == 2) ? 32 : 64;   // key rows per tile (32: fewer S registers)
    static constexpr int kSmem = (kBM * D + 4 * kBN * D) * 2;   // Q + 2 x (K, V)
    static constexpr int kMinBlocks = (D <= 64 || NW * MF <= 4) ? 2 : 1;
};

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ float fast_log2(float x) {
    float y;
    asm("lg2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

enum { kScoreSoftmax = 0, kScoreRelu = 1, kScoreHyperbolic = 2 };

// Hyperbolic score in base-2 units (the softmax path then runs with scale 1):
// -(beta/sqrt(c)) log2(1 + t + sqrt(t(t+2))) - gamma log2(e), from the dot
// product s of two mapped points and their (|x|^2, factor) pairs.
__device__ __forceinline__ float hyperbolic_score2(float s, float2 qa, float2 ka, float k2, float g2) {
    const float diff2 = fmaxf(qa.x + ka.x - 2.f * s, 0.f);   // |q-k|^2 (rounding can make it slightly < 0)
    const float t = diff2 * qa.y * ka.y;                      // 2c |q-k|^2 / (lambda_q lambda_k)
    const float u = t + sqrtf(t * (t + 2.f));                 // arcosh(1+t) = ln(1+u)
    return -k2 * fast_log2(1.f + u) - g2;
}

// The key tiles one CTA visits, in order: every tile up to the causal limit
// (dense), or the kBN-row tiles of the query block's kept blocks (sparse).
template <bool SPARSE, int kBM, int kBN>
struct fa_kv_tiles {
    static constexpr int kTilesPerBlock = kBM / kBN;
    int n = 0;
    const int * blocks = nullptr;
    const int * masks = nullptr;   // kv_mask_index row (token masks only)
    __device__ __forceinline__ int start(int i) const {
        if constexpr (SPARSE) return __ldg(blocks + i / kTilesPerBlock) * kBM + (i % kTilesPerBlock) * kBN;
        else return i * kBN;
    }
    __device__ __forceinline__ fa_kv_tiles(const fa_params & p, int b, int h, int qb, int q0) {
        if constexpr (SPARSE) {
            const long long row = ((long long)(b % p.mask_B) * p.mask_H + (h % p.mask_H)) * p.nqb + qb;
            n = p.kv_num_blocks[row] * kTilesPerBlock;
            blocks = p.kv_indices + row * p.max_kv_blocks;
            if (p.kv_mask_index) masks = p.kv_mask_index + row * p.max_kv_blocks;
        } else {
            const int kv_end = p.causal ? min(p.L, q0 + kBM) : p.L;
            n = (kv_end + kBN - 1) / kBN;
        }
    }
};

// S = Q K^T for one key tile and the warp's MF row groups. A fragments of Q
// come from registers (qf, MF = 1) or from shared memory.
template <typename T, int D, int MF, int kBM, int kBN, int NQ>
__device__ __forceinline__ void fa_qk_tile(acc_tile<kBN> (&s)[MF], const smem_tile<T, kBM, D> & sQ,
                                           const smem_tile<T, kBN, D> & sK, const uint32_t (&qf)[NQ][4], int wrow0,
                                           int lane) {
    constexpr bool kQRegs = (MF == 1);
#pragma unroll
    for (int mf = 0; mf < MF; ++mf) s[mf].zero();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[MF][4];
        if constexpr (!kQRegs) {
#pragma unroll
            for (int mf = 0; mf < MF; ++mf)
                ldsm_x4(qa[mf], sQ.addr(wrow0 + 16 * mf + (lane & 15), 2 * kk + (lane >> 4)));
        }
#pragma unroll
        for (int jp = 0; jp < kBN / 16; ++jp) {
            uint32_t kf[4];
            ldsm_x4(kf, sK.addr(jp * 16 + ((lane >> 4) << 3) + (lane & 7), 2 * kk + ((lane >> 3) & 1)));
#pragma unroll
            for (int mf = 0; mf < MF; ++mf) {
                const uint32_t * a = kQRegs ? qf[kQRegs ? kk : 0] : qa[mf];
                elem<T>::mma(s[mf].c[2 * jp], a, kf[0], kf[1]);
                elem<T>::mma(s[mf].c[2 * jp + 1], a, kf[2], kf[3]);
            }
        }
    }
}

// The score function on one row group's raw dot products (softmax: none
// here), then the masks inside the tile: past the end and above the diagonal
// (weight 0: -inf before the softmax, 0 for relu).
// row0: the group's first row (the tile needs masks when its keys cross the
// end or the diagonal of any of its rows).
// bits (token masks): this thread's first row's word of the block's mask
// (its second row is 8 rows, 8*kw words, further), keys from bit bit0 on;
// nullptr: no token mask on this tile.
template <int SCORE, int kBN, bool TOKMASK = false>
__device__ __forceinline__ void fa_score_mask(acc_tile<kBN> & s, const fa_params & p, const float2 (&qa)[2],
                                              const float2 * kaux, int kv0, int row0, int lane,
                                              const unsigned long long * bits = nullptr, int kw = 0, int bit0 = 0) {
    const int row_lo = row0 + (lane >> 2);   // this thread's rows: row_lo and row_lo + 8
    constexpr int kNF = kBN / 8;
    if constexpr (SCORE == kScoreRelu) {
#pragma unroll
        for (int f = 0; f < kNF; ++f)
#pragma unroll
            for (int e = 0; e < 4; ++e) s.c[f][e] = fmaxf(fmaf(s.c[f][e], p.relu_scale, -p.relu_bias), 0.f);
    } else if constexpr (SCORE == kScoreHyperbolic) {
#pragma unroll
        for (int f = 0; f < kNF; ++f) {
            // keys 2(lane%4) and +1 of fragment f: one 16-byte load (aux rows padded to 128)
            const float4 ka = __ldg(reinterpret_cast<const float4 *>(kaux + kv0 + 8 * f + 2 * (lane & 3)));
#pragma unroll
            for (int e = 0; e < 4; ++e)
                s.c[f][e] = hyperbolic_score2(s.c[f][e], qa[e >> 1],
                                              (e & 1) ? make_float2(ka.z, ka.w) : make_float2(ka.x, ka.y), p.hyp_k2,
                                              p.hyp_g2);
        }
    }
    constexpr float kMasked = SCORE == kScoreRelu ? 0.f : -INFINITY;
    const bool need_mask = (kv0 + kBN > p.L) || (p.causal && kv0 + kBN - 1 > row0);
    if (need_mask) {
#pragma unroll
        for (int f = 0; f < kNF; ++f)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = kv0 + 8 * f + 2 * (lane & 3) + (e & 1);
                const int row = row_lo + 8 * (e >> 1);
                if (key >= p.L || (p.causal && key > row)) s.c[f][e] = kMasked;
            }
    }
    if constexpr (TOKMASK) {
        if (bits) {
            const unsigned long long w[2] = {__ldg(bits) >> bit0, __ldg(bits + 8 * kw) >> bit0};
#pragma unroll
            for (int f = 0; f < kNF; ++f)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int c = 8 * f + 2 * (lane & 3) + (e & 1);
                    if (!((w[e >> 1] >> c) & 1ull)) s.c[f][e] = kMasked;
                }
        }
    }
}

// S -> P for one row group: the online softmax in base 2 (O rescaled by
// alpha), or for relu only the running row sums (P = s, no max).
template <int SCORE, int D, int kBN>
__device__ __forceinline__ void fa_softmax_rows(acc_tile<kBN> & s, acc_tile<D> & o, float (&m_run)[2],
                                                float (&l_run)[2], const fa_params & p) {
    constexpr int kNF = kBN / 8;
    if constexpr (SCORE == kScoreRelu) {
#pragma unroll
        for (int r = 0; r < 2; ++r)
#pragma unroll
            for (int f = 0; f < kNF; ++f) l_run[r] += s.c[f][2 * r] + s.c[f][2 * r + 1];
    } else {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = m_run[r];
#pragma unroll
            for (int f = 0; f < kNF; ++f) mx = fmaxf(mx, fmaxf(s.c[f][2 * r], s.c[f][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_use = (mx == -INFINITY) ? 0.f : mx * p.scale_log2;
            // max unchanged: alpha exactly 1 (keeps fully masked tiles bit-neutral)
            const float alpha = (mx == m_run[r]) ? 1.f : fast_exp2(m_run[r] * p.scale_log2 - m_use);
            m_run[r] = mx;
            float sum = 0.f;
#pragma unroll
            for (int f = 0; f < kNF; ++f) {
                s.c[f][2 * r] = fast_exp2(fmaf(s.c[f][2 * r], p.scale_log2, -m_use));
                s.c[f][2 * r + 1] = fast_exp2(fmaf(s.c[f][2 * r + 1], p.scale_log2, -m_use));
                sum += s.c[f][2 * r] + s.c[f][2 * r + 1];
            }
            l_run[r] = l_run[r] * alpha + sum;
#pragma unroll
            for (int f = 0; f < D / 8; ++f) {
                o.c[f][2 * r] *= alpha;
                o.c[f][2 * r + 1] *= alpha;
            }
        }
    }
}

// O += P V (P from registers as A fragments, V through ldmatrix.trans).
template <typename T, int D, int MF, int kBN>
__device__ __forceinline__ void fa_pv_tile(acc_tile<D> (&o)[MF], const acc_tile<kBN> (&s)[MF],
                                           const smem_tile<T, kBN, D> & sV, int lane) {
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
        uint32_t pf[MF][4];
#pragma unroll
        for (int mf = 0; mf < MF; ++mf) {
            pf[mf][0] = elem<T>::pack(s[mf].c[2 * kk][0], s[mf].c[2 * kk][1]);
            pf[mf][1] = elem<T>::pack(s[mf].c[2 * kk][2], s[mf].c[2 * kk][3]);
            pf[mf][2] = elem<T>::pack(s[mf].c[2 * kk + 1][0], s[mf].c[2 * kk + 1][1]);
            pf[mf][3] = elem<T>::pack(s[mf].c[2 * kk + 1][2], s[mf].c[2 * kk + 1][3]);
        }
#pragma unroll
        for (int jp = 0; jp < D / 16; ++jp) {
            uint32_t vf[4];
            ldsm_x4_t(vf, sV.addr(16 * kk + (((lane >> 3) & 1) << 3) + (lane & 7), 2 * jp + (lane >> 4)));
#pragma unroll
            for (int mf = 0; mf < MF; ++mf) {
                elem<T>::mma(o[mf].c[2 * jp], pf[mf], vf[0], vf[1]);
                elem<T>::mma(o[mf].c[2 * jp + 1], pf[mf], vf[2], vf[3]);
            }
        }
    }
}

// The pipeline: Q and key tile 0 in flight, then per key tile: prefetch the
// next one (cp.async double buffer), S = Q K^T, score + masks, online
// softmax, O += P V.
template <typename T, int D, int NW, int MF, bool SPARSE, int SCORE = kScoreSoftmax, bool TOKMASK = false>
__global__ void __launch_bounds__(fa_shape<D, NW, MF>::kThreads, fa_shape<D, NW, MF>::kMinBlocks)
flash_fwd_kernel(const fa_params p) {
    using S = fa_shape<D, NW, MF>;
    constexpr int kBM = S::kBM, kBN = S::kBN, kT = S::kThreads;
    constexpr bool kQRegs = (MF == 1);
    extern __shared__ __align__(128) unsigned char smem[];
    const smem_tile<T, kBM, D> sQ{reinterpret_cast<T *>(smem)};
    // stage s of K at sQ + kBM*D + s*kBN*D, of V two tiles further (no arrays:
    // a run-time index into an array of tiles would put it in local memory)
    auto sK = [&](int s) { return smem_tile<T, kBN, D>{sQ.base + kBM * D + s * kBN * D}; };
    auto sV = [&](int s) { return smem_tile<T, kBN, D>{sQ.base + kBM * D + (2 + s) * kBN * D}; };

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int qb = gridDim.x - 1 - blockIdx.x;   // longest (causal) rows first
    const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
    const int hk = h / (p.H / p.Hkv);
    const int q0 = qb * kBM;
    const int wrow0 = warp * 16 * MF;   // first row of this warp inside the tile

    const T * gQ = static_cast<const T *>(p.q) + b * p.qs[0] + h * p.qs[1];
    const T * gK = static_cast<const T *>(p.k) + b * p.ks[0] + hk * p.ks[1];
    const T * gV = static_cast<const T *>(p.v) + b * p.vs[0] + hk * p.vs[1];
    T * gO = static_cast<T *>(p.o) + b * p.os[0] + h * p.os[1];
    const fa_kv_tiles<SPARSE, kBM, kBN> kv(p, b, h, qb, q0);

    sQ.template load_async<kT>(gQ + (long long)q0 * p.qs[2], p.qs[2], 0, p.L - q0, tid);
    cp_async_commit();
    if (kv.n > 0) {
        const int k0 = kv.start(0);
        sK(0).template load_async<kT>(gK, p.ks[2], k0, p.L, tid);
        sV(0).template load_async<kT>(gV, p.vs[2], k0, p.L, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    // MF = 1: Q fragments of this warp's 16 rows, kept in registers.
    uint32_t qf[kQRegs ? D / 16 : 1][4];
    if constexpr (kQRegs) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(qf[kk], sQ.addr(wrow0 + (lane & 15), 2 * kk + (lane >> 4)));
    }

    acc_tile<D> o[MF];
    float m_run[MF][2], l_run[MF][2];   // running max (raw scores), partial row sums
#pragma unroll
    for (int mf = 0; mf < MF; ++mf) {
        o[mf].zero();
        m_run[mf][0] = m_run[mf][1] = -INFINITY;
        l_run[mf][0] = l_run[mf][1] = 0.f;
    }
    // hyperbolic: (|q|^2, 2c/lambda_q) of this thread's rows (aux rows are
    // padded to a multiple of 128, so rows past L are readable)
    float2 qa[MF][2];
    const float2 * kaux = nullptr;
    if constexpr (SCORE == kScoreHyperbolic) {
        const float2 * qaux = p.qaux + (long long)(b * p.H + h) * p.aux_ld;
        kaux = p.kaux + (long long)(b * p.Hkv + hk) * p.aux_ld;
#pragma unroll
        for (int mf = 0; mf < MF; ++mf)
#pragma unroll
            for (int r = 0; r < 2; ++r) qa[mf][r] = qaux[q0 + wrow0 + 16 * mf + (lane >> 2) + 8 * r];
    }

    for (int it = 0; it < kv.n; ++it) {
        const int buf = it & 1;
        const int kv0 = kv.start(it);
        if (it + 1 < kv.n) {   // prefetch tile it+1 while computing tile it
            const int k1 = kv.start(it + 1);
            sK(buf ^ 1).template load_async<kT>(gK, p.ks[2], k1, p.L, tid);
            sV(buf ^ 1).template load_async<kT>(gV, p.vs[2], k1, p.L, tid);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        acc_tile<kBN> s[MF];
        fa_qk_tile<T, D, MF>(s, sQ, sK(buf), qf, wrow0, lane);
        // token mask of this tile's block, if partially kept: rows from
        // this thread's first, the word holding the tile's keys
        constexpr int kW = kBM / 64;
        const unsigned long long * bits = nullptr;
        if constexpr (TOKMASK) {
            const int m = kv.masks ? __ldg(kv.masks + it / (kBM / kBN)) : -1;
            if (m >= 0)
                bits = p.token_masks + ((long long)m * kBM + wrow0 + (lane >> 2)) * kW + (kv0 % kBM) / 64;
        }
#pragma unroll
        for (int mf = 0; mf < MF; ++mf) {
            fa_score_mask<SCORE, kBN, TOKMASK>(s[mf], p, qa[mf], kaux, kv0, q0 + wrow0 + 16 * mf, lane,
                                               bits ? bits + 16 * mf * kW : nullptr, kW, kv0 % 64);
            fa_softmax_rows<SCORE>(s[mf], o[mf], m_run[mf], l_run[mf], p);
        }
        fa_pv_tile<T>(o, s, sV(buf), lane);
        __syncthreads();   // buffer `buf` is refilled at iteration it+1
    }
    cp_async_wait<0>();

    // Epilogue: normalise, stage this warp's rows in its own part of sQ
    // (only this warp ever read those rows), 16-byte stores. The __syncwarp
    // orders this warp's earlier ldmatrix reads of those rows (with no key
    // tile, no __syncthreads came in between; racecheck flagged it).
    __syncwarp();
#pragma unroll
    for (int mf = 0; mf < MF; ++mf) {
        float inv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float l = l_run[mf][r];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            inv[r] = (l > 0.f) ? 1.f / l : 0.f;   // all keys masked: zeros, not NaN
            if constexpr (SCORE == kScoreRelu)
                if (p.out_div > 0.f) inv[r] = 1.f / p.out_div;   // relu, norm=L
        }
#pragma unroll
        for (int f = 0; f < D / 8; ++f)
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int row = wrow0 + 16 * mf + (lane >> 2) + 8 * r;
                *reinterpret_cast<uint32_t *>(sQ.base + sQ.offset(row, f) + 2 * (lane & 3)) =
                    elem<T>::pack(o[mf].c[f][2 * r] * inv[r], o[mf].c[f][2 * r + 1] * inv[r]);
            }
    }
    __syncwarp();
    constexpr int kChunks = D / 8;
#pragma unroll
    for (int i = 0; i < 16 * MF * kChunks / 32; ++i) {
        const int idx = lane + 32 * i;
        const int r = idx / kChunks, c = idx % kChunks;
        const int grow = q0 + wrow0 + r;
        if (grow < p.L)
            *reinterpret_cast<uint4 *>(gO + (long long)grow * p.os[2] + c * 8) =
                *reinterpret_cast<const uint4 *>(sQ.base + sQ.offset(wrow0 + r, c));
    }
}

} // namespace attnlab::cuda
