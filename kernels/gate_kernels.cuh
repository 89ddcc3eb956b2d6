// The block gates' scoring and selection, shared by the benchmark gate
// (block_topk_gate.cu: fp32, attnlab_block_topk / attnlab_learned_gate) and
// the model's forward pass (llama_gpu_kernels.cu: double, the CPU methods'
// rule). T is the score type, float or double.
//   gate_scores_kernel: S = scale * Qr Krᵀ per (batch, head), a small GEMM in
//     64 x 64 tiles (16 x 16 for short rows); causal tiles wholly above the
//     diagonal are skipped.
//   gate_select_kernel: one warp per query block, keys in registers up to
//     1024 blocks; the k-th largest score is found by a bitwise search over
//     order-preserving integer keys, then the kept blocks are written in
//     ascending index order by ballot/popc compaction. No sort and no
//     block-wide barrier.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace attnlab::cuda {

// S[b][h][i][j] = scale * qr[b][h][i] . kr[b][h / (H / Hkv)][j] (rows of D).
// One CTA of 256 threads per TILE x TILE tile, each thread PT x PT outputs
// (PT = TILE / 16: rows ty + 16 r, columns tx + 16 s). TILE 64 where the grid
// of 64-tiles has at least one CTA per SM, else 16 (one output per thread:
// more CTAs for short rows, e.g. 64 blocks x 9 heads = 9 CTAs of 64). D is
// streamed through shared memory in slices of 32, rows kept as in global
// memory (row-major, padded by one 16-byte vector so that 8 consecutive rows
// start in different banks); the inner loop reads 16-byte vectors: at TILE 64
// 8 shared loads per 64 FMA (scalar reads of a transposed tile took 8 per 16
// and were the kernel's limit). Sums run over d in order, as a plain
// dot-product loop does.
constexpr int kGateSlice = 32;
template <typename T> struct gate_vec;
template <> struct gate_vec<float> { using type = float4; static constexpr int n = 4; };
template <> struct gate_vec<double> { using type = double2; static constexpr int n = 2; };

template <typename T, int TILE>
__global__ void __launch_bounds__(256) gate_scores_kernel(const T * qr, const T * kr, T * S, int H, int Hkv, int nb,
                                                          int D, int causal, T scale) {
    using V = typename gate_vec<T>::type;
    constexpr int VN = gate_vec<T>::n, LD = kGateSlice + VN, PT = TILE / 16;
    __shared__ __align__(16) T qs[TILE][LD];
    __shared__ __align__(16) T ks[TILE][LD];
    const int j0 = blockIdx.x * TILE, i0 = blockIdx.y * TILE, bh = blockIdx.z;
    if (causal && j0 > i0 + TILE - 1) return;   // every key block after every query block: never read
    const int b = bh / H, hk = (bh % H) / (H / Hkv);
    const T * qbase = qr + (long long)bh * nb * D;
    const T * kbase = kr + (long long)(b * Hkv + hk) * nb * D;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const bool vec_ok = D % VN == 0 && reinterpret_cast<uintptr_t>(qbase) % 16 == 0 &&
                        reinterpret_cast<uintptr_t>(kbase) % 16 == 0;   // every row then starts on 16 bytes
    T acc[PT][PT] = {};
    for (int d0 = 0; d0 < D; d0 += kGateSlice) {
        if (vec_ok) {
            constexpr int per_row = kGateSlice / VN;
            for (int e = threadIdx.x; e < TILE * per_row; e += blockDim.x) {
                const int r = e / per_row, c = (e % per_row) * VN, d = d0 + c;   // consecutive threads: one row
                V zq, zk;
                T * pq = reinterpret_cast<T *>(&zq);
                T * pk = reinterpret_cast<T *>(&zk);
#pragma unroll
                for (int i = 0; i < VN; ++i) pq[i] = pk[i] = T(0);
                if (d < D && i0 + r < nb) zq = *reinterpret_cast<const V *>(qbase + (long long)(i0 + r) * D + d);
                if (d < D && j0 + r < nb) zk = *reinterpret_cast<const V *>(kbase + (long long)(j0 + r) * D + d);
                *reinterpret_cast<V *>(&qs[r][c]) = zq;
                *reinterpret_cast<V *>(&ks[r][c]) = zk;
            }
        } else {
            for (int e = threadIdx.x; e < TILE * kGateSlice; e += blockDim.x) {
                const int r = e / kGateSlice, c = e % kGateSlice, d = d0 + c;
                qs[r][c] = (i0 + r < nb && d < D) ? qbase[(long long)(i0 + r) * D + d] : T(0);
                ks[r][c] = (j0 + r < nb && d < D) ? kbase[(long long)(j0 + r) * D + d] : T(0);
            }
        }
        __syncthreads();
#pragma unroll 2
        for (int c = 0; c < kGateSlice; c += VN) {
            V a[PT], w[PT];
#pragma unroll
            for (int r = 0; r < PT; ++r) a[r] = *reinterpret_cast<const V *>(&qs[ty + 16 * r][c]);
#pragma unroll
            for (int s = 0; s < PT; ++s) w[s] = *reinterpret_cast<const V *>(&ks[tx + 16 * s][c]);
#pragma unroll
            for (int i = 0; i < VN; ++i)
#pragma unroll
                for (int r = 0; r < PT; ++r)
#pragma unroll
                    for (int s = 0; s < PT; ++s)
                        acc[r][s] = fma(reinterpret_cast<const T *>(&a[r])[i], reinterpret_cast<const T *>(&w[s])[i],
                                        acc[r][s]);
        }
        __syncthreads();
    }
    T * sbase = S + (long long)bh * nb * nb;
#pragma unroll
    for (int r = 0; r < PT; ++r) {
        const int i = i0 + ty + 16 * r;
        if (i >= nb) continue;
#pragma unroll
        for (int s = 0; s < PT; ++s) {
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

// What a row keeps: k = k_fixed (> 0) or ceil(x - x * eps_rel - eps_abs), x =
// density * allowed in double, at least 1 and at most allowed (allowed = J <= I
// when causal, else all). eps_rel = 2^-23 for the C API's float density: the
// float nearest 0.3 is 0.30000001, and 0.3f * 90 must keep 27 blocks, not 28
// (a product within float rounding of an integer is that integer); the CPU
// methods' double rho uses eps_abs = 1e-9 as they do. The forced blocks (the
// diagonal when causal, block 0 when keep_first) outrank every score and count
// toward k, and are kept even beyond it.
struct gate_rule {
    int causal = 0;
    int keep_first = 0;
    double density = 0.0;
    double eps_rel = 0.0;
    double eps_abs = 0.0;
    int k_fixed = 0;
    // optional: counters[0] += kept blocks, counters[1] += causal (query, key)
    // pairs inside them, for n_tokens tokens in blocks of `block`
    unsigned long long * counters = nullptr;
    int n_tokens = 0;
    int block = 0;
};

// One warp per row (b, h, I): keys of the allowed key blocks (forced blocks
// get the largest key; lane l holds blocks l, l + 32, ...: in registers when
// KPL > 0 and nb <= 32 KPL, else in shared memory), then T = the largest key
// with at least k keys >= T (the k-th largest), found bit by bit from the top,
// then one pass in index order keeps keys > T and the first (k - #keys > T)
// keys == T: the same set as a stable sort by descending score (ties to the
// lower index) cut after k, and already ascending. Writes kv_num[row] and
// kv_idx[row][0..k), the rest of the row zeroed. Blocks past `allowed` get key
// 0, below every candidate T (candidates have a bit set), so they never count.
constexpr int kGateSelectWarps = 4;
template <typename T, int KPL>
__global__ void __launch_bounds__(kGateSelectWarps * 32) gate_select_kernel(const T * S, int rows, int nb, gate_rule rule,
                                                                           int * kv_num, int * kv_idx) {
    using key_t = typename gate_key<T>::type;
    constexpr bool in_regs = KPL > 0;
    extern __shared__ unsigned char gate_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * kGateSelectWarps + warp;
    if (row >= rows) return;   // whole warps leave together
    key_t reg[in_regs ? KPL : 1];
    key_t * keys = reinterpret_cast<key_t *>(gate_smem) + (size_t)warp * nb;
    const int qb = (int)(row % nb);
    const int allowed = rule.causal ? qb + 1 : nb;
    const int nt = in_regs ? KPL : (allowed + 31) / 32;   // keys per lane
    const T * srow = S + row * nb;
    const key_t top = ~key_t(0);
#pragma unroll
    for (int t = 0; t < nt; ++t) {
        const int j = lane + 32 * t;
        const bool forced = (rule.causal && j == qb) || (rule.keep_first && j == 0);
        const key_t key = j >= allowed ? key_t(0) : forced ? top : gate_order_key(srow[j]);
        if constexpr (in_regs) reg[t] = key;
        else if (j < nb) keys[j] = key;
    }
    __syncwarp();
    auto key_at = [&](int t) -> key_t {
        if constexpr (in_regs) return reg[t];
        else return lane + 32 * t < nb ? keys[lane + 32 * t] : key_t(0);
    };
    const int n_forced = (rule.causal ? 1 : 0) + (rule.keep_first && !(rule.causal && qb == 0) ? 1 : 0);
    const double x = rule.density * (double)allowed;
    int k = rule.k_fixed > 0 ? rule.k_fixed : (int)ceil(x - x * rule.eps_rel - rule.eps_abs);
    k = max(max(1, n_forced), min(k, allowed));
    k = min(k, allowed);

    key_t T_ = 0;
    for (int bit = (int)sizeof(key_t) * 8 - 1; bit >= 0; --bit) {
        const key_t cand = T_ | (key_t(1) << bit);
        unsigned n = 0;
#pragma unroll
        for (int t = 0; t < nt; ++t) n += key_at(t) >= cand;
        if (__reduce_add_sync(0xffffffffu, n) >= (unsigned)k) T_ = cand;
    }
    unsigned n_gt = 0;
#pragma unroll
    for (int t = 0; t < nt; ++t) n_gt += key_at(t) > T_;
    const int ties_to_take = k - (int)__reduce_add_sync(0xffffffffu, n_gt);

    int * out = kv_idx + row * nb;
    const uint32_t below = (1u << lane) - 1u;
    int written = 0, ties_seen = 0;
    unsigned long long pairs = 0;
    const long long q0 = (long long)qb * rule.block;
    const long long q_rows = rule.counters ? min((long long)rule.n_tokens, q0 + rule.block) - q0 : 0;
#pragma unroll
    for (int t = 0; t < nt; ++t) {
        if (32 * t >= allowed) break;   // warp-uniform
        const int j = lane + 32 * t;
        const key_t key = key_at(t);   // 0 past allowed
        const bool gt = key > T_, eq = j < allowed && key == T_;
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

// Shared memory of gate_select_kernel<T, 0> for rows of nb blocks (the
// register variants need none).
template <typename T>
size_t gate_select_smem(int nb) {
    return (size_t)kGateSelectWarps * nb * sizeof(typename gate_key<T>::type);
}

template <typename T, int KPL>
cudaError_t gate_select_launch(const T * S, int rows, int nb, const gate_rule & rule, int * kv_num, int * kv_idx,
                               cudaStream_t st) {
    const size_t smem = KPL > 0 ? 0 : gate_select_smem<T>(nb);
    if (smem > 48 * 1024) {
        cudaError_t e =
            cudaFuncSetAttribute(gate_select_kernel<T, KPL>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
    }
    gate_select_kernel<T, KPL><<<(rows + kGateSelectWarps - 1) / kGateSelectWarps, kGateSelectWarps * 32, smem, st>>>(
        S, rows, nb, rule, kv_num, kv_idx);
    return cudaGetLastError();
}

// Launches gate_scores_kernel and gate_select_kernel on qr [B*H][nb][D] and
// kr [B*Hkv][nb][D]; S: B*H*nb*nb scores of workspace. Returns the CUDA error.
template <typename T>
cudaError_t gate_score_and_select(const T * qr, const T * kr, T * S, int B, int H, int Hkv, int nb, int D, T scale,
                                  const gate_rule & rule, int * kv_num, int * kv_idx, cudaStream_t st) {
    const int t64 = (nb + 63) / 64, t16 = (nb + 15) / 16;
    int sms = 132;
    if (int dev = 0; cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if ((long long)t64 * t64 * B * H >= sms)
        gate_scores_kernel<T, 64><<<dim3(t64, t64, B * H), 256, 0, st>>>(qr, kr, S, H, Hkv, nb, D, rule.causal, scale);
    else
        gate_scores_kernel<T, 16><<<dim3(t16, t16, B * H), 256, 0, st>>>(qr, kr, S, H, Hkv, nb, D, rule.causal, scale);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    const int rows = B * H * nb;
    if (nb <= 32 * 4) return gate_select_launch<T, 4>(S, rows, nb, rule, kv_num, kv_idx, st);
    if (nb <= 32 * 8) return gate_select_launch<T, 8>(S, rows, nb, rule, kv_num, kv_idx, st);
    if (nb <= 32 * 16) return gate_select_launch<T, 16>(S, rows, nb, rule, kv_num, kv_idx, st);
    if (nb <= 32 * 32) return gate_select_launch<T, 32>(S, rows, nb, rule, kv_num, kv_idx, st);
    return gate_select_launch<T, 0>(S, rows, nb, rule, kv_num, kv_idx, st);
}

} // namespace attnlab::cuda
