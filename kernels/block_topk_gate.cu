// The block gates on the GPU (attnlab_block_topk, attnlab_learned_gate in
// attnlab_cuda.h), fp32:
//   1. block_pool_qk_kernel: mean of each block's rows of Q and of K (reads all
//      of Q and K once: memory-bound, the floor of the gate's time);
//   (learned_gate: gate_project_kernel maps the pooled rows through the gate's
//   per-head W_q, W_k to d_g dimensions)
//   2. gate_scores_kernel + gate_select_kernel (gate_kernels.cuh, shared with
//      the model's forward pass): pooled scores as a tiled GEMM, then one warp
//      per query block selects by a bitwise k-th-key search and writes the
//      kept blocks ascending.
// The earlier version (one CTA per query block scoring against every pooled key
// from L2, then two bitonic sorts of ~36 barrier stages each) spent most of its
// time in the sorts' barriers: 0.336 ms at L = 32k, D = 128 (NOTES.md).
#include <cmath>
#include <cstdint>
#include <string>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "attnlab_cuda.h"
#include "cuda_status.h"
#include "gate_kernels.cuh"

namespace attnlab::cuda {
namespace {

// Mean of block_size rows per (batch, head, block); one thread per dimension.
// (Fallback for head dims the vectorised kernel below does not cover.)
template <typename T>
__global__ void block_pool_kernel(const T * x, float * out, int L, int D, int bs, int nb) {
    __shared__ float part[1024];
    const int blk = blockIdx.x, bh = blockIdx.y;
    const int r0 = blk * bs, r1 = min(L, r0 + bs);
    const int d = threadIdx.x % D, g = threadIdx.x / D, groups = blockDim.x / D;   // D divides blockDim
    const T * src = x + (long long)bh * L * D + d;
    float acc = 0.f;
    for (int r = r0 + g; r < r1; r += groups) acc += static_cast<float>(src[(long long)r * D]);
    part[threadIdx.x] = acc;
    __syncthreads();
    if (g == 0) {
        for (int k = 1; k < groups; ++k) acc += part[k * D + d];
        out[((long long)bh * nb + blk) * D + d] = acc / float(r1 - r0);
    }
}

// Q and K pooled in one launch (grid.y = B*H rows of Q, then B*Hkv of K), for
// D % 8 == 0 with D/8 dividing 256: a thread owns 8 dimensions (16-byte loads),
// 256 / (D/8) rows are summed in parallel, the row loop unrolled so that several
// loads are in flight (one 2-byte load per row and thread was latency-bound).
template <typename T>
__global__ void block_pool_qk_kernel(const T * q, const T * k, float * qp, float * kp, int bh_q, int L, int D, int bs,
                                     int nb) {
    extern __shared__ float part[];   // [groups][D]
    const int chunks = D / 8, groups = blockDim.x / chunks;
    const int c = threadIdx.x % chunks, g = threadIdx.x / chunks;
    const int blk = blockIdx.x;
    const bool is_q = (int)blockIdx.y < bh_q;
    const int bh = is_q ? blockIdx.y : blockIdx.y - bh_q;
    const T * x = is_q ? q : k;
    float * out = is_q ? qp : kp;
    const int r0 = blk * bs, r1 = min(L, r0 + bs);
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    const T * src = x + (long long)bh * L * D + c * 8;
#pragma unroll 8
    for (int r = r0 + g; r < r1; r += groups) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4 *>(src + (long long)r * D));
        const T * e = reinterpret_cast<const T *>(&raw);
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[i] += static_cast<float>(e[i]);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) part[g * D + c * 8 + i] = acc[i];
    __syncthreads();
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float sum = 0.f;
        for (int j = 0; j < groups; ++j) sum += part[j * D + d];
        out[((long long)bh * nb + blk) * D + d] = sum / float(r1 - r0);
    }
}

// learned_gate's projections, per query head h: q̃ = Q̄ W_q[h] for its own pooled
// queries, k̃ = K̄ W_k[h] for its KV head's pooled keys (head_dim -> d_g), so k̃
// is per query head. One CTA per (32 pooled rows, b*h, q or k): W[h] and the
// rows in shared memory, one thread per output.
constexpr int kProjRows = 32;
__global__ void gate_project_kernel(const float * qp, const float * kp, const float * wq, const float * wk, float * qt,
                                    float * kt, int H, int Hkv, int nb, int D, int dg) {
    extern __shared__ float proj_smem[];
    float * W = proj_smem;              // [D][dg]
    float * X = proj_smem + D * dg;     // [kProjRows][D]
    const int r0 = blockIdx.x * kProjRows, bh = blockIdx.y, is_k = blockIdx.z;
    const int b = bh / H, h = bh % H, hk = h / (H / Hkv);
    const float * w = (is_k ? wk : wq) + (size_t)h * D * dg;
    const float * x = is_k ? kp + (size_t)(b * Hkv + hk) * nb * D : qp + (size_t)bh * nb * D;
    float * out = (is_k ? kt : qt) + (size_t)bh * nb * dg;
    const int rows = min(kProjRows, nb - r0);
    for (int e = threadIdx.x; e < D * dg; e += blockDim.x) W[e] = w[e];
    for (int e = threadIdx.x; e < rows * D; e += blockDim.x) X[e] = x[(size_t)r0 * D + e];
    __syncthreads();
    for (int o = threadIdx.x; o < rows * dg; o += blockDim.x) {
        const int r = o / dg, g = o % dg;
        float acc = 0.f;
        for (int d = 0; d < D; ++d) acc = fmaf(X[r * D + d], W[d * dg + g], acc);
        out[(size_t)(r0 + r) * dg + g] = acc;
    }
}

size_t pooled_floats(int B, int H, int Hkv, int nb, int D) { return (size_t)B * (H + Hkv) * nb * D; }

int check_gate_args(const char * who, int dtype, const void * q, const void * k, int B, int H, int Hkv, int L, int D, int bs,
                    float density, int k_fixed, const int * kv_num, const int * kv_idx, const void * ws) {
    const std::string w(who);
    auto num = [](long long v) { return std::to_string(v); };
    if (!q) return fail(w + ": q is null");
    if (!k) return fail(w + ": k is null");
    if (!kv_num) return fail(w + ": kv_num_blocks is null");
    if (!kv_idx) return fail(w + ": kv_indices is null");
    if (!ws) return fail(w + ": workspace is null");
    if (B <= 0 || H <= 0 || Hkv <= 0 || L <= 0)
        return fail(w + ": B, H, Hkv and L must be positive (B=" + num(B) + " H=" + num(H) + " Hkv=" + num(Hkv) +
                    " L=" + num(L) + ")");
    if (H % Hkv) return fail(w + ": H=" + num(H) + " is not a multiple of Hkv=" + num(Hkv));
    if (D <= 0 || D > 1024 || (D > 256 && D % 32))
        return fail(w + ": head dim D=" + num(D) + " outside 1..256 (or a multiple of 32 up to 1024)");
    if (bs <= 0) return fail(w + ": block_size=" + num(bs) + " must be positive");
    if (dtype != ATTNLAB_BF16 && dtype != ATTNLAB_FP16) return fail(w + ": dtype=" + num(dtype) + " is not bf16 or fp16");
    if (k_fixed <= 0 && !(density >= 0.f && density <= 1.f))
        return fail(w + ": density=" + std::to_string(density) + " outside [0, 1] (and k_fixed <= 0)");
    if ((L + bs - 1) / bs > 4096)
        return fail(w + ": L=" + num(L) + " / block_size=" + num(bs) + " gives more than 4096 blocks");
    if ((long long)B * (H + Hkv) > 65535) return fail(w + ": B*(H+Hkv)=" + num((long long)B * (H + Hkv)) + " exceeds 65535");
    return 0;
}

// Mean of each block of Q (into qp [B*H][nb][D]) and of K (kp [B*Hkv][nb][D]).
int pool_qk(int dtype, const void * q, const void * k, int B, int H, int Hkv, int L, int D, int bs, float * qp, float * kp,
            cudaStream_t st) {
    const int nb = (L + bs - 1) / bs;
    const bool vec = D % 8 == 0 && D / 8 <= 256 && 256 % (D / 8) == 0 &&
                     reinterpret_cast<uintptr_t>(q) % 16 == 0 && reinterpret_cast<uintptr_t>(k) % 16 == 0;
    const bool bf16 = dtype == ATTNLAB_BF16;
    if (vec) {
        const dim3 grid(nb, B * H + B * Hkv);
        const size_t smem = (size_t)(256 / (D / 8)) * D * sizeof(float);   // 8 KiB at D = 128
        if (bf16)
            block_pool_qk_kernel<<<grid, 256, smem, st>>>(static_cast<const __nv_bfloat16 *>(q),
                                                           static_cast<const __nv_bfloat16 *>(k), qp, kp, B * H, L, D, bs, nb);
        else
            block_pool_qk_kernel<<<grid, 256, smem, st>>>(static_cast<const __half *>(q), static_cast<const __half *>(k),
                                                           qp, kp, B * H, L, D, bs, nb);
    } else {
        const int threads = (D <= 256 && 256 % D == 0) ? 256 : D;
        if (bf16) {
            block_pool_kernel<<<dim3(nb, B * H), threads, 0, st>>>(static_cast<const __nv_bfloat16 *>(q), qp, L, D, bs, nb);
            block_pool_kernel<<<dim3(nb, B * Hkv), threads, 0, st>>>(static_cast<const __nv_bfloat16 *>(k), kp, L, D, bs, nb);
        } else {
            block_pool_kernel<<<dim3(nb, B * H), threads, 0, st>>>(static_cast<const __half *>(q), qp, L, D, bs, nb);
            block_pool_kernel<<<dim3(nb, B * Hkv), threads, 0, st>>>(static_cast<const __half *>(k), kp, L, D, bs, nb);
        }
    }
    return check_cuda(cudaGetLastError(), "block_topk: pooling launch");
}

// Scores of pooled (or projected) rows qr [B*H][nb][D] against kr [B*Hkv][nb][D]
// into S, then the selection (gate_kernels.cuh).
int score_and_select(const float * qr, const float * kr, float * S, int B, int H, int Hkv, int nb, int D, int causal,
                     float scale, float density, int k_fixed, int * kv_num, int * kv_idx, cudaStream_t st) {
    gate_rule rule;
    rule.causal = causal;
    rule.density = density;
    rule.eps_rel = 0x1p-23;   // density is a float: see gate_rule
    rule.k_fixed = k_fixed;
    return check_cuda(gate_score_and_select<float>(qr, kr, S, B, H, Hkv, nb, D, scale, rule, kv_num, kv_idx, st),
                      "block_topk: scores and select");
}

} // namespace

size_t block_topk_workspace(int B, int H, int Hkv, int L, int D, int bs) {
    const size_t nb = (size_t)(L + bs - 1) / bs;
    return (pooled_floats(B, H, Hkv, (int)nb, D) + (size_t)B * H * nb * nb) * sizeof(float);
}

int block_topk(int dtype, const void * q, const void * k, int B, int H, int Hkv, int L, int D, int causal, float scale,
               int bs, float density, int k_fixed, int * kv_num, int * kv_idx, void * ws, cudaStream_t st) {
    if (int r = check_gate_args("block_topk", dtype, q, k, B, H, Hkv, L, D, bs, density, k_fixed, kv_num, kv_idx, ws))
        return r;
    const int nb = (L + bs - 1) / bs;
    if (scale <= 0.f) scale = 1.0f / std::sqrt((float)D);
    float * qp = static_cast<float *>(ws);
    float * kp = qp + (size_t)B * H * nb * D;
    float * S = qp + pooled_floats(B, H, Hkv, nb, D);
    if (int r = pool_qk(dtype, q, k, B, H, Hkv, L, D, bs, qp, kp, st)) return r;
    return score_and_select(qp, kp, S, B, H, Hkv, nb, D, causal, scale, density, k_fixed, kv_num, kv_idx, st);
}

size_t learned_gate_workspace(int B, int H, int Hkv, int L, int D, int dg, int bs) {
    const size_t nb = (size_t)(L + bs - 1) / bs;
    return (pooled_floats(B, H, Hkv, (int)nb, D) + 2 * (size_t)B * H * nb * dg + (size_t)B * H * nb * nb) * sizeof(float);
}

int learned_gate(int dtype, const void * q, const void * k, const float * wq, const float * wk, int dg, int B, int H,
                 int Hkv, int L, int D, int causal, int bs, float density, int k_fixed, int * kv_num, int * kv_idx,
                 void * ws, cudaStream_t st) {
    if (int r = check_gate_args("learned_gate", dtype, q, k, B, H, Hkv, L, D, bs, density, k_fixed, kv_num, kv_idx, ws))
        return r;
    if (!wq) return fail("learned_gate: wq is null");
    if (!wk) return fail("learned_gate: wk is null");
    if (dg <= 0 || dg > 256) return fail("learned_gate: d_g=" + std::to_string(dg) + " outside [1, 256]");
    const size_t proj_smem = ((size_t)D * dg + (size_t)kProjRows * D) * sizeof(float);
    if (proj_smem > 227 * 1024) return fail("learned_gate: D=" + std::to_string(D) + " x d_g=" + std::to_string(dg) +
                                            " too large for the projection tile (227 KiB of shared memory)");
    const int nb = (L + bs - 1) / bs;
    float * qp = static_cast<float *>(ws);
    float * kp = qp + (size_t)B * H * nb * D;
    float * qt = qp + pooled_floats(B, H, Hkv, nb, D);
    float * kt = qt + (size_t)B * H * nb * dg;
    float * S = kt + (size_t)B * H * nb * dg;
    if (int r = pool_qk(dtype, q, k, B, H, Hkv, L, D, bs, qp, kp, st)) return r;
    if (proj_smem > 48 * 1024) {
        if (int r = check_cuda(cudaFuncSetAttribute(gate_project_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    (int)proj_smem),
                               "learned_gate: cudaFuncSetAttribute"))
            return r;
    }
    gate_project_kernel<<<dim3((nb + kProjRows - 1) / kProjRows, B * H, 2), 256, proj_smem, st>>>(qp, kp, wq, wk, qt, kt,
                                                                                                 H, Hkv, nb, D, dg);
    if (int r = check_cuda(cudaGetLastError(), "learned_gate: projection launch")) return r;
    // k̃ is per query head: H "KV heads" for the scores.
    return score_and_select(qt, kt, S, B, H, H, nb, dg, causal, 1.0f / std::sqrt((float)dg), density, k_fixed, kv_num,
                            kv_idx, st);
}

} // namespace attnlab::cuda

extern "C" {

size_t attnlab_block_topk_workspace(int B, int H, int Hkv, int L, int D, int block_size) {
    if (block_size <= 0 || L <= 0) return 0;
    return attnlab::cuda::block_topk_workspace(B, H, Hkv, L, D, block_size);
}

int attnlab_block_topk(int dtype, const void * q, const void * k, int B, int H, int Hkv, int L, int D, int causal,
                       float scale, int block_size, float density, int k_fixed, int * kv_num_blocks, int * kv_indices,
                       void * workspace, void * stream) {
    return attnlab::cuda::block_topk(dtype, q, k, B, H, Hkv, L, D, causal, scale, block_size, density, k_fixed,
                                     kv_num_blocks, kv_indices, workspace, static_cast<cudaStream_t>(stream));
}

size_t attnlab_learned_gate_workspace(int B, int H, int Hkv, int L, int D, int d_g, int block_size) {
    if (block_size <= 0 || L <= 0 || d_g <= 0) return 0;
    return attnlab::cuda::learned_gate_workspace(B, H, Hkv, L, D, d_g, block_size);
}

int attnlab_learned_gate(int dtype, const void * q, const void * k, const float * wq, const float * wk, int d_g, int B,
                         int H, int Hkv, int L, int D, int causal, int block_size, float density, int k_fixed,
                         int * kv_num_blocks, int * kv_indices, void * workspace, void * stream) {
    return attnlab::cuda::learned_gate(dtype, q, k, wq, wk, d_g, B, H, Hkv, L, D, causal, block_size, density, k_fixed,
                                       kv_num_blocks, kv_indices, workspace, static_cast<cudaStream_t>(stream));
}

} // extern "C"
