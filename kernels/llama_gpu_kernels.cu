// Small kernels of the GPU Llama forward pass: embedding gather, RMSNorm,
// RoPE, SwiGLU, a reference attention for head dims the flash kernels lack,
// the block_topk gate with the CPU method's rule, and the vocabulary NLL.
// The linear layers are cuBLAS (kernels/llama_gpu.cpp), attention the flash
// kernels (flash_fwd.cuh). See llama_gpu_kernels.h for the contracts.
#include <algorithm>
#include <cmath>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "gate_kernels.cuh"
#include "llama_gpu_kernels.h"

namespace attnlab::cuda {
namespace {

using bf16 = __nv_bfloat16;

inline cudaStream_t st_of(void * s) { return static_cast<cudaStream_t>(s); }
inline int last_err() { return (int)cudaGetLastError(); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum / max (blockDim.x a multiple of 32, <= 1024); every thread
// gets the result. `red` is 32 floats of shared memory; `none` is the value
// of the reduction over no elements.
template <float (*WARP_OP)(float)>
__device__ __forceinline__ float block_reduce(float v, float * red, float none) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = WARP_OP(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : none;
    return WARP_OP(v);
}
__device__ float block_sum(float v, float * red) { return block_reduce<warp_sum>(v, red, 0.f); }
__device__ float block_max(float v, float * red) { return block_reduce<warp_max>(v, red, -INFINITY); }

// One warp per (row, head) of the fused qkv [n, (H + 2 Hk) D]: adds the
// bias, then RMS-normalises query heads by qn and key heads by kn (Qwen3's
// per-head norm); value heads get the bias only. Null pointers skip a step.
__global__ void qkv_bias_norm_kernel(float * qkv, const float * bias, const float * qn, const float * kn, int n, int H,
                                     int Hk, int D, float eps) {
    const int heads = H + 2 * Hk;
    const long item = (long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (item >= (long)n * heads) return;
    const int t = (int)(item / heads), h = (int)(item % heads);
    float * v = qkv + (size_t)t * heads * D + (size_t)h * D;
    if (bias)
        for (int i = lane; i < D; i += 32) v[i] += bias[(size_t)h * D + i];
    const float * w = h < H ? qn : (h < H + Hk ? kn : nullptr);
    if (!w) return;
    __syncwarp();
    float ss = 0.f;
    for (int i = lane; i < D; i += 32) ss = fmaf(v[i], v[i], ss);
    ss = warp_sum(ss);
    const float r = 1.0f / sqrtf(ss / (float)D + eps);
    for (int i = lane; i < D; i += 32) v[i] = v[i] * r * w[i];
}

__global__ void embed_kernel(const float * emb, const int32_t * ids, float * x, int n, int E) {
    const int t = blockIdx.x;
    const float * src = emb + (size_t)ids[t] * E;
    for (int i = threadIdx.x; i < E; i += blockDim.x) x[(size_t)t * E + i] = src[i];
}

// One warp per row.
__global__ void rmsnorm_kernel(const float * x, const float * w, bf16 * y, int n, int E, float eps) {
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= n) return;
    const float * xr = x + (size_t)row * E;
    float ss = 0.f;
    for (int i = lane; i < E; i += 32) ss = fmaf(xr[i], xr[i], ss);
    ss = warp_sum(ss);
    const float r = 1.0f / sqrtf(ss / (float)E + eps);
    bf16 * yr = y + (size_t)row * E;
    for (int i = lane; i < E; i += 32) yr[i] = __float2bfloat16(xr[i] * r * w[i]);
}

// One block per token.
__global__ void rope_kernel(float * qkv, const float * cos_t, const float * sin_t, bf16 * q, bf16 * k, bf16 * v, int H,
                            int Hk, int D) {
    const int t = blockIdx.x, half = D / 2;
    const size_t C = (size_t)(H + 2 * Hk) * D;
    float * row = qkv + (size_t)t * C;
    const float * c = cos_t + (size_t)t * half;
    const float * s = sin_t + (size_t)t * half;
    const int nrot = (H + Hk) * half;
    for (int j = threadIdx.x; j < nrot; j += blockDim.x) {
        const int head = j / half, i = j % half;
        float * hv = row + (size_t)head * D;
        const float x0 = hv[i], x1 = hv[i + half];
        const float y0 = x0 * c[i] - x1 * s[i];
        const float y1 = x1 * c[i] + x0 * s[i];
        hv[i] = y0;
        hv[i + half] = y1;
        bf16 * dst = head < H ? q + (size_t)t * H * D + (size_t)head * D : k + (size_t)t * Hk * D + (size_t)(head - H) * D;
        dst[i] = __float2bfloat16(y0);
        dst[i + half] = __float2bfloat16(y1);
    }
    const float * vr = row + (size_t)(H + Hk) * D;
    for (int j = threadIdx.x; j < Hk * D; j += blockDim.x) v[(size_t)t * Hk * D + j] = __float2bfloat16(vr[j]);
}

__global__ void swiglu_kernel(const float * gu, bf16 * h, int n, int F) {
    const size_t total = (size_t)n * F;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t t = i / F, f = i % F;
        const float g = gu[t * 2 * F + f], u = gu[t * 2 * F + F + f];
        h[i] = __float2bfloat16(g / (1.0f + expf(-g)) * u);
    }
}

// One block per (query t, head h). Shared: scores [n], q [D], key-block flags [nb].
__global__ void attention_ref_kernel(const float * qkv, bf16 * out, int n, int H, int Hk, int D, float scale,
                                     const int32_t * kv_num, const int32_t * kv_idx, int block, int max_kv,
                                     const int32_t * kv_mask, const unsigned long long * tok_mask) {
    extern __shared__ float sh[];
    __shared__ float red[32];
    const int t = blockIdx.x, h = blockIdx.y, hk = h / (H / Hk);
    const size_t C = (size_t)(H + 2 * Hk) * D;
    float * sc = sh;
    float * sq = sh + n;
    int * flag = reinterpret_cast<int *>(sq + D);
    for (int d = threadIdx.x; d < D; d += blockDim.x) sq[d] = qkv[(size_t)t * C + (size_t)h * D + d];
    const bool sparse = kv_num != nullptr;
    if (sparse) {
        const int nqb = (n + block - 1) / block, I = t / block;
        for (int J = threadIdx.x; J <= I; J += blockDim.x) flag[J] = 0;
        __syncthreads();
        const size_t row = (size_t)h * nqb + I;
        const int cnt = kv_num[row];
        for (int e = threadIdx.x; e < cnt; e += blockDim.x) {
            const int J = kv_idx[row * max_kv + e];
            // 1: the whole block; m + 2: token mask m (tile_list.h)
            const int m = kv_mask ? kv_mask[row * max_kv + e] : -1;
            if (J >= 0 && J <= I) flag[J] = m < 0 ? 1 : m + 2;
        }
    }
    __syncthreads();
    const float * kbase = qkv + (size_t)H * D + (size_t)hk * D;
    const float * vbase = qkv + (size_t)(H + Hk) * D + (size_t)hk * D;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j <= t; j += blockDim.x) {
        float s = -INFINITY;
        bool keep = !sparse;
        if (sparse) {
            const int f = flag[j / block];
            if (f >= 2) {
                const int W = block / 64, r = t % block, c = j % block;
                keep = (tok_mask[((size_t)(f - 2) * block + r) * W + c / 64] >> (c % 64)) & 1ull;
            } else {
                keep = f == 1;
            }
        }
        if (keep) {
            const float * kr = kbase + (size_t)j * C;
            float acc = 0.f;
            for (int d = 0; d < D; ++d) acc = fmaf(sq[d], kr[d], acc);
            s = acc * scale;
        }
        sc[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_max(mx, red);
    float sum = 0.f;
    for (int j = threadIdx.x; j <= t; j += blockDim.x) {
        const float p = (sc[j] == -INFINITY) ? 0.f : expf(sc[j] - mx);
        sc[j] = p;
        sum += p;
    }
    sum = block_sum(sum, red);   // has __syncthreads: sc[] complete after it
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.f;
        for (int j = 0; j <= t; ++j) acc = fmaf(sc[j], vbase[(size_t)j * C + d], acc);
        out[(size_t)t * H * D + (size_t)h * D + d] = __float2bfloat16(acc * inv);
    }
}

// Mean of each block of B rows of pooled head p (p < H: query head p; p >= H:
// key head p - H; both sit at column p*D of qkv). Double, as the CPU method.
__global__ void pool_kernel(const float * qkv, double * pooled, int n, int H, int Hk, int D, int B, int nb) {
    const int blk = blockIdx.x, p = blockIdx.y;
    const size_t C = (size_t)(H + 2 * Hk) * D;
    const int r0 = blk * B, r1 = min(n, r0 + B);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        double acc = 0.0;
        for (int r = r0; r < r1; ++r) acc += (double)qkv[(size_t)r * C + (size_t)p * D + d];
        pooled[((size_t)p * nb + blk) * D + d] = acc / (double)(r1 - r0);
    }
}

// learned_gate's projections in double, per query head h: pooled [H+Hk][nb][D]
// -> proj [2H][nb][dg], q̃ rows first (q̃_I = Q̄_I W_q[h]), then k̃ rows of every
// query head (k̃_J = K̄_J(kv head of h) W_k[h]), so that the gate's scores read
// them as H query and H key heads. One block per (pooled row, h, q or k).
__global__ void gate_project_kernel(const double * pooled, const float * wq, const float * wk, double * proj, int H, int Hk,
                                    int D, int dg, int nb) {
    const int r = blockIdx.x, h = blockIdx.y, is_k = blockIdx.z;
    const double * x = pooled + ((size_t)(is_k ? H + h / (H / Hk) : h) * nb + r) * D;
    const float * w = (is_k ? wk : wq) + (size_t)h * D * dg;
    double * out = proj + ((size_t)(is_k ? H + h : h) * nb + r) * dg;
    for (int g = threadIdx.x; g < dg; g += blockDim.x) {
        double acc = 0.0;
        for (int d = 0; d < D; ++d) acc += x[d] * (double)w[(size_t)d * dg + g];
        out[g] = acc;
    }
}

// One block per row: first-index argmax, then logsumexp (double accumulation).
__global__ void vocab_nll_kernel(const float * logits, const int32_t * target, double * nll, int32_t * argmax, int V) {
    __shared__ float rv[32];
    __shared__ int ri[32];
    __shared__ double rd[32];
    const int t = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const float * row = logits + (size_t)t * V;
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float x = row[i];
        if (x > best) { best = x; bi = i; }   // i increases: first index kept on ties
    }
    auto better = [](float v, int i, float bv, int b) { return v > bv || (v == bv && i < b); };
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v2 = __shfl_xor_sync(0xffffffffu, best, o);
        const int i2 = __shfl_xor_sync(0xffffffffu, bi, o);
        if (better(v2, i2, best, bi)) { best = v2; bi = i2; }
    }
    if (lane == 0) { rv[warp] = best; ri[warp] = bi; }
    __syncthreads();
    if (warp == 0) {
        best = lane < nw ? rv[lane] : -INFINITY;
        bi = lane < nw ? ri[lane] : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float v2 = __shfl_xor_sync(0xffffffffu, best, o);
            const int i2 = __shfl_xor_sync(0xffffffffu, bi, o);
            if (better(v2, i2, best, bi)) { best = v2; bi = i2; }
        }
        if (lane == 0) { rv[0] = best; ri[0] = bi; }
    }
    __syncthreads();
    const float mx = rv[0];
    double s = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += (double)expf(row[i] - mx);
    s = warp_sum_d(s);
    if (lane == 0) rd[warp] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double tot = 0.0;
        for (int w = 0; w < nw; ++w) tot += rd[w];
        nll[t] = -((double)row[target[t]] - (double)mx - log(tot));
        argmax[t] = ri[0];
    }
}

} // namespace

int lg_embed(const float * tok_embd, const int32_t * ids, float * x, int n, int E, void * stream) {
    if (n <= 0) return 0;
    embed_kernel<<<n, 128, 0, st_of(stream)>>>(tok_embd, ids, x, n, E);
    return last_err();
}

int lg_rmsnorm(const float * x, const float * w, uint16_t * y, int n, int E, float eps, void * stream) {
    if (n <= 0) return 0;
    constexpr int kRows = 8;
    rmsnorm_kernel<<<(n + kRows - 1) / kRows, 32 * kRows, 0, st_of(stream)>>>(x, w, reinterpret_cast<bf16 *>(y), n, E, eps);
    return last_err();
}

int lg_qkv_bias_norm(float * qkv, const float * bias, const float * q_norm, const float * k_norm, int n, int H, int Hk,
                     int D, float eps, void * stream) {
    if (n <= 0 || (!bias && !q_norm)) return 0;
    constexpr int kWarps = 8;
    const long items = (long)n * (H + 2 * Hk);
    qkv_bias_norm_kernel<<<(unsigned)((items + kWarps - 1) / kWarps), 32 * kWarps, 0, st_of(stream)>>>(
        qkv, bias, q_norm, k_norm, n, H, Hk, D, eps);
    return last_err();
}

int lg_rope(float * qkv, const float * cos_t, const float * sin_t, uint16_t * q, uint16_t * k, uint16_t * v, int n, int H,
            int Hk, int D, void * stream) {
    if (n <= 0) return 0;
    rope_kernel<<<n, 256, 0, st_of(stream)>>>(qkv, cos_t, sin_t, reinterpret_cast<bf16 *>(q), reinterpret_cast<bf16 *>(k),
                                              reinterpret_cast<bf16 *>(v), H, Hk, D);
    return last_err();
}

int lg_swiglu(const float * gu, uint16_t * h, int n, int F, void * stream) {
    if (n <= 0) return 0;
    const size_t total = (size_t)n * F;
    const int blocks = (int)std::min<size_t>((total + 255) / 256, 132 * 16);
    swiglu_kernel<<<blocks, 256, 0, st_of(stream)>>>(gu, reinterpret_cast<bf16 *>(h), n, F);
    return last_err();
}

int lg_attention_ref(const float * qkv, uint16_t * out, int n, int H, int Hk, int D, float scale, const int32_t * kv_num,
                     const int32_t * kv_idx, int block, int max_kv, const int32_t * kv_mask,
                     const unsigned long long * tok_mask, void * stream) {
    if (n <= 0) return 0;
    if (H <= 0 || Hk <= 0 || H % Hk || D <= 0) return (int)cudaErrorInvalidValue;
    if (kv_num && block <= 0) return (int)cudaErrorInvalidValue;
    if (kv_mask && (!tok_mask || block % 64)) return (int)cudaErrorInvalidValue;
    const int nb = kv_num ? (n + block - 1) / block : 0;
    const size_t smem = ((size_t)n + D + nb) * 4;
    if (smem > 227 * 1024) return (int)cudaErrorInvalidValue;
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(attention_ref_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return (int)e;
    }
    attention_ref_kernel<<<dim3(n, H), 128, smem, st_of(stream)>>>(qkv, reinterpret_cast<bf16 *>(out), n, H, Hk, D, scale,
                                                                   kv_num, kv_idx, block, max_kv, kv_mask, tok_mask);
    return last_err();
}

size_t lg_block_topk_workspace(int n, int H, int Hk, int D, int B) {
    const size_t nb = (size_t)(n + B - 1) / B;
    return ((size_t)(H + Hk) * nb * D + (size_t)H * nb * nb) * sizeof(double);
}

namespace {
// The CPU methods' rule (block_topk, learned_gate with tau = 0): causal, the
// diagonal and block 0 forced and counted, budget ceil(rho (I+1) - 1e-9).
gate_rule cpu_rule(int n, int B, double rho, unsigned long long * counters) {
    gate_rule r;
    r.causal = 1;
    r.keep_first = 1;
    r.density = rho;
    r.eps_abs = 1e-9;
    r.counters = counters;
    r.n_tokens = n;
    r.block = B;
    return r;
}
} // namespace

int lg_block_topk(const float * qkv, int n, int H, int Hk, int D, float scale, int B, double rho, int32_t * kv_num,
                  int32_t * kv_idx, unsigned long long * counters, void * workspace, void * stream) {
    if (n <= 0) return 0;
    if (H <= 0 || Hk <= 0 || H % Hk || D <= 0 || B <= 0) return (int)cudaErrorInvalidValue;
    const int nb = (n + B - 1) / B;
    if (gate_select_smem<double>(nb) > 227 * 1024) return (int)cudaErrorInvalidValue;
    double * pooled = static_cast<double *>(workspace);
    double * S = pooled + (size_t)(H + Hk) * nb * D;
    pool_kernel<<<dim3(nb, H + Hk), 64, 0, st_of(stream)>>>(qkv, pooled, n, H, Hk, D, B, nb);
    if (int e = last_err()) return e;
    return (int)gate_score_and_select<double>(pooled, pooled + (size_t)H * nb * D, S, 1, H, Hk, nb, D, (double)scale,
                                              cpu_rule(n, B, rho, counters), kv_num, kv_idx, st_of(stream));
}

size_t lg_learned_gate_workspace(int n, int H, int Hk, int D, int dg, int B) {
    const size_t nb = (size_t)(n + B - 1) / B;
    return ((size_t)(H + Hk) * nb * D + 2 * (size_t)H * nb * dg + (size_t)H * nb * nb) * sizeof(double);
}

int lg_learned_gate(const float * qkv, int n, int H, int Hk, int D, const float * wq, const float * wk, int dg, int B,
                    double rho, int32_t * kv_num, int32_t * kv_idx, unsigned long long * counters, void * workspace,
                    void * stream) {
    if (n <= 0) return 0;
    if (H <= 0 || Hk <= 0 || H % Hk || D <= 0 || B <= 0 || dg <= 0 || !wq || !wk) return (int)cudaErrorInvalidValue;
    const int nb = (n + B - 1) / B;
    if (gate_select_smem<double>(nb) > 227 * 1024) return (int)cudaErrorInvalidValue;
    double * pooled = static_cast<double *>(workspace);
    double * proj = pooled + (size_t)(H + Hk) * nb * D;
    double * S = proj + 2 * (size_t)H * nb * dg;
    pool_kernel<<<dim3(nb, H + Hk), 64, 0, st_of(stream)>>>(qkv, pooled, n, H, Hk, D, B, nb);
    if (int e = last_err()) return e;
    gate_project_kernel<<<dim3(nb, H, 2), 32, 0, st_of(stream)>>>(pooled, wq, wk, proj, H, Hk, D, dg, nb);
    if (int e = last_err()) return e;
    // the gate's logits q̃·k̃ / sqrt(d_g) (the CPU ranks their row softmax: the
    // same order); k̃ is per query head: H "KV heads"
    return (int)gate_score_and_select<double>(proj, proj + (size_t)H * nb * dg, S, 1, H, H, nb, dg,
                                              1.0 / std::sqrt((double)dg), cpu_rule(n, B, rho, counters), kv_num,
                                              kv_idx, st_of(stream));
}

int lg_vocab_nll(const float * logits, const int32_t * target, double * nll, int32_t * argmax, int rows, int V,
                 void * stream) {
    if (rows <= 0) return 0;
    vocab_nll_kernel<<<rows, 512, 0, st_of(stream)>>>(logits, target, nll, argmax, V);
    return last_err();
}

} // namespace attnlab::cuda
