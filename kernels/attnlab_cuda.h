#pragma once
// C entry points of the CUDA kernels (no CUDA headers needed to include this;
// also loadable from Python through ctypes: see bench/gpu/bench.py).
// All pointers are device pointers. Return 0 on success, otherwise an error
// code; attnlab_cuda_last_error() then says what went wrong.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { ATTNLAB_BF16 = 0, ATTNLAB_FP16 = 1 };

typedef struct attnlab_attn_args {
    int dtype;                 // ATTNLAB_BF16 or ATTNLAB_FP16
    const void * q; const void * k; const void * v; void * o;
    int B, H, Hkv, L, D;       // D = 64 or 128; H % Hkv == 0
    int causal;                // top-left aligned: query i sees keys j <= i
    float scale;               // softmax scale; <= 0 means 1/sqrt(D)
    // element strides [batch, head, token]; all zero means contiguous [B, H(kv), L, D]
    long long q_strides[3], k_strides[3], v_strides[3], o_strides[3];
    // block-sparse (NULL kv_num_blocks: dense). Block size 128 or 64, for
    // query and key blocks alike. Shapes [mask_B][mask_H][nqb] and
    // [mask_B][mask_H][nqb][max_kv_blocks]; mask_B in {1, B}, mask_H in {1, H}.
    const int * kv_num_blocks;
    const int * kv_indices;
    int block_size, mask_B, mask_H, max_kv_blocks;
    void * stream;             // cudaStream_t, NULL for the default stream
    // Score function (core/attention/score.h; all zero: softmax). relu:
    // A_ij = relu(scale q.k - relu_bias) / L, or / row sum when relu_row_norm.
    // hyperbolic: q, k mapped into the Poincare ball of curvature -hyp_c,
    // A = softmax(-hyp_beta d_c(q, k) - hyp_gamma); scale is not used. Masked
    // pairs get weight 0; rows without a kept key give zeros.
    int score;                 // ATTNLAB_SCORE_*
    float relu_bias;
    int relu_row_norm;
    float hyp_c, hyp_beta, hyp_gamma;
    // Token masks on top of the block lists (NULL: whole blocks). Per kept
    // block, kv_mask_index [mask_B][mask_H][nqb][max_kv_blocks] is -1 (every
    // causal pair kept) or the number m of its mask in token_masks: block_size
    // rows of block_size/64 words, row i's bit j set when query i of the
    // block keeps key j of the block (core/attention/tile_list.h builds them).
    const int * kv_mask_index;
    const unsigned long long * token_masks;
} attnlab_attn_args;

enum { ATTNLAB_SCORE_SOFTMAX = 0, ATTNLAB_SCORE_RELU = 1, ATTNLAB_SCORE_HYPERBOLIC = 2 };

int attnlab_cuda_device_count(void);
const char * attnlab_cuda_last_error(void);
// Flash kernel variant (process-wide, for benchmarks): 0 = auto (default:
// 3 where it applies, else 1 for D=128, 2 for D=64), 1 = mma.sync, eight
// warps x 16 query rows per 128-row tile, Q in registers, 2 = mma.sync, four
// warps x 32 rows (K/V fragments reused twice), 3 = wgmma + TMA warp-
// specialised kernel (flash_fwd_sm90.cuh; sm_90a with D = 128 and block 128
// only, other shapes and devices fall back to the mma.sync default), 4 = the
// same with intra-warpgroup GEMM/softmax pipelining (slower today: NOTES.md).
// Score functions other than softmax always use the mma.sync default.
int attnlab_set_kernel_variant(int v);
// The variant auto picks for head dim D and block size (0 = dense) here.
int attnlab_default_kernel_variant(int D, int block_size);

int attnlab_attention_fwd(const attnlab_attn_args * a);

// Flat wrappers for contiguous [B, H, L, D] tensors (ctypes-friendly).
int attnlab_flash_fwd(int dtype, const void * q, const void * k, const void * v, void * o,
                      int B, int H, int Hkv, int L, int D, int causal, float scale, void * stream);
int attnlab_block_sparse_fwd(int dtype, const void * q, const void * k, const void * v, void * o,
                             int B, int H, int Hkv, int L, int D, int causal, float scale,
                             const int * kv_num_blocks, const int * kv_indices, int block_size,
                             int mask_B, int mask_H, int max_kv_blocks, void * stream);

// block_topk on the GPU: mean-pool Q and K over blocks of block_size rows,
// score the pooled pairs (q̄·k̄ · scale), keep per query block the top
// k = k_fixed (if > 0) or ceil(density * allowed) key blocks (a product within
// float rounding of an integer counts as that integer), allowed = all
// blocks, or J <= I when causal; the diagonal block is always kept when causal.
// Writes kv_num_blocks [B][H][nqb] and kv_indices [B][H][nqb][nkb] (indices
// ascending, unused tail filled with 0). nkb <= 4096. workspace: at least
// attnlab_block_topk_workspace() bytes of device memory.
size_t attnlab_block_topk_workspace(int B, int H, int Hkv, int L, int D, int block_size);
int attnlab_block_topk(int dtype, const void * q, const void * k, int B, int H, int Hkv, int L, int D,
                       int causal, float scale, int block_size, float density, int k_fixed,
                       int * kv_num_blocks, int * kv_indices, void * workspace, void * stream);

// learned_gate on the GPU (core/methods/learned_gate.h): block_topk's pooling,
// then per query head h the gate's projections q̃ = Q̄·W_q[h], k̃ = K̄·W_k[h]
// (head_dim -> d_g; K̄ of h's KV head), scores q̃·k̃ / sqrt(d_g), and
// block_topk's selection (top k by score, which is top k by the gate's softmax
// P; the diagonal when causal). wq, wk: device float [H][D][d_g], one layer's.
// workspace: at least attnlab_learned_gate_workspace() bytes.
size_t attnlab_learned_gate_workspace(int B, int H, int Hkv, int L, int D, int d_g, int block_size);
int attnlab_learned_gate(int dtype, const void * q, const void * k, const float * wq, const float * wk, int d_g,
                         int B, int H, int Hkv, int L, int D, int causal, int block_size, float density, int k_fixed,
                         int * kv_num_blocks, int * kv_indices, void * workspace, void * stream);

#ifdef __cplusplus
}
#endif
