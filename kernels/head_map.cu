// One head's attention map on the GPU (kernels/head_map_kernels.h): logits
// q.k in fp32 over 64 x 64 tiles, softmax statistics per row, weights pooled
// straight into the finest LOD level, coarser levels by 2x2 pooling. What the
// CPU's head_map_compute (core/metrics/head_map.cpp) computes, in the same
// float operations per weight (fl(q * scale) . k, exp(s - max) * (1 / sum)).
//
// Pipeline per 64-row query block (FlashAttention's loop, without V):
//   stage a 32-wide chunk of Q rows and K rows in shared memory -> 4 x 4
//   register tile of logits per thread -> next chunk ... -> a 64 x 64 tile.
// The selection arrives as its own arrays (token rows or block lists) and
// becomes keep bits per causal tile on the GPU (hm_bits_*), so no host pass
// over L x keys precedes the map.
// hm_rows sweeps the key tiles twice (max, then sum / entropy / kept mass);
// hm_pool visits every causal tile once, turns its logits into dense, sparse
// and kept values and pools each through one shared tile into f0 x f0 cells.
#include "head_map_kernels.h"

#include <cuda_runtime.h>

namespace attnlab::cuda {

namespace {

constexpr int T = k_hm_tile;   // query rows and key columns of a tile
constexpr int DK = 32;         // head-dim chunk staged in shared memory
constexpr int NT = 256;        // threads: 16 x 16
constexpr int RPT = 4;         // rows per thread: ty * 4 + r
constexpr int CPT = 4;         // columns per thread: tx + 16 * c (no bank conflicts on K)

// Staged operands: one DK-wide chunk of the tile's 64 Q rows and 64 K rows
// (padded by one column against bank conflicts).
struct hm_stage {
    float q[T][DK + 1];
    float k[T][DK + 1];
};

// A 64 x 64 logit tile spread over the block: thread (ty, tx) holds rows
// ty * RPT + r and columns tx + 16 * c.
struct hm_logits {
    float s[RPT][CPT];
};

__device__ __forceinline__ int hm_tx() { return threadIdx.x % 16; }
__device__ __forceinline__ int hm_ty() { return threadIdx.x / 16; }

// Logits of rows i0.. and keys j0.. (zero outside the sequence).
__device__ void hm_tile_logits(const hm_args & a, int i0, int j0, hm_stage & sm, hm_logits & t) {
    const int tid = threadIdx.x, tx = hm_tx(), ty = hm_ty();
#pragma unroll
    for (int r = 0; r < RPT; ++r)
#pragma unroll
        for (int c = 0; c < CPT; ++c) t.s[r][c] = 0.0f;
    for (int k0 = 0; k0 < a.d; k0 += DK) {
        __syncthreads();   // the previous chunk is read by everyone
        for (int e = tid; e < T * DK; e += NT) {
            const int r = e / DK, c = e % DK, kk = k0 + c;
            const int i = i0 + r, j = j0 + r;
            // fl(q * scale) first, as the CPU's head_map_extract rounds it.
            const float qv = (i < a.L && kk < a.d) ? a.q[(long long)i * a.q_stride + kk] : 0.0f;
            sm.q[r][c] = __fmul_rn(qv, a.scale);
            sm.k[r][c] = (j < a.L && kk < a.d) ? a.k[(long long)j * a.k_stride + kk] : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int c = 0; c < DK; ++c) {
            float qa[RPT], kb[CPT];
#pragma unroll
            for (int r = 0; r < RPT; ++r) qa[r] = sm.q[ty * RPT + r][c];
#pragma unroll
            for (int b = 0; b < CPT; ++b) kb[b] = sm.k[tx + 16 * b][c];
#pragma unroll
            for (int r = 0; r < RPT; ++r)
#pragma unroll
                for (int b = 0; b < CPT; ++b) t.s[r][b] = fmaf(qa[r], kb[b], t.s[r][b]);
        }
    }
}

// Reductions over the 16 threads of one row group (lanes differing in the low 4 bits).
__device__ __forceinline__ float hm_max16(float v) {
    for (int o = 8; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float hm_sum16(float v) {
    for (int o = 8; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The selection's kept columns of row r of causal tile (I, J), one bit per column.
__device__ __forceinline__ unsigned long long hm_keep_word(const hm_args & a, int I, int J, int r) {
    return a.keep_bits[((long long)I * (I + 1) / 2 + J) * T + r];
}

// One warp per query row: its kept keys into the row's words.
__global__ void hm_bits_rows_kernel(const long long * tok_ptr, const int32_t * tok_cols, int L,
                                    unsigned long long * bits) {
    const int lane = threadIdx.x % 32, i = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (i >= L) return;
    const int I = i / T, r = i % T;
    for (long long e = tok_ptr[i] + lane; e < tok_ptr[i + 1]; e += 32) {
        const int j = tok_cols[e];
        if (j < 0 || j > i) continue;
        const int J = j / T;
        atomicOr(&bits[((long long)I * (I + 1) / 2 + J) * T + r], 1ull << (j % T));
    }
}

// One thread block per query block of the mask: each (kept block, row) sets
// the row's bits of the block's columns (one or two words).
__global__ void hm_bits_blocks_kernel(const int32_t * blk_ptr, const int32_t * blk_cols, int L, int B,
                                      unsigned long long * bits) {
    const int IB = blockIdx.x, p0 = blk_ptr[IB], n = (blk_ptr[IB + 1] - p0) * B;
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        const int i = IB * B + e % B, j0 = blk_cols[p0 + e / B] * B;
        if (i >= L) continue;
        const int I = i / T, r = i % T;
        for (int j = j0; j < j0 + B; j += T) {   // the words this block covers
            const int J = j / T;
            if (J > I) break;
            const int w = B < T ? B : T;   // columns of the block in this word
            const unsigned long long m = w == T ? ~0ull : ((1ull << w) - 1) << (j % T);
            atomicOr(&bits[((long long)I * (I + 1) / 2 + J) * T + r], m);
        }
    }
}

__global__ void __launch_bounds__(NT) hm_rows_kernel(hm_args a) {
    __shared__ hm_stage sm;
    const int I = blockIdx.x, i0 = I * T;
    const int tx = hm_tx(), ty = hm_ty();
    hm_logits t;
    float mx[RPT];
#pragma unroll
    for (int r = 0; r < RPT; ++r) mx[r] = -INFINITY;
    for (int J = 0; J <= I; ++J) {   // sweep 1: row max over j <= i
        const int j0 = J * T;
        hm_tile_logits(a, i0, j0, sm, t);
#pragma unroll
        for (int r = 0; r < RPT; ++r) {
            const int i = i0 + ty * RPT + r;
#pragma unroll
            for (int b = 0; b < CPT; ++b) {
                const int j = j0 + tx + 16 * b;
                if (j <= i && j < a.L) mx[r] = fmaxf(mx[r], t.s[r][b]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RPT; ++r) mx[r] = hm_max16(mx[r]);

    float z[RPT], ex[RPT], zk[RPT];
#pragma unroll
    for (int r = 0; r < RPT; ++r) z[r] = ex[r] = zk[r] = 0.0f;
    for (int J = 0; J <= I; ++J) {   // sweep 2: sum exp, sum exp * (s - max), kept part
        const int j0 = J * T;
        hm_tile_logits(a, i0, j0, sm, t);
#pragma unroll
        for (int r = 0; r < RPT; ++r) {
            const int i = i0 + ty * RPT + r;
            const unsigned long long kw = a.keep_bits ? hm_keep_word(a, I, J, ty * RPT + r) : 0ull;
#pragma unroll
            for (int b = 0; b < CPT; ++b) {
                const int j = j0 + tx + 16 * b;
                if (j > i || j >= a.L) continue;
                const float lg = t.s[r][b] - mx[r];
                const float e = expf(lg);
                z[r] += e;
                ex[r] += e * lg;
                if ((kw >> (tx + 16 * b)) & 1ull) zk[r] += e;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RPT; ++r) {
        const float zs = hm_sum16(z[r]), es = hm_sum16(ex[r]), ks = hm_sum16(zk[r]);
        const int i = i0 + ty * RPT + r;
        if (tx != 0 || i >= a.L) continue;
        const float inv = 1.0f / zs;
        a.row_max[i] = mx[r];
        a.row_inv_sum[i] = inv;
        a.row_entropy[i] = logf(zs) - es * inv;
        if (a.row_recall) a.row_recall[i] = ks * inv;
    }
}

// Pools a 64 x 64 shared tile of tile (I, J) into f x f cells of an n0 x n0 level.
__device__ void hm_pool_cells(const float (*w)[T + 1], int f, int I, int J, int n0, float * lmax, float * lsum) {
    const int C = T / f;   // cells per tile side
    for (int cell = threadIdx.x; cell < C * C; cell += NT) {
        const int cr = cell / C, cc = cell % C;
        const int R = I * C + cr, Cc = J * C + cc;
        if (R >= n0 || Cc >= n0) continue;
        float m = 0.0f, s = 0.0f;   // weights are >= 0; cells past the diagonal or L hold zeros, as on the CPU
        for (int rr = 0; rr < f; ++rr)
            for (int c2 = 0; c2 < f; ++c2) {
                const float v = w[cr * f + rr][cc * f + c2];
                m = fmaxf(m, v);
                s += v;
            }
        lmax[(long long)R * n0 + Cc] = m;
        lsum[(long long)R * n0 + Cc] = s;
    }
}

__global__ void __launch_bounds__(NT) hm_pool_kernel(hm_args a) {
    const int I = blockIdx.y, J = blockIdx.x;
    if (J > I) return;   // above the diagonal: zero (set before the launch)
    __shared__ hm_stage sm;
    __shared__ float w[T][T + 1];
    const int i0 = I * T, j0 = J * T, n0 = (a.L + a.f0 - 1) / a.f0;
    const int tx = hm_tx(), ty = hm_ty();
    hm_logits t;
    hm_tile_logits(a, i0, j0, sm, t);

    float dw[RPT][CPT];
    unsigned long long kw[RPT];
    float rec[RPT];
#pragma unroll
    for (int r = 0; r < RPT; ++r) {
        const int i = i0 + ty * RPT + r;
        const float m = i < a.L ? a.row_max[i] : 0.0f, inv = i < a.L ? a.row_inv_sum[i] : 0.0f;
        rec[r] = (a.keep_bits && i < a.L) ? a.row_recall[i] : 0.0f;
        kw[r] = a.keep_bits ? hm_keep_word(a, I, J, ty * RPT + r) : 0ull;
#pragma unroll
        for (int b = 0; b < CPT; ++b) {
            const int j = j0 + tx + 16 * b;
            const bool valid = i < a.L && j <= i;
            if (!valid) kw[r] &= ~(1ull << (tx + 16 * b));
            dw[r][b] = valid ? expf(t.s[r][b] - m) * inv : 0.0f;
            w[ty * RPT + r][tx + 16 * b] = dw[r][b];
        }
    }
    __syncthreads();
    hm_pool_cells(w, a.f0, I, J, n0, a.dense_max, a.dense_sum);
    if (!a.keep_bits) return;

    __syncthreads();   // sparse: kept weights renormalised by the row's kept mass
#pragma unroll
    for (int r = 0; r < RPT; ++r)
#pragma unroll
        for (int b = 0; b < CPT; ++b) {
            const bool keep = (kw[r] >> (tx + 16 * b)) & 1ull;
            w[ty * RPT + r][tx + 16 * b] = keep && rec[r] > 0.0f ? dw[r][b] / rec[r] : 0.0f;
        }
    __syncthreads();
    hm_pool_cells(w, a.f0, I, J, n0, a.sparse_max, a.sparse_sum);

    __syncthreads();   // kept: 1 per kept pair
#pragma unroll
    for (int r = 0; r < RPT; ++r)
#pragma unroll
        for (int b = 0; b < CPT; ++b) w[ty * RPT + r][tx + 16 * b] = ((kw[r] >> (tx + 16 * b)) & 1ull) ? 1.0f : 0.0f;
    __syncthreads();
    hm_pool_cells(w, a.f0, I, J, n0, a.kept_max, a.kept_sum);
}

// lod_downsample2 (attention/lod_level.h): the same children in the same order.
__global__ void hm_downsample_kernel(hm_level_maps m, int sn, int dn) {
    const int J = blockIdx.x * blockDim.x + threadIdx.x, I = blockIdx.y, k = blockIdx.z;
    if (J >= dn) return;
    float mx = -INFINITY, s = 0.0f;
    for (int di = 0; di < 2; ++di) {
        const int r = 2 * I + di;
        if (r >= sn) continue;
        for (int dj = 0; dj < 2; ++dj) {
            const int c = 2 * J + dj;
            if (c >= sn) continue;
            mx = fmaxf(mx, m.src_max[k][(long long)r * sn + c]);
            s += m.src_sum[k][(long long)r * sn + c];
        }
    }
    m.dst_max[k][(long long)I * dn + J] = mx;
    m.dst_sum[k][(long long)I * dn + J] = s;
}

int launched() { return (int)cudaGetLastError(); }

} // namespace

int hm_bits_from_rows(const long long * tok_ptr, const int32_t * tok_cols, int L, unsigned long long * bits,
                      void * stream) {
    hm_bits_rows_kernel<<<(L + 7) / 8, 256, 0, (cudaStream_t)stream>>>(tok_ptr, tok_cols, L, bits);
    return launched();
}

int hm_bits_from_blocks(const int32_t * blk_ptr, const int32_t * blk_cols, int L, int B, unsigned long long * bits,
                        void * stream) {
    hm_bits_blocks_kernel<<<(L + B - 1) / B, 256, 0, (cudaStream_t)stream>>>(blk_ptr, blk_cols, L, B, bits);
    return launched();
}

int hm_rows(const hm_args & a, void * stream) {
    const int n64 = (a.L + T - 1) / T;
    hm_rows_kernel<<<n64, NT, 0, (cudaStream_t)stream>>>(a);
    return launched();
}

int hm_pool(const hm_args & a, void * stream) {
    const int n64 = (a.L + T - 1) / T;
    hm_pool_kernel<<<dim3(n64, n64), NT, 0, (cudaStream_t)stream>>>(a);
    return launched();
}

int hm_downsample(const hm_level_maps & m, int n_maps, int sn, void * stream) {
    const int dn = (sn + 1) / 2;
    hm_downsample_kernel<<<dim3((dn + 255) / 256, dn, n_maps), 256, 0, (cudaStream_t)stream>>>(m, sn, dn);
    return launched();
}

} // namespace attnlab::cuda
