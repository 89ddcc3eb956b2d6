// Launchers for the flash kernels (flash_fwd.cuh, flash_fwd_sm90.cuh) and the
// C API of attnlab_cuda.h; the block_topk gate is in block_topk_gate.cu.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

#include <cuda.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include "attnlab_cuda.h"
#include "cuda_status.h"
#include "flash_fwd.cuh"
#include "flash_fwd_sm90.cuh"

namespace attnlab::cuda {
namespace {
thread_local std::string g_last_error;
} // namespace

int fail(const std::string & msg) {
    g_last_error = msg;
    return 1;
}
int check_cuda(cudaError_t e, const char * what) {
    if (e == cudaSuccess) return 0;
    return fail(std::string(what) + ": " + cudaGetErrorString(e));
}

namespace {

// Kernel variant for 128-row tiles: 2 = four warps x 32 rows, 1 = eight warps
// x 16 rows with Q in registers, 3 = wgmma/TMA (flash_fwd_sm90.cuh), 4 = the
// same with intra-warpgroup pipelining, 0 = auto (measured on H100, NOTES.md:
// 3 where it applies, else 1 for D=128, 2 for D=64). attnlab_set_kernel_variant().
int g_variant = 0;

template <typename T, int D, int NW, int MF, bool SPARSE, int SC = kScoreSoftmax, bool TM = false>
int launch_flash(const fa_params & p, cudaStream_t st) {
    using S = fa_shape<D, NW, MF>;
    auto kern = flash_fwd_kernel<T, D, NW, MF, SPARSE, SC, TM>;
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

// Block lists with token masks: the default mma.sync shape of the head dim
// only (VARIANT as kAuto below), for every score function.
template <typename T, int D, int SC>
int dispatch_token_masked(const fa_params & p, int block, cudaStream_t st) {
    if constexpr (D == 128) {
        if (block == 128) return launch_flash<T, D, 8, 1, true, SC, true>(p, st);
        return launch_flash<T, D, 4, 1, true, SC, true>(p, st);
    } else {
        if (block == 128) return launch_flash<T, D, 4, 2, true, SC, true>(p, st);
        return launch_flash<T, D, 2, 2, true, SC, true>(p, st);
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
    if (p.kv_mask_index) {   // token masks: the mma.sync kernels of kAuto's shape
        if (score == ATTNLAB_SCORE_RELU) return dispatch_token_masked<T, D, kScoreRelu>(p, block, st);
        if (score == ATTNLAB_SCORE_HYPERBOLIC) return dispatch_token_masked<T, D, kScoreHyperbolic>(p, block, st);
        return dispatch_token_masked<T, D, kScoreSoftmax>(p, block, st);
    }
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
        if ((a.kv_mask_index == nullptr) != (a.token_masks == nullptr))
            return fail("attention_fwd: kv_mask_index and token_masks go together");
        p.kv_mask_index = a.kv_mask_index;
        p.token_masks = a.token_masks;
    } else if (a.kv_mask_index || a.token_masks) {
        return fail("attention_fwd: token masks need block lists (kv_num_blocks)");
    }
    cudaStream_t st = static_cast<cudaStream_t>(a.stream);
    if (a.dtype == ATTNLAB_BF16)
        return a.D == 64 ? dispatch_score<__nv_bfloat16, 64>(p, a, sparse, block, st)
                         : dispatch_score<__nv_bfloat16, 128>(p, a, sparse, block, st);
    return a.D == 64 ? dispatch_score<__half, 64>(p, a, sparse, block, st)
                     : dispatch_score<__half, 128>(p, a, sparse, block, st);
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

} // extern "C"
