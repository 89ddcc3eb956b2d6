// Launchers for the flash kernels (flash_fwd.cuh) and the block_topk gate.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include <cuda_runtime.h>

#include "attnlab_cuda.h"
#include "flash_fwd.cuh"

namespace attnlab::cuda {
namespace {

thread_local std::string g_last_error;

int fail(const std::string & msg) {
    g_last_error = msg;
    return 1;
}
int check_cuda(cudaError_t e, const char * what) {
    if (e == cudaSuccess) return 0;
    return fail(std::string(what) + ": " + cudaGetErrorString(e));
}

// Kernel variant for 128-row tiles: 2 = four warps x 32 rows, 1 = eight warps
// x 16 rows with Q in registers, 0 = by head dim (measured on H100, NOTES.md:
// 1 for D=128, 2 for D=64). attnlab_set_kernel_variant().
int g_variant = 0;

template <typename T, int D, int NW, int MF, bool SPARSE>
int launch_flash(const fa_params & p, cudaStream_t st) {
    using S = fa_shape<D, NW, MF>;
    auto kern = flash_fwd_kernel<T, D, NW, MF, SPARSE>;
    static bool configured = false;   // per instantiation
    if (!configured) {
        if (int r = check_cuda(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, S::kSmem),
                               "cudaFuncSetAttribute"))
            return r;
        configured = true;
    }
    dim3 grid((p.L + S::kBM - 1) / S::kBM, p.B * p.H);
    if (grid.y > 65535u) return fail("B*H exceeds 65535");
    kern<<<grid, S::kThreads, S::kSmem, st>>>(p);
    return check_cuda(cudaGetLastError(), "flash_fwd_kernel launch");
}

template <typename T, int D>
int dispatch_nw(const fa_params & p, bool sparse, int block, cudaStream_t st) {
    const int variant = g_variant != 0 ? g_variant : (D == 128 ? 1 : 2);
    if (variant == 1) {
        if (!sparse) return launch_flash<T, D, 8, 1, false>(p, st);
        if (block == 128) return launch_flash<T, D, 8, 1, true>(p, st);
        return launch_flash<T, D, 4, 1, true>(p, st);
    }
    if (!sparse) return launch_flash<T, D, 4, 2, false>(p, st);
    if (block == 128) return launch_flash<T, D, 4, 2, true>(p, st);
    return launch_flash<T, D, 2, 2, true>(p, st);
}

void fill_strides(long long out[3], const long long in[3], int heads, int L, int D) {
    if (in[0] == 0 && in[1] == 0 && in[2] == 0) {
        out[0] = (long long)heads * L * D;
        out[1] = (long long)L * D;
        out[2] = D;
    } else {
        for (int i = 0; i < 3; ++i) out[i] = in[i];
    }
}

} // namespace

int attention_fwd(const attnlab_attn_args & a) {
    if (!a.q || !a.k || !a.v || !a.o) return fail("attention_fwd: null tensor pointer");
    if (a.D != 64 && a.D != 128) return fail("attention_fwd: head dim must be 64 or 128, got " + std::to_string(a.D));
    if (a.B <= 0 || a.H <= 0 || a.Hkv <= 0 || a.L <= 0) return fail("attention_fwd: B, H, Hkv and L must be positive");
    if (a.H % a.Hkv != 0) return fail("attention_fwd: H must be a multiple of Hkv");
    if (a.dtype != ATTNLAB_BF16 && a.dtype != ATTNLAB_FP16) return fail("attention_fwd: dtype must be bf16 or fp16");
    fa_params p{};
    p.q = a.q; p.k = a.k; p.v = a.v; p.o = a.o;
    p.B = a.B; p.H = a.H; p.Hkv = a.Hkv; p.L = a.L;
    fill_strides(p.qs, a.q_strides, a.H, a.L, a.D);
    fill_strides(p.ks, a.k_strides, a.Hkv, a.L, a.D);
    fill_strides(p.vs, a.v_strides, a.Hkv, a.L, a.D);
    fill_strides(p.os, a.o_strides, a.H, a.L, a.D);
    for (const long long * s : {p.qs, p.ks, p.vs, p.os})
        if (s[0] % 8 || s[1] % 8 || s[2] % 8) return fail("attention_fwd: strides must be multiples of 8 elements");
    for (const void * ptr : {a.q, a.k, a.v, (const void *)a.o})
        if (reinterpret_cast<uintptr_t>(ptr) % 16) return fail("attention_fwd: tensors must be 16-byte aligned");
    const float scale = a.scale > 0.f ? a.scale : 1.0f / std::sqrt((float)a.D);
    p.scale_log2 = scale * 1.4426950408889634f;
    p.causal = a.causal ? 1 : 0;
    const bool sparse = a.kv_num_blocks != nullptr;
    int block = 128;
    if (sparse) {
        block = a.block_size;
        if (block != 128 && block != 64) return fail("attention_fwd: block_size must be 64 or 128");
        if (!a.kv_indices) return fail("attention_fwd: kv_indices is null");
        if (!(a.mask_B == 1 || a.mask_B == a.B) || !(a.mask_H == 1 || a.mask_H == a.H))
            return fail("attention_fwd: mask_B must be 1 or B, mask_H 1 or H");
        p.kv_num_blocks = a.kv_num_blocks;
        p.kv_indices = a.kv_indices;
        p.nqb = (a.L + block - 1) / block;
        p.max_kv_blocks = a.max_kv_blocks;
        p.mask_B = a.mask_B;
        p.mask_H = a.mask_H;
        if (p.max_kv_blocks <= 0) return fail("attention_fwd: max_kv_blocks must be positive");
    }
    cudaStream_t st = static_cast<cudaStream_t>(a.stream);
    if (a.dtype == ATTNLAB_BF16)
        return a.D == 64 ? dispatch_nw<__nv_bfloat16, 64>(p, sparse, block, st)
                         : dispatch_nw<__nv_bfloat16, 128>(p, sparse, block, st);
    return a.D == 64 ? dispatch_nw<__half, 64>(p, sparse, block, st) : dispatch_nw<__half, 128>(p, sparse, block, st);
}

// ------------------------------------------------------------------ the gate
// Mean of block_size rows per (batch, head, block); one thread per dimension.
template <typename T>
__global__ void block_pool_kernel(const T * x, float * out, int heads, int L, int D, int bs, int nb) {
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
    (void)heads;
}

// One CTA per (b, h, query block): pooled scores against every allowed key
// block, bitonic sort (score desc), keep the top k, sort those ascending.
constexpr int kTopkThreads = 256;
__global__ void block_topk_kernel(const float * qp, const float * kp, int H, int Hkv, int nb, int D, int causal,
                                  float scale, float density, int k_fixed, int * kv_num, int * kv_idx) {
    extern __shared__ unsigned char smem_raw[];
    const int qb = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H;
    const int hk = h / (H / Hkv);
    int np = 1;
    while (np < nb) np <<= 1;
    float * sc = reinterpret_cast<float *>(smem_raw);
    int * id = reinterpret_cast<int *>(sc + np);
    float * q = reinterpret_cast<float *>(id + np);
    const float * qrow = qp + ((long long)bh * nb + qb) * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) q[d] = qrow[d];
    __syncthreads();
    const float * kbase = kp + ((long long)(b * Hkv + hk) * nb) * D;
    const int allowed = causal ? qb + 1 : nb;
    for (int j = threadIdx.x; j < np; j += blockDim.x) {
        sc[j] = -INFINITY;
        id[j] = j;
    }
    __syncthreads();
    // one warp per key block, lanes over the head dimension (coalesced)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    for (int j = warp; j < allowed; j += nwarps) {
        const float * kr = kbase + (long long)j * D;
        float acc = 0.f;
        for (int d = lane; d < D; d += 32) acc = fmaf(q[d], kr[d], acc);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) sc[j] = (causal && j == qb) ? INFINITY : acc * scale;   // the diagonal block always stays
    }
    __syncthreads();
    // bitonic sort, descending score, ties by ascending index
    for (int size = 2; size <= np; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < np; i += blockDim.x) {
                const int j = i ^ stride;
                if (j > i) {
                    const bool desc = (i & size) == 0;
                    const bool i_first = sc[i] > sc[j] || (sc[i] == sc[j] && id[i] < id[j]);
                    if (i_first != desc) {
                        float ts = sc[i]; sc[i] = sc[j]; sc[j] = ts;
                        int ti = id[i]; id[i] = id[j]; id[j] = ti;
                    }
                }
            }
            __syncthreads();
        }
    }
    int k = k_fixed > 0 ? k_fixed : (int)ceilf(density * (float)allowed - 1e-6f);
    k = max(1, min(k, allowed));
    // keep the first k indices, sort them ascending (others pushed to the end)
    for (int i = threadIdx.x; i < np; i += blockDim.x)
        if (i >= k) id[i] = 0x7fffffff;
    __syncthreads();
    for (int size = 2; size <= np; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < np; i += blockDim.x) {
                const int j = i ^ stride;
                if (j > i) {
                    const bool asc = (i & size) == 0;
                    if ((id[i] > id[j]) == asc) {
                        int ti = id[i]; id[i] = id[j]; id[j] = ti;
                    }
                }
            }
            __syncthreads();
        }
    }
    const long long row = (long long)bh * nb + qb;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) kv_idx[row * nb + i] = i < k ? id[i] : 0;
    if (threadIdx.x == 0) kv_num[row] = k;
}

size_t block_topk_workspace(int B, int H, int Hkv, int L, int D, int bs) {
    const size_t nb = (size_t)(L + bs - 1) / bs;
    return (size_t)B * (H + Hkv) * nb * D * sizeof(float);
}

int block_topk(int dtype, const void * q, const void * k, int B, int H, int Hkv, int L, int D, int causal, float scale,
               int bs, float density, int k_fixed, int * kv_num, int * kv_idx, void * ws, cudaStream_t st) {
    if (!q || !k || !kv_num || !kv_idx || !ws) return fail("block_topk: null pointer");
    if (B <= 0 || H <= 0 || Hkv <= 0 || L <= 0 || H % Hkv) return fail("block_topk: bad shape");
    if (D <= 0 || D > 1024 || (D > 256 && D % 32)) return fail("block_topk: head dim out of range");
    if (bs <= 0) return fail("block_topk: block size must be positive");
    const int nb = (L + bs - 1) / bs;
    if (nb > 4096) return fail("block_topk: more than 4096 blocks");
    if (scale <= 0.f) scale = 1.0f / std::sqrt((float)D);
    float * qp = static_cast<float *>(ws);
    float * kp = qp + (size_t)B * H * nb * D;
    const int pool_threads = (D <= 256 && 256 % D == 0) ? 256 : D;
    if (dtype == ATTNLAB_BF16) {
        block_pool_kernel<<<dim3(nb, B * H), pool_threads, 0, st>>>(static_cast<const __nv_bfloat16 *>(q), qp, H, L, D, bs, nb);
        block_pool_kernel<<<dim3(nb, B * Hkv), pool_threads, 0, st>>>(static_cast<const __nv_bfloat16 *>(k), kp, Hkv, L, D, bs, nb);
    } else if (dtype == ATTNLAB_FP16) {
        block_pool_kernel<<<dim3(nb, B * H), pool_threads, 0, st>>>(static_cast<const __half *>(q), qp, H, L, D, bs, nb);
        block_pool_kernel<<<dim3(nb, B * Hkv), pool_threads, 0, st>>>(static_cast<const __half *>(k), kp, Hkv, L, D, bs, nb);
    } else {
        return fail("block_topk: dtype must be bf16 or fp16");
    }
    if (int r = check_cuda(cudaGetLastError(), "block_pool_kernel launch")) return r;
    int np = 1;
    while (np < nb) np <<= 1;
    const size_t smem = (size_t)np * 8 + (size_t)D * 4;
    if (smem > 48 * 1024) {
        if (int r = check_cuda(cudaFuncSetAttribute(block_topk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                               "cudaFuncSetAttribute"))
            return r;
    }
    block_topk_kernel<<<dim3(nb, B * H), kTopkThreads, smem, st>>>(qp, kp, H, Hkv, nb, D, causal, scale, density, k_fixed,
                                                                   kv_num, kv_idx);
    return check_cuda(cudaGetLastError(), "block_topk_kernel launch");
}

} // namespace attnlab::cuda

// ------------------------------------------------------------------ C API
extern "C" {

int attnlab_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

const char * attnlab_cuda_last_error(void) { return attnlab::cuda::g_last_error.c_str(); }

int attnlab_set_kernel_variant(int v) {
    if (v < 0 || v > 2) return attnlab::cuda::fail("kernel variant must be 0 (auto), 1 or 2");
    attnlab::cuda::g_variant = v;
    return 0;
}

int attnlab_attention_fwd(const attnlab_attn_args * a) {
    if (!a) return attnlab::cuda::fail("attention_fwd: null args");
    return attnlab::cuda::attention_fwd(*a);
}

int attnlab_flash_fwd(int dtype, const void * q, const void * k, const void * v, void * o, int B, int H, int Hkv, int L,
                      int D, int causal, float scale, void * stream) {
    attnlab_attn_args a;
    std::memset(&a, 0, sizeof a);
    a.dtype = dtype; a.q = q; a.k = k; a.v = v; a.o = o;
    a.B = B; a.H = H; a.Hkv = Hkv; a.L = L; a.D = D; a.causal = causal; a.scale = scale; a.stream = stream;
    return attnlab::cuda::attention_fwd(a);
}

int attnlab_block_sparse_fwd(int dtype, const void * q, const void * k, const void * v, void * o, int B, int H, int Hkv,
                             int L, int D, int causal, float scale, const int * kv_num_blocks, const int * kv_indices,
                             int block_size, int mask_B, int mask_H, int max_kv_blocks, void * stream) {
    attnlab_attn_args a;
    std::memset(&a, 0, sizeof a);
    a.dtype = dtype; a.q = q; a.k = k; a.v = v; a.o = o;
    a.B = B; a.H = H; a.Hkv = Hkv; a.L = L; a.D = D; a.causal = causal; a.scale = scale; a.stream = stream;
    a.kv_num_blocks = kv_num_blocks; a.kv_indices = kv_indices; a.block_size = block_size;
    a.mask_B = mask_B; a.mask_H = mask_H; a.max_kv_blocks = max_kv_blocks;
    if (!kv_num_blocks) return attnlab::cuda::fail("block_sparse_fwd: kv_num_blocks is null");
    return attnlab::cuda::attention_fwd(a);
}

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

} // extern "C"
