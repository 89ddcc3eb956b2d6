// Launchers for the flash kernels (flash_fwd.cuh) and the block_topk gate.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

#include <cuda.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include "attnlab_cuda.h"
#include "flash_fwd.cuh"
#include "flash_fwd_sm90.cuh"

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
// x 16 rows with Q in registers, 3 = wgmma/TMA (flash_fwd_sm90.cuh), 4 = the
// same with intra-warpgroup pipelining, 0 = auto (measured on H100, NOTES.md:
// 3 where it applies, else 1 for D=128, 2 for D=64). attnlab_set_kernel_variant().
int g_variant = 0;

template <typename T, int D, int NW, int MF, bool SPARSE, int SC = kScoreSoftmax>
int launch_flash(const fa_params & p, cudaStream_t st) {
    using S = fa_shape<D, NW, MF>;
    auto kern = flash_fwd_kernel<T, D, NW, MF, SPARSE, SC>;
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

template <typename T, int D, int VARIANT, int SC>
int dispatch_shape(const fa_params & p, bool sparse, int block, cudaStream_t st) {
    if constexpr (VARIANT == 1) {
        if (!sparse) return launch_flash<T, D, 8, 1, false, SC>(p, st);
        if (block == 128) return launch_flash<T, D, 8, 1, true, SC>(p, st);
        return launch_flash<T, D, 4, 1, true, SC>(p, st);
    } else {
        if (!sparse) return launch_flash<T, D, 4, 2, false, SC>(p, st);
        if (block == 128) return launch_flash<T, D, 4, 2, true, SC>(p, st);
        return launch_flash<T, D, 2, 2, true, SC>(p, st);
    }
}

// ------------------------------------------------ Hopper kernel (variant 3)
// TMA descriptors are encoded through the driver entry point (no -lcuda).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void * f = nullptr;
        cudaDriverEntryPointQueryResult q{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
            q != cudaDriverEntryPointSuccess)
            f = nullptr;
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
    }();
    return fn;
}

// 4-D map {D, L, heads, B} of a [B, heads, L, D] tensor with element strides
// s[0..2] (batch, head, token); box {64, 128, 1, 1}; rows past L read as zeros.
template <typename T>
int encode_map(CUtensorMap * m, const void * ptr, const long long s[3], int D, int L, int heads, int B) {
    auto enc = tensor_map_encoder();
    if (!enc) return fail("cuTensorMapEncodeTiled not available from the driver");
    const cuuint64_t dims[4] = {(cuuint64_t)D, (cuuint64_t)L, (cuuint64_t)heads, (cuuint64_t)B};
    const cuuint64_t strides[3] = {(cuuint64_t)s[2] * sizeof(T), (cuuint64_t)s[1] * sizeof(T), (cuuint64_t)s[0] * sizeof(T)};
    const cuuint32_t box[4] = {64, 128, 1, 1};
    const cuuint32_t estr[4] = {1, 1, 1, 1};
    const CUtensorMapDataType dt =
        std::is_same<T, __half>::value ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    const CUresult r = enc(m, dt, 4, const_cast<void *>(ptr), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                           CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) return fail("cuTensorMapEncodeTiled failed (code " + std::to_string((int)r) + ")");
    return 0;
}

// True when the current device is compute capability 9.x and the sm90
// kernel was built for it (binary version 90: the sm_90a cubin).
bool sm90_available() {
    static int avail = -1;
    if (avail < 0) {
        int dev = 0, major = 0;
        cudaFuncAttributes fa{};
        avail = cudaGetDevice(&dev) == cudaSuccess &&
                cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major == 9 &&
                cudaFuncGetAttributes(&fa, sm90::flash_fwd_sm90_kernel<__nv_bfloat16, 128, false, false>) == cudaSuccess &&
                fa.binaryVersion == 90 && tensor_map_encoder() != nullptr;
        cudaGetLastError();
    }
    return avail == 1;
}

template <typename T, int D, bool SPARSE, bool OVERLAP>
int launch_sm90(const fa_params & p, cudaStream_t st) {
    sm90::args a;
    std::memset(&a, 0, sizeof a);
    a.p = p;
    if (int r = encode_map<T>(&a.tq, p.q, p.qs, D, p.L, p.H, p.B)) return r;
    if (int r = encode_map<T>(&a.tk, p.k, p.ks, D, p.L, p.Hkv, p.B)) return r;
    if (int r = encode_map<T>(&a.tv, p.v, p.vs, D, p.L, p.Hkv, p.B)) return r;
    constexpr int kSmem = sm90::shape<D>::kSmem;
    auto kern = sm90::flash_fwd_sm90_kernel<T, D, SPARSE, OVERLAP>;
    static bool configured = false;
    if (!configured) {
        if (int r = check_cuda(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem),
                               "cudaFuncSetAttribute (sm90)"))
            return r;
        configured = true;
    }
    dim3 grid((p.L + sm90::kBM - 1) / sm90::kBM, p.B * p.H);
    if (grid.y > 65535u) return fail("B*H exceeds 65535");
    kern<<<grid, sm90::kThreads, kSmem, st>>>(a);
    return check_cuda(cudaGetLastError(), "flash_fwd_sm90_kernel launch");
}

template <int D> bool sm90_applies(bool sparse, int block) {
    return (D == 128 || D == 64) && (!sparse || block == 128) && sm90_available();
}

// Softmax: the variant set by attnlab_set_kernel_variant. relu / hyperbolic:
// only the default variant of the head dim is instantiated (half the code).
template <typename T, int D>
int dispatch_nw(const fa_params & p, bool sparse, int block, int score, cudaStream_t st) {
    constexpr int kAuto = D == 128 ? 1 : 2;
    if (score == ATTNLAB_SCORE_RELU) return dispatch_shape<T, D, kAuto, kScoreRelu>(p, sparse, block, st);
    if (score == ATTNLAB_SCORE_HYPERBOLIC) return dispatch_shape<T, D, kAuto, kScoreHyperbolic>(p, sparse, block, st);
    // auto: the wgmma/TMA kernel where it applies (block 128, sm_90a),
    // else 1 for D = 128 and 2 for D = 64 (measured on H100, NOTES.md)
    int variant = g_variant != 0 ? g_variant : (sm90_applies<D>(sparse, block) ? 3 : kAuto);
    if (variant >= 3) {   // 3: wgmma/TMA kernel; 4: the same with the intra-warpgroup pipelining
        if (sm90_applies<D>(sparse, block)) {
            if (variant == 3)
                return sparse ? launch_sm90<T, D, true, false>(p, st) : launch_sm90<T, D, false, false>(p, st);
            return sparse ? launch_sm90<T, D, true, true>(p, st) : launch_sm90<T, D, false, true>(p, st);
        }
        variant = kAuto;   // not applicable here: the mma.sync default
    }
    if (variant == 1) return dispatch_shape<T, D, 1, kScoreSoftmax>(p, sparse, block, st);
    return dispatch_shape<T, D, 2, kScoreSoftmax>(p, sparse, block, st);
}

// Hyperbolic pre-pass: one warp per row, exponential map at 0 of the ball of
// curvature -c (projected to radius (1 - 1e-3)/sqrt(c), as score.cpp), the
// mapped row stored contiguously ([B*heads][L][D]) and aux = (|x^|^2 of the
// stored (rounded) values, num / lambda) with lambda = 1 - c r^2, r the radius
// before rounding. Rows in [L, ld) get aux (0, 0) (masked keys / unstored rows).
template <typename T, int D>
__global__ void ball_map_kernel(const T * x, long long s0, long long s1, long long s2, int heads, int L, int ld,
                                float c, float num, T * out, float2 * aux) {
    constexpr int kPer = D / 32;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * (blockDim.x >> 5) + warp, bh = blockIdx.y;
    if (row >= ld) return;
    float2 * a = aux + (long long)bh * ld + row;
    if (row >= L) {
        if (lane == 0) *a = make_float2(0.f, 0.f);
        return;
    }
    const int b = bh / heads, h = bh % heads;
    const T * src = x + b * s0 + h * s1 + row * s2 + lane * kPer;
    float v[kPer], n2 = 0.f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        v[i] = static_cast<float>(src[i]);
        n2 = fmaf(v[i], v[i], n2);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) n2 += __shfl_xor_sync(0xffffffffu, n2, o);
    const float sc = sqrtf(c), n = sqrtf(n2);
    const float r = n > 0.f ? fminf(tanhf(sc * n) / sc, (1.f - 1e-3f) / sc) : 0.f;
    const float f = n > 0.f ? r / n : 0.f;
    T * dst = out + ((long long)bh * L + row) * D + lane * kPer;
    float m2 = 0.f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        const T y = static_cast<T>(v[i] * f);
        dst[i] = y;
        const float yf = static_cast<float>(y);
        m2 = fmaf(yf, yf, m2);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m2 += __shfl_xor_sync(0xffffffffu, m2, o);
    if (lane == 0) *a = make_float2(m2, num / (1.f - c * r * r));
}

template <typename T, int D>
int hyperbolic_attention(fa_params p, const attnlab_attn_args & a, bool sparse, int block, cudaStream_t st) {
    const int ld = (p.L + 127) / 128 * 128;
    const size_t nq = (size_t)p.B * p.H * p.L * D, nk = (size_t)p.B * p.Hkv * p.L * D;
    const size_t bytes = (nq + nk) * sizeof(T) + (size_t)p.B * (p.H + p.Hkv) * ld * sizeof(float2);
    void * ws = nullptr;
    if (int r = check_cuda(cudaMallocAsync(&ws, bytes, st), "cudaMallocAsync (hyperbolic workspace)")) return r;
    T * qh = static_cast<T *>(ws);
    T * kh = qh + nq;
    float2 * qaux = reinterpret_cast<float2 *>(kh + nk);   // (nq + nk) * 2 bytes: a multiple of 128
    float2 * kaux = qaux + (size_t)p.B * p.H * ld;
    const dim3 blk(128);
    ball_map_kernel<T, D><<<dim3((ld + 3) / 4, p.B * p.H), blk, 0, st>>>(
        static_cast<const T *>(p.q), p.qs[0], p.qs[1], p.qs[2], p.H, p.L, ld, a.hyp_c, 2.f * a.hyp_c, qh, qaux);
    ball_map_kernel<T, D><<<dim3((ld + 3) / 4, p.B * p.Hkv), blk, 0, st>>>(
        static_cast<const T *>(p.k), p.ks[0], p.ks[1], p.ks[2], p.Hkv, p.L, ld, a.hyp_c, 1.f, kh, kaux);
    int rc = check_cuda(cudaGetLastError(), "ball_map_kernel launch");
    if (rc == 0) {
        p.q = qh;
        p.k = kh;
        p.qs[0] = (long long)p.H * p.L * D; p.qs[1] = (long long)p.L * D; p.qs[2] = D;
        p.ks[0] = (long long)p.Hkv * p.L * D; p.ks[1] = (long long)p.L * D; p.ks[2] = D;
        p.qaux = qaux; p.kaux = kaux; p.aux_ld = ld;
        p.scale_log2 = 1.f;   // scores come out of the tile already in log2 units
        p.hyp_k2 = a.hyp_beta / std::sqrt(a.hyp_c);
        p.hyp_g2 = a.hyp_gamma * 1.4426950408889634f;
        rc = dispatch_nw<T, D>(p, sparse, block, ATTNLAB_SCORE_HYPERBOLIC, st);
    }
    const int rf = check_cuda(cudaFreeAsync(ws, st), "cudaFreeAsync (hyperbolic workspace)");
    return rc ? rc : rf;
}

template <typename T, int D>
int dispatch_score(fa_params & p, const attnlab_attn_args & a, bool sparse, int block, cudaStream_t st) {
    if (a.score == ATTNLAB_SCORE_HYPERBOLIC) return hyperbolic_attention<T, D>(p, a, sparse, block, st);
    return dispatch_nw<T, D>(p, sparse, block, a.score, st);
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
    if (a.score < ATTNLAB_SCORE_SOFTMAX || a.score > ATTNLAB_SCORE_HYPERBOLIC)
        return fail("attention_fwd: score must be 0 (softmax), 1 (relu) or 2 (hyperbolic)");
    if (a.score == ATTNLAB_SCORE_RELU) {
        p.relu_scale = scale;
        p.relu_bias = a.relu_bias;
        p.out_div = a.relu_row_norm ? 0.f : (float)a.L;
    }
    if (a.score == ATTNLAB_SCORE_HYPERBOLIC && !(a.hyp_c > 0.f))
        return fail("attention_fwd: hyperbolic c must be > 0");
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
        return a.D == 64 ? dispatch_score<__nv_bfloat16, 64>(p, a, sparse, block, st)
                         : dispatch_score<__nv_bfloat16, 128>(p, a, sparse, block, st);
    return a.D == 64 ? dispatch_score<__half, 64>(p, a, sparse, block, st)
                     : dispatch_score<__half, 128>(p, a, sparse, block, st);
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

// Q and K pooled in one launch (grid.y = B*H rows of Q, then B*Hkv of K), for
// D % 8 == 0 with D/8 dividing 256: a thread owns 8 dimensions (16-byte loads),
// 256 / (D/8) rows are summed in parallel, the row loop unrolled so that several
// loads are in flight (the one-element-per-thread kernel above was latency-bound).
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

// One CTA per (b, h, query block): pooled scores against every allowed key
// block, bitonic sort (score desc), keep the top k, sort those ascending.
// (Tried: 4 query blocks per CTA sharing each pooled key read, with run-time
// index arithmetic in the sorts: slower, 32k 0.347 ms and with 1 block per CTA
// 0.421 vs this kernel's 0.338: the sorts' per-element index math and
// barriers, not the pooled keys' L2 traffic, are the cost. NOTES.md.)
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
#pragma unroll 4   // independent key blocks: their loads can be in flight together
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
    const bool vec = D % 8 == 0 && D / 8 <= 256 && 256 % (D / 8) == 0 &&
                     reinterpret_cast<uintptr_t>(q) % 16 == 0 && reinterpret_cast<uintptr_t>(k) % 16 == 0;
    if (vec && (dtype == ATTNLAB_BF16 || dtype == ATTNLAB_FP16)) {
        if ((long long)B * (H + Hkv) > 65535) return fail("block_topk: B*(H+Hkv) exceeds 65535");
        const dim3 grid(nb, B * H + B * Hkv);
        const size_t smem = (size_t)(256 / (D / 8)) * D * sizeof(float);   // 8 KiB at D = 128
        if (dtype == ATTNLAB_BF16)
            block_pool_qk_kernel<<<grid, 256, smem, st>>>(static_cast<const __nv_bfloat16 *>(q),
                                                           static_cast<const __nv_bfloat16 *>(k), qp, kp, B * H, L, D, bs, nb);
        else
            block_pool_qk_kernel<<<grid, 256, smem, st>>>(static_cast<const __half *>(q), static_cast<const __half *>(k),
                                                           qp, kp, B * H, L, D, bs, nb);
    } else if (dtype == ATTNLAB_BF16) {
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
    if (v < 0 || v > 4) return attnlab::cuda::fail("kernel variant must be 0 (auto), 1, 2, 3 or 4");
    attnlab::cuda::g_variant = v;
    return 0;
}

int attnlab_default_kernel_variant(int D, int block_size) {
    if ((D == 128 || D == 64) && (block_size == 0 || block_size == 128) && attnlab::cuda::sm90_available()) return 3;
    return D == 128 ? 1 : 2;
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
