// The Llama forward pass on the CPU, float32, no KV cache: the whole window
// from position 0. Activations are row-major [n_tokens, dim]; every linear
// layer is one Eigen GEMM (x * W^T, W in PyTorch layout), which Eigen runs on
// OpenMP threads; elementwise work uses OpenMP loops over tokens.
#include "model/llama.h"
#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "attention/attention.h"
#include "base/job.h"

namespace attnlab {

namespace {

// y = x * rsqrt(mean(x^2) + eps) * w, row by row (the HF LlamaRMSNorm).
void rms_norm(const matrix_rm & x, const Eigen::VectorXf & w, float eps, matrix_rm & y) {
    const int n = (int) x.rows(), d = (int) x.cols();
    y.resize(n, d);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; ++t) {
        // Eigen's packet-wise sum of squares: vectorised, and its partial sums
        // keep float rounding well below the tolerances we test.
        const float ms = x.row(t).squaredNorm() / (float) d;
        const float r = 1.0f / std::sqrt(ms + eps);
        y.row(t).array() = x.row(t).array() * r * w.transpose().array();
    }
}

// Rotate-half (NeoX / HF) RoPE in place on one token's heads: the pair
// (i, i + hd/2) of each head rotates by pos * inv_freq[i].
inline void rope_row(float * row, int n_heads, int half, const float * c, const float * s) {
    for (int h = 0; h < n_heads; ++h) {
        float * v = row + (size_t) h * 2 * half;
        for (int i = 0; i < half; ++i) {
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c[i] - x1 * s[i];
            v[i + half] = x1 * c[i] + x0 * s[i];
        }
    }
}

// Per-head RMSNorm of q or k rows in place (Qwen3, Gemma 3): each head's
// head_dim slice normalised, times w [head_dim].
void head_rms_norm(matrix_rm & x, int n_heads, const Eigen::VectorXf & w, float eps) {
    const int n = (int) x.rows(), hd = (int) w.size();
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; ++t)
        for (int h = 0; h < n_heads; ++h) {
            auto v = x.row(t).segment((Eigen::Index) h * hd, hd);
            const float r = 1.0f / std::sqrt(v.squaredNorm() / (float) hd + eps);
            v.array() = v.array() * r * w.transpose().array();
        }
}

// tanh GELU (gelu_pytorch_tanh) times up, in place on n values of g.
void geglu_row(float * g_ptr, const float * u_ptr, int n) {
    Eigen::Map<Eigen::ArrayXf> g(g_ptr, n);
    Eigen::Map<const Eigen::ArrayXf> u(u_ptr, n);
    const float k = 0.7978845608028654f;  // sqrt(2 / pi)
    g = 0.5f * g * (1.0f + (k * (g + 0.044715f * g.cube())).tanh()) * u;
}

// Q [n, n_head*hd] and K [n, n_head_kv*hd] in one parallel loop.
void apply_rope(matrix_rm & q, int n_head, matrix_rm & k, int n_head_kv, const rope_table & rt) {
    const int n = (int) q.rows(), half = rt.half;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; ++t) {
        const float * c = rt.cos_.data() + (size_t) t * half;
        const float * s = rt.sin_.data() + (size_t) t * half;
        rope_row(q.data() + (size_t) t * q.cols(), n_head, half, c, s);
        rope_row(k.data() + (size_t) t * k.cols(), n_head_kv, half, c, s);
    }
}

} // namespace

matrix_rm llama_forward(const llama_model & m, const std::vector<int32_t> & tokens, const forward_options & opt) {
    const llama_config & c = m.cfg;
    const int n = (int) tokens.size();
    if (n == 0) return matrix_rm(0, c.n_vocab);
    for (int32_t id : tokens)
        if (id < 0 || id >= c.n_vocab)
            throw std::invalid_argument("llama_forward: token id " + std::to_string(id) + " outside [0, " +
                                        std::to_string(c.n_vocab) + ")");

    const int hd = c.head_dim;
    const int q_dim = c.n_head * hd;

    matrix_rm x(n, c.n_embd);
    for (int t = 0; t < n; ++t) x.row(t) = m.tok_embd.row(tokens[t]);
    if (c.embd_scale != 1.0f) x *= c.embd_scale;

    // Sliding layers of a family with its own local base rotate by their own table.
    const rope_table rt(c, n);
    const bool local_rope = c.has(LLM_FEAT_LOCAL_ROPE_BASE) && c.rope_theta_local > 0.0f;
    const rope_table rt_local(c, local_rope ? n : 0, true);
    matrix_rm xn, q, k, v, attn(n, q_dim), gate, up, tmp;

    for (int il = 0; il < c.n_layer; ++il) {
        job_step(opt.progress, (double) il / c.n_layer, "layer " + std::to_string(il));
        const llama_layer & L = m.layers[il];

        // Attention block.
        rms_norm(x, L.attn_norm, c.rms_eps, xn);
        q.noalias() = xn * L.wq.transpose();
        k.noalias() = xn * L.wk.transpose();
        v.noalias() = xn * L.wv.transpose();
        if (L.bq.size()) {
            q.rowwise() += L.bq.transpose();
            k.rowwise() += L.bk.transpose();
            v.rowwise() += L.bv.transpose();
        }
        if (L.q_norm.size()) {
            head_rms_norm(q, c.n_head, L.q_norm, c.rms_eps);
            head_rms_norm(k, c.n_head_kv, L.k_norm, c.rms_eps);
        }
        const int window = c.layer_window(il);
        apply_rope(q, c.n_head, k, c.n_head_kv, local_rope && window > 0 ? rt_local : rt);

        attention_layer_io io;
        io.layer = il;
        io.n_tokens = n;
        io.n_head = c.n_head;
        io.n_head_kv = c.n_head_kv;
        io.head_dim = hd;
        io.scale = c.score_scale();
        io.causal = true;
        io.window = window;
        io.softcap = c.attn_softcap;
        io.q = q.data();
        io.k = k.data();
        io.v = v.data();
        io.out = attn.data();
        if (opt.hook) opt.hook->on_qkv(io);
        if (opt.hook && opt.hook->attend(io)) {
            if (io.window > 0 || io.softcap > 0.0f)
                throw std::invalid_argument("llama_forward: layer " + std::to_string(il) +
                                            " has the model's own sliding window or softcapping, which sparse "
                                            "methods do not honour yet");
        } else {
            attention_dense_flash(io);
        }

        if (L.attn_post_norm.size()) {
            tmp.noalias() = attn * L.wo.transpose();
            rms_norm(tmp, L.attn_post_norm, c.rms_eps, xn);
            x += xn;
        } else {
            x.noalias() += attn * L.wo.transpose();
        }

        // SwiGLU feed-forward block: down(silu(gate(x)) * up(x)).
        rms_norm(x, L.ffn_norm, c.rms_eps, xn);
        gate.noalias() = xn * L.w_gate.transpose();
        up.noalias() = xn * L.w_up.transpose();
        const bool gelu = c.has(LLM_FEAT_GELU);
#pragma omp parallel for schedule(static)
        for (int t = 0; t < n; ++t) {
            // silu(g) * u through Eigen's vectorised exp, or GeGLU gelu(g) * u.
            if (gelu) {
                geglu_row(gate.data() + (size_t) t * gate.cols(), up.data() + (size_t) t * up.cols(), (int) gate.cols());
                continue;
            }
            auto g = gate.row(t).array();
            g = g / (1.0f + (-g).exp()) * up.row(t).array();
        }
        if (L.ffn_post_norm.size()) {
            tmp.noalias() = gate * L.w_down.transpose();
            rms_norm(tmp, L.ffn_post_norm, c.rms_eps, xn);
            x += xn;
        } else {
            x.noalias() += gate * L.w_down.transpose();
        }
    }

    // Final norm and the vocabulary projection (all rows, or only the last).
    const matrix_rm & w_out = m.output_matrix();
    if (opt.all_logits) {
        rms_norm(x, m.output_norm, c.rms_eps, xn);
    } else {
        matrix_rm last = x.bottomRows(1);
        rms_norm(last, m.output_norm, c.rms_eps, xn);
    }
    matrix_rm logits = xn * w_out.transpose();
    if (c.final_softcap > 0.0f) logits = (logits.array() / c.final_softcap).tanh() * c.final_softcap;
    return logits;
}

// Floating-point operations (2 per multiply-add) of one forward pass:
//  - every linear layer: 2 * n * in * out (Q, K, V, O, gate, up, down);
//  - the vocabulary projection: 2 * n_out * n_embd * n_vocab, n_out = n with
//    all_logits, else 1;
//  - causal attention: Q K^T and P V over the n (n + 1) / 2 visible pairs,
//    2 * 2 * n_head * head_dim * n (n + 1) / 2.
// Not counted: norms, RoPE, softmax, SiLU, residual adds (O(n * dim)).
double llama_forward_flops(const llama_config & c, int64_t n_tokens, bool all_logits) {
    const double n = (double) n_tokens;
    const double hd = c.head_dim, e = c.n_embd;
    const double per_layer_weights = e * (c.n_head * hd) * 2      // wq, wo
                                   + e * (c.n_head_kv * hd) * 2   // wk, wv
                                   + e * c.n_ff * 3.0;            // gate, up, down
    const double linear = 2.0 * n * per_layer_weights * c.n_layer;
    const double vocab = 2.0 * (all_logits ? n : std::min(n, 1.0)) * e * c.n_vocab;
    const double attn = 2.0 * 2.0 * c.n_head * hd * (n * (n + 1) / 2) * c.n_layer;
    return linear + vocab + attn;
}

} // namespace attnlab
