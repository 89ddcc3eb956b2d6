// The block gates' scoring and selection, shared by the benchmark gate
// (block_topk_gate.cu: fp32, attnlab_block_topk / attnlab_learned_gate) and
// the model's forward pass (llama_gpu_kernels.cu: double, the CPU methods'
// rule). T is the score type, float or double.
//   gate_scores_kernel: S = scale * Qr Krᵀ per (batch, head), a small GEMM in
//     64 x 64 tiles; causal tiles wholly above the diagonal are skipped.
//   gate_select_kernel: one warp per query block; the k-th largest score is
//     found by a bitwise search over order-preserving integer keys, then the
//     kept blocks are written in ascending index order by ballot/popc
//     compaction. No sort and no block-wide barrier.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace attnlab::cuda {

// S[b][h][i][j] = scale * qr[b][h][i] . kr[b][h / (H / Hkv)][j] (rows of D).
// One CTA per 64 x 64 tile, 256 threads of 4 x 4 outputs each (rows ty + 16 r,
// columns tx + 16 c, so that a warp's shared reads are broadcasts or
// consecutive), D streamed through shared memory in slices of 32, stored
// transposed ([d][row], padded to 65 so that the transposing stores do not
// conflict). Sums run over d in order, as a plain dot-product loop does.
constexpr int kGateTile = 64, kGateSlice = 32;
template <typename T>
__global__ void __launch_bounds__(256) gate_scores_kernel(const T * qr, const T * kr, T * S, int H, int Hkv, int nb,
                                                          int D, int causal, T scale) {
    __shared__ T qs[kGateSlice][kGateTile + 1];
    __shared__ T ks[kGateSlice][kGateTile + 1];
    const int j0 = blockIdx.x * kGateTile, i0 = blockIdx.y * kGateTile, bh = blockIdx.z;
    if (causal && j0 > i0 + kGateTile - 1) return;   // every key block after every query block: never read
    const int b = bh / H, hk = (bh % H) / (H / Hkv);
    const T * qbase = qr + (long long)bh * nb * D;
    const T * kbase = kr + (long long)(b * Hkv + hk) * nb * D;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    T acc[4][4] = {};
    for (int d0 = 0; d0 < D; d0 += kGateSlice) {
        for (int e = threadIdx.x; e < kGateTile * kGateSlice; e += blockDim.x) {
            const int r = e / kGateSlice, c = e % kGateSlice, d = d0 + c;   // consecutive threads: consecutive d
            qs[c][r] = (i0 + r < nb && d < D) ? qbase[(long long)(i0 + r) * D + d] : T(0);
            ks[c][r] = (j0 + r < nb && d < D) ? kbase[(long long)(j0 + r) * D + d] : T(0);
        }
        __syncthreads();
#pragma unroll 8
        for (int c = 0; c < kGateSlice; ++c) {
            T a[4], w[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) a[r] = qs[c][ty + 16 * r];
#pragma unroll
            for (int s = 0; s < 4; ++s) w[s] = ks[c][tx + 16 * s];
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 4; ++s) acc[r][s] = fma(a[r], w[s], acc[r][s]);
        }
        __syncthreads();
    }
    T * sbase = S + (long long)bh * nb * nb;
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int i = i0 + ty + 16 * r;
        if (i >= nb) continue;
#pragma unroll
        for (int s = 0; s < 4; ++s) {
            const int j = j0 + tx + 16 * s;
            if (j < nb) sbase[(long long)i * nb + j] = acc[r][s] * scale;
        }
    }
}

// Scores -> unsigned keys of the same order (negatives flipped, positives
// offset); -0 is folded onto +0 first so that the two tie, as they compare.
__device__ __forceinline__ uint32_t gate_order_key(float f) {
    const uint32_t u = __float_as_uint(f + 0.0f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ uint64_t gate_order_key(double f) {
    const uint64_t u = (uint64_t)__double_as_longlong(f + 0.0);
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}
template <typename T> struct gate_key { using type = uint32_t; };
template <> struct gate_key<double> { using type = uint64_t; };

// What a row keeps: k = k_fixed (> 0) or ceil(density * allowed - eps), at
// least 1 and at most allowed (allowed = J <= I when causal, else all); the
// forced blocks (the diagonal when causal, block 0 when keep_first) outrank
// every score and count toward k, and are kept even beyond it.
struct gate_rule {
    int causal = 0;
    int keep_first = 0;
    double density = 0.0;
    double eps = 1e-6;
    int k_fixed = 0;
    // optional: counters[0] += kept blocks, counters[1] += causal (query, key)
    // pairs inside them, for n_tokens tokens in blocks of `block`
    unsigned long long * counters = nullptr;
    int n_tokens = 0;
    int block = 0;
};

// One warp per row (b, h, I): keys of the allowed key blocks into shared
// memory (forced blocks get the largest key), then T = the largest key with at
// least k keys >= T (the k-th largest), found bit by bit from the top, then one
// pass in index order keeps keys > T and the first (k - #keys > T) keys == T:
// the same set as a stable sort by descending score (ties to the lower index)
// cut after k, and already ascending. Writes kv_num[row] and kv_idx[row][0..k),
// the rest of the row zeroed. Shared memory: kGateSelectWarps * nb keys.
constexpr int kGateSelectWarps = 4;
template <typename T>
__global__ void __launch_bounds__(kGateSelectWarps * 32) gate_select_kernel(const T * S, int rows, int nb, gate_rule rule,
                                                                           int * kv_num, int * kv_idx) {
    using key_t = typename gate_key<T>::type;
    extern __shared__ unsigned char gate_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * kGateSelectWarps + warp;
    if (row >= rows) return;   // whole warps leave together
    key_t * keys = reinterpret_cast<key_t *>(gate_smem) + (size_t)warp * nb;
    const int qb = (int)(row % nb);
    const int allowed = rule.causal ? qb + 1 : nb;
    const T * srow = S + row * nb;
    const key_t top = ~key_t(0);
    for (int j = lane; j < allowed; j += 32) {
        const bool forced = (rule.causal && j == qb) || (rule.keep_first && j == 0);
        keys[j] = forced ? top : gate_order_key(srow[j]);
    }
    __syncwarp();
    const int n_forced = (rule.causal ? 1 : 0) + (rule.keep_first && !(rule.causal && qb == 0) ? 1 : 0);
    int k = rule.k_fixed > 0 ? rule.k_fixed : (int)ceil(rule.density * (double)allowed - rule.eps);
    k = max(max(1, n_forced), min(k, allowed));
    k = min(k, allowed);

    key_t T_ = 0;
    for (int bit = (int)sizeof(key_t) * 8 - 1; bit >= 0; --bit) {
        const key_t cand = T_ | (key_t(1) << bit);
        unsigned n = 0;
        for (int j = lane; j < allowed; j += 32) n += keys[j] >= cand;
        if (__reduce_add_sync(0xffffffffu, n) >= (unsigned)k) T_ = cand;
    }
    unsigned n_gt = 0;
    for (int j = lane; j < allowed; j += 32) n_gt += keys[j] > T_;
    const int ties_to_take = k - (int)__reduce_add_sync(0xffffffffu, n_gt);

    int * out = kv_idx + row * nb;
    const uint32_t below = (1u << lane) - 1u;
    int written = 0, ties_seen = 0;
    unsigned long long pairs = 0;
    const long long q0 = (long long)qb * rule.block;
    const long long q_rows = rule.counters ? min((long long)rule.n_tokens, q0 + rule.block) - q0 : 0;
    for (int base = 0; base < allowed; base += 32) {
        const int j = base + lane;
        const key_t key = j < allowed ? keys[j] : key_t(0);
        const bool gt = j < allowed && key > T_, eq = j < allowed && key == T_;
        const uint32_t eq_mask = __ballot_sync(0xffffffffu, eq);
        const bool keep = gt || (eq && ties_seen + __popc(eq_mask & below) < ties_to_take);
        const uint32_t keep_mask = __ballot_sync(0xffffffffu, keep);
        if (keep) {
            out[written + __popc(keep_mask & below)] = j;
            if (rule.counters)   // causal: a block before the diagonal is full, the diagonal a triangle
                pairs += j < qb ? (unsigned long long)(q_rows * rule.block)
                                : (unsigned long long)(q_rows * (q_rows + 1) / 2);
        }
        written += __popc(keep_mask);
        ties_seen += __popc(eq_mask);
    }
    for (int j = k + lane; j < nb; j += 32) out[j] = 0;
    if (rule.counters) {
        for (int o = 16; o > 0; o >>= 1) pairs += __shfl_xor_sync(0xffffffffu, pairs, o);
        if (lane == 0) {
            atomicAdd(rule.counters, (unsigned long long)k);
            atomicAdd(rule.counters + 1, pairs);
        }
    }
    if (lane == 0) kv_num[row] = k;
}

// Shared memory of gate_select_kernel for rows of nb blocks.
template <typename T>
size_t gate_select_smem(int nb) {
    return (size_t)kGateSelectWarps * nb * sizeof(typename gate_key<T>::type);
}

// Launches gate_scores_kernel and gate_select_kernel on qr [B*H][nb][D] and
// kr [B*Hkv][nb][D]; S: B*H*nb*nb scores of workspace. Returns the CUDA error.
template <typename T>
cudaError_t gate_score_and_select(const T * qr, const T * kr, T * S, int B, int H, int Hkv, int nb, int D, T scale,
                                  const gate_rule & rule, int * kv_num, int * kv_idx, cudaStream_t st) {
    const int tiles = (nb + kGateTile - 1) / kGateTile;
    gate_scores_kernel<T><<<dim3(tiles, tiles, B * H), 256, 0, st>>>(qr, kr, S, H, Hkv, nb, D, rule.causal, scale);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    const size_t smem = gate_select_smem<T>(nb);
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(gate_select_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
    }
    const int rows = B * H * nb;
    gate_select_kernel<T><<<(rows + kGateSelectWarps - 1) / kGateSelectWarps, kGateSelectWarps * 32, smem, st>>>(
        S, rows, nb, rule, kv_num, kv_idx);
    return cudaGetLastError();
}

} // namespace attnlab::cuda
