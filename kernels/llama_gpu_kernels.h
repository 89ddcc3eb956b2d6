#pragma once
// Small CUDA kernels of the GPU Llama forward pass (kernels/llama_gpu.cpp),
// callable from host C++ compiled without nvcc: no CUDA types, device
// pointers as void*/float*, the stream as void*. Every launcher returns 0 on
// success, else a CUDA error code (cudaError_t as int); launches are async.
// bf16 tensors are uint16_t storage (bfloat16 bits).
#include <cstddef>
#include <cstdint>

namespace attnlab::cuda {

// x[t, :] = tok_embd[ids[t], :]   (fp32, [n, E])
int lg_embed(const float * tok_embd, const int32_t * ids, float * x, int n, int E, void * stream);

// y[t, :] = bf16(x[t, :] * rsqrt(mean(x[t, :]^2) + eps) * w)   (the HF LlamaRMSNorm)
int lg_rmsnorm(const float * x, const float * w, uint16_t * y, int n, int E, float eps, void * stream);

// Before RoPE, in place on the fused projection qkv [n, (H + 2 Hk) D] (fp32):
// adds bias [(H + 2 Hk) D] (q|k|v biases, Qwen2) when non-null, then
// RMS-normalises each query head by q_norm [D] and each key head by k_norm [D]
// (Qwen3) when non-null (both or neither).
int lg_qkv_bias_norm(float * qkv, const float * bias, const float * q_norm, const float * k_norm, int n, int H, int Hk,
                     int D, float eps, void * stream);

// Rotate-half RoPE (HF order) of the fused projection qkv [n, (H + 2 Hk) D]
// (row t: H query heads, Hk key heads, Hk value heads): rotates the Q and K
// parts in place (fp32) by cos/sin [n_pos >= n, D/2], and writes bf16 copies
// q [n, H D], k [n, Hk D], v [n, Hk D].
int lg_rope(float * qkv, const float * cos_t, const float * sin_t, uint16_t * q, uint16_t * k, uint16_t * v, int n,
            int H, int Hk, int D, void * stream);

// h[t, f] = bf16(silu(gu[t, f]) * gu[t, F + f])   (gu: fp32 [n, 2F])
int lg_swiglu(const float * gu, uint16_t * h, int n, int F, void * stream);

// Exact attention in fp32 from the fp32 (post-RoPE) qkv buffer, for head dims
// the flash kernels lack and as a reference: causal, GQA. With kv_num/kv_idx
// ([H][nqb] and [H][nqb][max_kv], block size `block`), only kept key blocks
// count, and with kv_mask/tok_mask (attnlab_cuda.h's kv_mask_index and
// token_masks; block 64 or 128) only the kept pairs of partial blocks.
// Writes bf16 out [n, H D]. Needs n * 4 bytes of shared memory.
int lg_attention_ref(const float * qkv, uint16_t * out, int n, int H, int Hk, int D, float scale,
                     const int32_t * kv_num, const int32_t * kv_idx, int block, int max_kv, const int32_t * kv_mask,
                     const unsigned long long * tok_mask, void * stream);

// block_topk selection with the CPU method's rule (core/methods/block_topk.cpp):
// mean-pool Q and K (fp32, post-RoPE, from qkv) over blocks of B rows, score
// s * Q̄_I · K̄_J for J <= I, keep per query block the diagonal I and block 0
// plus the best others (ties: lower J) up to budget = ceil(rho (I+1) - 1e-9),
// indices ascending. Writes kv_num [H][nb], kv_idx [H][nb][nb] and adds to
// counters[0] the kept blocks and to counters[1] the causal pairs inside them.
// workspace: lg_block_topk_workspace() bytes.
size_t lg_block_topk_workspace(int n, int H, int Hk, int D, int B);
int lg_block_topk(const float * qkv, int n, int H, int Hk, int D, float scale, int B, double rho, int32_t * kv_num,
                  int32_t * kv_idx, unsigned long long * counters, void * workspace, void * stream);

// learned_gate (core/methods/learned_gate.h) with tau = 0, one layer: the same
// pooling, then the gate's projections q̃ = Q̄ W_q[h], k̃ = K̄ W_k[h] in double
// (wq, wk: device float [H][D][dg], the layer's slice of the gate file), and
// lg_block_topk's selection on the logits q̃·k̃ / sqrt(dg) (the CPU ranks the
// row softmax of the same logits: the same order). workspace:
// lg_learned_gate_workspace() bytes.
size_t lg_learned_gate_workspace(int n, int H, int Hk, int D, int dg, int B);
int lg_learned_gate(const float * qkv, int n, int H, int Hk, int D, const float * wq, const float * wk, int dg, int B,
                    double rho, int32_t * kv_num, int32_t * kv_idx, unsigned long long * counters, void * workspace,
                    void * stream);

// Per row t < rows: nll[t] = logsumexp(logits[t, :]) - logits[t, target[t]],
// argmax[t] = first index of the row's maximum.
int lg_vocab_nll(const float * logits, const int32_t * target, double * nll, int32_t * argmax, int rows, int V,
                 void * stream);

} // namespace attnlab::cuda
