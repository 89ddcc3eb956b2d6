#pragma once
// The attention interface of the forward pass. One layer's post-RoPE Q, K, V for
// every head travel in one attention_layer_io; the forward pass hands it to an
// attention_hook (capture, or a sparse method that computes `out` itself) and
// otherwise runs the dense flash-style kernel.
#include <cstdint>

namespace attnlab {

// Row-major layouts (t = token, h = head, i = dim):
//   q[t*q_stride + h*head_dim + i]          q_stride  = n_head    * head_dim
//   k[t*kv_stride + g*head_dim + i]         kv_stride = n_head_kv * head_dim
//   out like q. Query head h reads K/V head g = h / (n_head / n_head_kv).
struct attention_layer_io {
    int layer = 0;
    int n_tokens = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    float scale = 0.0f;   // 1/sqrt(head_dim) for Llama
    bool causal = true;
    // The model's own attention pattern (llama_config): a sliding window
    // (key j visible to query i only when i - j < window; 0: none) and tanh
    // softcapping of the scaled scores (0: none). A hook that replaces the
    // attention must honour both; the forward pass refuses one that cannot.
    int window = 0;
    float softcap = 0.0f;
    const float * q = nullptr;
    const float * k = nullptr;
    const float * v = nullptr;
    float * out = nullptr;

    int kv_head_of(int h) const { return h / (n_head / n_head_kv); }
};

class attention_hook {
public:
    virtual ~attention_hook() = default;
    // Sees every layer's Q/K/V before attention runs (capture).
    virtual void on_qkv(const attention_layer_io & io) { (void) io; }
    // Return true after writing io.out to replace this layer's attention
    // (a sparse method); false lets the forward pass run dense attention.
    virtual bool attend(const attention_layer_io & io) { (void) io; return false; }
};

// Dense attention, tiled flash-style (online softmax over key tiles), never
// forming the L x L matrix; OpenMP over (head, query tile).
void attention_dense_flash(const attention_layer_io & io);

// Float64 reference: materialises each head's score row in double precision.
// For tests and for small problems only. out64 has the layout of io.out.
void attention_dense_reference_f64(const attention_layer_io & io, double * out64);

} // namespace attnlab
