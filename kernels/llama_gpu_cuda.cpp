// llama_gpu (core/model/llama_gpu.h) on CUDA: host C++ (no nvcc needed),
// cuBLAS for the linear layers, kernels/llama_gpu_kernels.cu for the small
// kernels, the flash kernels (attention.cu) for attention.
//
// Precision (the contract the [cuda] test checks against llama_forward):
//   * weights uploaded once in bf16 (Q, K, V fused into one [C, E] matrix,
//     gate and up into one [2F, E]); the embedding table stays fp32;
//   * residual stream x, RMSNorm statistics, projections' outputs, RoPE and
//     SwiGLU in fp32; GEMM inputs (normed activations, attention output, the
//     SwiGLU product) rounded to bf16; every GEMM accumulates in fp32
//     (CUBLAS_COMPUTE_32F), the o/down projections add into x (beta = 1);
//   * attention: bf16 Q/K/V into the flash kernels (fp32 accumulation) for
//     head dims 64/128, else an exact fp32 reference kernel;
//   * logits fp32.
// One stream; per layer, CUDA events around the gate and the attention.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "attention/selection.h"
#include "attention/tile_list.h"
#include "attnlab_cuda.h"
#include "base/half.h"
#include "llama_gpu_cuda.h"
#include "model/rope.h"
#include "llama_gpu_kernels.h"
#include "methods/learned_gate.h"
#include "methods/method.h"

namespace attnlab {
namespace {

void ck(cudaError_t e, const char * what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("llama_gpu: ") + what + ": " + cudaGetErrorString(e));
}
void ckk(int e, const char * what) { ck(static_cast<cudaError_t>(e), what); }
void ckb(cublasStatus_t s, const char * what) {
    if (s != CUBLAS_STATUS_SUCCESS)
        throw std::runtime_error(std::string("llama_gpu: ") + what + ": " + cublasGetStatusString(s));
}
void ck_attn(int r) {
    if (r != 0) throw std::runtime_error(std::string("llama_gpu: attention: ") + attnlab_cuda_last_error());
}


// Bytes held by dev_bufs now and the most since the last reset (one forward
// pass at a time per process: the stats are per call).
struct dev_bytes {
    static int64_t & live() { static int64_t n = 0; return n; }
    static int64_t & peak() { static int64_t n = 0; return n; }
    static void add(int64_t d) {
        live() += d;
        peak() = std::max(peak(), live());
    }
};

// Device allocation that grows on demand (contents not kept on growth).
struct dev_buf {
    void * p = nullptr;
    size_t bytes = 0;
    dev_buf() = default;
    dev_buf(const dev_buf &) = delete;
    dev_buf & operator=(const dev_buf &) = delete;
    dev_buf(dev_buf && o) noexcept : p(o.p), bytes(o.bytes) { o.p = nullptr; o.bytes = 0; }
    dev_buf & operator=(dev_buf && o) noexcept {
        std::swap(p, o.p);
        std::swap(bytes, o.bytes);
        return *this;
    }
    ~dev_buf() {
        if (p) {
            cudaFree(p);
            dev_bytes::add(-(int64_t)bytes);
        }
    }
    void ensure(size_t n) {
        if (n <= bytes && p) return;
        if (p) {
            cudaFree(p);
            dev_bytes::add(-(int64_t)bytes);
        }
        p = nullptr;
        bytes = 0;
        ck(cudaMalloc(&p, n ? n : 1), "cudaMalloc");
        bytes = n;
        dev_bytes::add((int64_t)bytes);
    }
    template <typename T> T * as() const { return static_cast<T *>(p); }
};

void upload(dev_buf & b, const void * src, size_t bytes) {
    b.ensure(bytes);
    ck(cudaMemcpy(b.p, src, bytes, cudaMemcpyHostToDevice), "upload");
}
void upload_bf16(dev_buf & b, const std::vector<const matrix_rm *> & parts) {
    size_t n = 0;
    for (auto * m : parts) n += (size_t)m->size();
    std::vector<uint16_t> h(n);
    size_t o = 0;
    for (auto * m : parts) {
        const float * s = m->data();
        for (Eigen::Index i = 0; i < m->size(); ++i) h[o++] = f32_to_bf16(s[i]);
    }
    upload(b, h.data(), n * 2);
}
void upload_f32(dev_buf & b, const Eigen::VectorXf & v) { upload(b, v.data(), (size_t)v.size() * 4); }

class cuda_llama final : public llama_gpu {
public:
    explicit cuda_llama(const llama_model & m) : c_(m.cfg) {
        const llama_config & c = c_;
        if (c.n_layer <= 0 || c.n_embd <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.head_dim <= 0 || c.n_ff <= 0 ||
            c.n_vocab <= 0 || c.n_head % c.n_head_kv || c.head_dim % 2 || (int)m.layers.size() != c.n_layer)
            throw std::invalid_argument("llama_gpu: model shape not supported");
        // Features of the architecture table this pass does not compute yet are
        // refused by name; load-time ones (fused tensors, row order, Gemma's
        // norm offset) and the RoPE scalings (the shared tables) it follows.
        const uint32_t gpu_has = LLM_FEAT_NORM_PLUS_ONE | LLM_FEAT_FUSED_QKV | LLM_FEAT_FUSED_GATE_UP |
                                 LLM_FEAT_GGUF_QK_PERMUTED | LLM_FEAT_QUERY_SCALE | LLM_FEAT_QKV_BIAS |
                                 LLM_FEAT_QK_NORM;
        for (uint32_t bit = 1; bit != 0; bit <<= 1)
            if ((c.features & bit) && !(gpu_has & bit))
                throw std::invalid_argument("llama_gpu: " + c.arch + ": " + llm_feature_name((llm_feature)bit) +
                                            " is not supported on the GPU yet (use --device cpu)");
        H_ = c.n_head; Hk_ = c.n_head_kv; D_ = c.head_dim; E_ = c.n_embd; F_ = c.n_ff; V_ = c.n_vocab;
        C_ = (H_ + 2 * Hk_) * D_;
        flash_ = (D_ == 64 || D_ == 128);
        int dev = 0;
        cudaDeviceProp p{};
        ck(cudaGetDevice(&dev), "cudaGetDevice");
        ck(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
        name_ = p.name;
        ck(cudaStreamCreateWithFlags(&st_, cudaStreamNonBlocking), "cudaStreamCreate");
        ckb(cublasCreate(&cb_), "cublasCreate");
        ckb(cublasSetStream(cb_, st_), "cublasSetStream");

        upload(tok_embd_, m.tok_embd.data(), (size_t)m.tok_embd.size() * 4);
        upload_bf16(out_w_, {&m.output_matrix()});
        upload_f32(out_norm_, m.output_norm);
        layers_.resize(c.n_layer);
        for (int il = 0; il < c.n_layer; ++il) {
            const llama_layer & L = m.layers[il];
            layer_w & w = layers_[il];
            upload_f32(w.attn_norm, L.attn_norm);
            upload_f32(w.ffn_norm, L.ffn_norm);
            upload_bf16(w.wqkv, {&L.wq, &L.wk, &L.wv});
            if (L.bq.size()) {   // q|k|v biases in the fused row order, fp32
                Eigen::VectorXf b(L.bq.size() + L.bk.size() + L.bv.size());
                b << L.bq, L.bk, L.bv;
                upload_f32(w.bqkv, b);
            }
            if (L.q_norm.size()) {
                upload_f32(w.q_norm, L.q_norm);
                upload_f32(w.k_norm, L.k_norm);
            }
            upload_bf16(w.wo, {&L.wo});
            upload_bf16(w.wgu, {&L.w_gate, &L.w_up});
            upload_bf16(w.wdown, {&L.w_down});
        }
        ev_.resize((size_t)c.n_layer * 4);
        for (auto & e : ev_) ck(cudaEventCreate(&e), "cudaEventCreate");
        counters_.ensure(2 * sizeof(unsigned long long));
        ck(cudaDeviceSynchronize(), "weight upload");
    }

    ~cuda_llama() override {
        for (auto & e : ev_) cudaEventDestroy(e);
        if (cb_) cublasDestroy(cb_);
        if (st_) cudaStreamDestroy(st_);
    }

    std::string device_name() const override { return name_; }
    const llama_gpu_stats & last_stats() const override { return stats_; }
    void set_record_blocks(bool on) override { record_ = on; }
    void set_observer(attention_hook * h) override { observer_ = h; }
    const std::vector<std::vector<recorded_blocks>> & recorded() const override { return rec_; }

    matrix_rm forward(const std::vector<int32_t> & tokens, bool all_logits, const sparse_method * method,
                      const score_fn & score) override {
        const int n = (int)tokens.size();
        if (n == 0) return matrix_rm(0, V_);
        const auto t0 = std::chrono::steady_clock::now();
        run(tokens, method, all_logits, score);
        const int rows = all_logits ? n : 1;
        matrix_rm logits(rows, V_);
        ck(cudaMemcpyAsync(logits.data(), logits_.p, (size_t)rows * V_ * 4, cudaMemcpyDeviceToHost, st_), "copy logits");
        ck(cudaStreamSynchronize(st_), "forward");
        finish_stats(t0);
        return logits;
    }

    llama_gpu_scores score(const std::vector<int32_t> & tokens, const sparse_method * method,
                           const score_fn & score) override {
        const int n = (int)tokens.size();
        llama_gpu_scores r;
        if (n < 2) return r;
        const auto t0 = std::chrono::steady_clock::now();
        run(tokens, method, true, score);
        nll_.ensure((size_t)n * 8);
        argmax_.ensure((size_t)n * 4);
        ckk(cuda::lg_vocab_nll(logits_.as<float>(), ids_.as<int32_t>() + 1, nll_.as<double>(), argmax_.as<int32_t>(), n - 1,
                               V_, st_),
            "vocab_nll");
        r.nll.resize(n - 1);
        r.argmax.resize(n - 1);
        ck(cudaMemcpyAsync(r.nll.data(), nll_.p, (size_t)(n - 1) * 8, cudaMemcpyDeviceToHost, st_), "copy nll");
        ck(cudaMemcpyAsync(r.argmax.data(), argmax_.p, (size_t)(n - 1) * 4, cudaMemcpyDeviceToHost, st_), "copy argmax");
        ck(cudaStreamSynchronize(st_), "score");
        finish_stats(t0);
        return r;
    }

private:
    struct layer_w {
        dev_buf attn_norm, ffn_norm, wqkv, wo, wgu, wdown;
        dev_buf bqkv, q_norm, k_norm;   // empty (p == nullptr) unless the family has them
    };
    // host_attend: the method's whole attention on the host (its attention
    // adds more than exact attention on the selection, e.g. spa's low-rank
    // term): explicit, timed and reported as selection_path "host_attention".
    enum class sel_mode { dense, gate, host, host_attend };

    // y[n, out] (fp32, row-major) = beta * y + x[n, in] (bf16) * W[out, in]^T (bf16).
    // Column-major view: y^T (out x n) = op_T(W as in x out) * x^T (in x n).
    void linear(const void * x, int n, int in, const dev_buf & W, int out, float * y, float beta) {
        const float alpha = 1.0f;
        ckb(cublasGemmEx(cb_, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, W.p, CUDA_R_16BF, in, x, CUDA_R_16BF, in, &beta,
                         y, CUDA_R_32F, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
    }

    void ensure_rope(int n) {
        // Frequencies that depend on the window (dynamic, longrope) need a
        // table for exactly this window, as the CPU pass builds.
        const bool exact = rope_depends_on_length(c_);
        if (exact ? n == rope_n_ : n <= rope_n_) return;
        const int n_pos = exact ? n : std::max(n, std::min(std::max(c_.n_ctx_train, 1), 1 << 17));
        const rope_table rt(c_, n_pos);  // core/model/rope.h: the CPU pass uses the same table
        upload(rope_cos_, rt.cos_.data(), rt.cos_.size() * 4);
        upload(rope_sin_, rt.sin_.data(), rt.sin_.size() * 4);
        rope_n_ = n_pos;
    }

    void ensure_buffers(int n) {
        const size_t N = (size_t)n;
        ids_.ensure(N * 4);
        x_.ensure(N * E_ * 4);
        xn_.ensure(N * std::max(E_, F_) * 2);
        qkv_.ensure(N * C_ * 4);
        q_.ensure(N * H_ * D_ * 2);
        k_.ensure(N * Hk_ * D_ * 2);
        v_.ensure(N * Hk_ * D_ * 2);
        att_.ensure(N * H_ * D_ * 2);
        gu_.ensure(N * 2 * F_ * 4);
        h_.ensure(N * F_ * 2);
        logits_.ensure(N * V_ * 4);
    }

    void finish_stats(std::chrono::steady_clock::time_point t0) {
        stats_.forward_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

    // What the attention does, decided before any work from the method's GPU
    // selector (never its name): dense, a selection on the GPU (block_topk's
    // pooled rule or the learned gate), or select() on the host.
    struct sel_plan {
        sel_mode mode = sel_mode::dense;
        double rho = 1.0;
        int B = 0;
        const gate_params * gate = nullptr;   // set: mode gate runs the learned gate
    };
    // One layer's block lists for the attention (none: dense).
    struct layer_sel {
        const int32_t * kv_num = nullptr;
        const int32_t * kv_idx = nullptr;
        const int32_t * kv_mask = nullptr;    // token masks (tile_list.h), or null
        const uint64_t * tok_mask = nullptr;
        int blk = 0, max_kv = 0;
    };
    // Host selection: time and densities summed over layers, the qkv download,
    // the largest layer's tile arrays and how many layers needed token masks.
    struct host_acc {
        double gate_s = 0.0, attend_s = 0.0, bd = 0.0, td = 0.0;
        std::vector<float> qkv;
        int64_t mask_bytes = 0;
        int masked_layers = 0;
    };

    sel_plan plan_selection(const sparse_method * method) const {
        sel_plan p;
        if (!method) return p;
        if (!method->attends_selection_only()) {
            p.mode = sel_mode::host_attend;
            return p;
        }
        const gpu_selector g = method->gpu_selection();
        const bool block_ok = !flash_ || g.block == 64 || g.block == 128;
        if (g.kind == gpu_selector::dense) return p;
        if (g.kind == gpu_selector::pooled_block_topk && !block_ok) {
            p.mode = sel_mode::host;   // the gate's pooling needs tiles of 64/128: select() on the host
        } else if (g.kind == gpu_selector::pooled_block_topk) {
            p.mode = sel_mode::gate;
            p.rho = g.rho;
            p.B = g.block;
        } else if (g.kind == gpu_selector::learned_gate && g.gate && g.gate->n_head == H_ && g.gate->head_dim == D_ &&
                   block_ok) {
            // The gate's projections and selection on the GPU.
            p.mode = sel_mode::gate;
            p.rho = g.rho;
            p.B = g.block;
            p.gate = g.gate;
        } else {
            p.mode = sel_mode::host;
        }
        return p;
    }

    // Buffers and the gate's weights for a GPU selection.
    void prepare_gate(const sel_plan & p, int n) {
        const int nb = (n + p.B - 1) / p.B;
        kvnum_.ensure((size_t)H_ * nb * 4);
        kvidx_.ensure((size_t)H_ * nb * nb * 4);
        gatews_.ensure(p.gate ? cuda::lg_learned_gate_workspace(n, H_, Hk_, D_, p.gate->d_g, p.B)
                              : cuda::lg_block_topk_workspace(n, H_, Hk_, D_, p.B));
        if (p.gate) {   // [layers][n_head][D][d_g] for W_q, then W_k
            const gate_params & gp = *p.gate;
            gatew_.ensure((gp.wq.size() + gp.wk.size()) * sizeof(float));
            ck(cudaMemcpyAsync(gatew_.p, gp.wq.data(), gp.wq.size() * sizeof(float), cudaMemcpyHostToDevice, st_),
               "copy gate W_q");
            ck(cudaMemcpyAsync(gatew_.as<float>() + gp.wq.size(), gp.wk.data(), gp.wk.size() * sizeof(float),
                               cudaMemcpyHostToDevice, st_),
               "copy gate W_k");
        }
        ck(cudaMemsetAsync(counters_.p, 0, 2 * sizeof(unsigned long long), st_), "memset counters");
    }

    // The forward pass up to the logits in logits_ (rows n, or 1 = the last).
    void run(const std::vector<int32_t> & tokens, const sparse_method * method, bool all_rows, const score_fn & score) {
        const int n = (int)tokens.size();
        if (score.kind != score_kind::softmax && !flash_)
            throw std::invalid_argument("llama_gpu: the " + score.spec() +
                                        " score runs in the flash kernels only (head dim 64 or 128, this model has " +
                                        std::to_string(D_) + ")");
        if (score.kind == score_kind::hyperbolic && !(score.c > 0.f))
            throw std::invalid_argument("llama_gpu: hyperbolic score: c must be > 0");
        score_ = score;
        for (int32_t id : tokens)
            if (id < 0 || id >= V_)
                throw std::invalid_argument("llama_gpu: token id " + std::to_string(id) + " outside [0, " +
                                            std::to_string(V_) + ")");
        const sel_plan plan = plan_selection(method);
        stats_ = llama_gpu_stats{};
        stats_.attention_path = flash_ ? "flash" : "reference";
        stats_.selection_path = plan.mode == sel_mode::dense         ? "dense"
                                : plan.mode == sel_mode::gate        ? (plan.gate ? "gpu_learned_gate" : "gpu_gate")
                                : plan.mode == sel_mode::host_attend ? "host_attention"
                                                                     : "host";
        if (record_) rec_.assign(c_.n_layer, {});
        else rec_.clear();
        dev_bytes::peak() = dev_bytes::live();

        ensure_buffers(n);
        ensure_rope(n);
        if (plan.mode == sel_mode::gate) prepare_gate(plan, n);
        ck(cudaMemcpyAsync(ids_.p, tokens.data(), (size_t)n * 4, cudaMemcpyHostToDevice, st_), "copy ids");
        ckk(cuda::lg_embed(tok_embd_.as<float>(), ids_.as<int32_t>(), x_.as<float>(), n, E_, st_), "embed");

        const float scale = c_.score_scale();
        host_acc host;
        for (int il = 0; il < c_.n_layer; ++il) {
            const layer_w & w = layers_[il];
            cudaEvent_t * ev = &ev_[(size_t)il * 4];
            ckk(cuda::lg_rmsnorm(x_.as<float>(), w.attn_norm.as<float>(), xn_.as<uint16_t>(), n, E_, c_.rms_eps, st_),
                "rmsnorm");
            linear(xn_.p, n, E_, w.wqkv, C_, qkv_.as<float>(), 0.0f);
            ckk(cuda::lg_qkv_bias_norm(qkv_.as<float>(), w.bqkv.as<float>(), w.q_norm.as<float>(), w.k_norm.as<float>(),
                                       n, H_, Hk_, D_, c_.rms_eps, st_),
                "qkv bias/norm");
            ckk(cuda::lg_rope(qkv_.as<float>(), rope_cos_.as<float>(), rope_sin_.as<float>(), q_.as<uint16_t>(),
                              k_.as<uint16_t>(), v_.as<uint16_t>(), n, H_, Hk_, D_, st_),
                "rope");
            if (observer_) observe_layer(il, n, scale);
            ck(cudaEventRecord(ev[0], st_), "event");
            const layer_sel sel = select_layer(plan, method, il, n, scale, host);
            ck(cudaEventRecord(ev[1], st_), "event");
            if (plan.mode == sel_mode::host_attend) host_attend(*method, il, n, scale, host);
            else attend_layer(sel, n, scale);
            ck(cudaEventRecord(ev[2], st_), "event");
            linear(att_.p, n, H_ * D_, w.wo, E_, x_.as<float>(), 1.0f);
            feed_forward(w, n);
        }
        const int rows = all_rows ? n : 1;
        const float * xlast = x_.as<float>() + (size_t)(n - rows) * E_;
        ckk(cuda::lg_rmsnorm(xlast, out_norm_.as<float>(), xn_.as<uint16_t>(), rows, E_, c_.rms_eps, st_), "rmsnorm");
        linear(xn_.p, rows, E_, out_w_, V_, logits_.as<float>(), 0.0f);
        finish_layer_stats(plan, n, host);
    }

    // Selection of one layer (after the events that time it).
    layer_sel select_layer(const sel_plan & plan, const sparse_method * method, int il, int n, float scale, host_acc & host) {
        layer_sel r;
        if (plan.mode == sel_mode::gate) {
            // learned_gate heads of layers the gate file lacks fall back to
            // block_topk at the same rho, as on the CPU
            const int B = plan.B, nb = (n + B - 1) / B;
            const int li = plan.gate ? plan.gate->layer_index(il) : -1;
            if (li >= 0) {
                const gate_params & gp = *plan.gate;
                const float * wq = gatew_.as<float>() + (size_t)li * H_ * D_ * gp.d_g;
                ckk(cuda::lg_learned_gate(qkv_.as<float>(), n, H_, Hk_, D_, wq, wq + gp.wq.size(), gp.d_g, B, plan.rho,
                                          kvnum_.as<int32_t>(), kvidx_.as<int32_t>(), counters_.as<unsigned long long>(),
                                          gatews_.p, st_),
                    "learned gate");
            } else {
                ckk(cuda::lg_block_topk(qkv_.as<float>(), n, H_, Hk_, D_, scale, B, plan.rho, kvnum_.as<int32_t>(),
                                        kvidx_.as<int32_t>(), counters_.as<unsigned long long>(), gatews_.p, st_),
                    "block_topk gate");
            }
            r.kv_num = kvnum_.as<int32_t>();
            r.kv_idx = kvidx_.as<int32_t>();
            r.blk = B;
            r.max_kv = nb;
            if (record_) record_gate(il, n, B, nb);
        } else if (plan.mode == sel_mode::host) {
            const auto h0 = std::chrono::steady_clock::now();
            host_select(*method, il, n, scale, host, r);
            host.gate_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - h0).count();
        }
        return r;
    }

    // Attention of one layer into att_: the flash kernels (block-sparse when
    // the layer has block lists), else the fp32 reference kernel.
    void attend_layer(const layer_sel & sel, int n, float scale) {
        if (!flash_) {
            ckk(cuda::lg_attention_ref(qkv_.as<float>(), att_.as<uint16_t>(), n, H_, Hk_, D_, scale, sel.kv_num, sel.kv_idx,
                                       sel.blk, sel.max_kv, sel.kv_mask,
                                       reinterpret_cast<const unsigned long long *>(sel.tok_mask), st_),
                "reference attention");
            return;
        }
        attnlab_attn_args a;
        std::memset(&a, 0, sizeof a);
        a.dtype = ATTNLAB_BF16;
        a.q = q_.p; a.k = k_.p; a.v = v_.p; a.o = att_.p;
        a.B = 1; a.H = H_; a.Hkv = Hk_; a.L = n; a.D = D_;
        a.causal = 1;
        a.scale = scale;
        const long long qs[3] = {(long long)n * H_ * D_, D_, (long long)H_ * D_};
        const long long ks[3] = {(long long)n * Hk_ * D_, D_, (long long)Hk_ * D_};
        for (int i = 0; i < 3; ++i) {
            a.q_strides[i] = a.o_strides[i] = qs[i];
            a.k_strides[i] = a.v_strides[i] = ks[i];
        }
        if (sel.kv_num) {
            a.kv_num_blocks = sel.kv_num; a.kv_indices = sel.kv_idx; a.block_size = sel.blk;
            a.mask_B = 1; a.mask_H = H_; a.max_kv_blocks = sel.max_kv;
            a.kv_mask_index = sel.kv_mask;
            a.token_masks = reinterpret_cast<const unsigned long long *>(sel.tok_mask);
        }
        a.stream = st_;
        if (score_.kind == score_kind::relu) {
            a.score = ATTNLAB_SCORE_RELU;
            a.relu_bias = score_.relu_bias;
            a.relu_row_norm = score_.relu_row_norm ? 1 : 0;
        } else if (score_.kind == score_kind::hyperbolic) {
            a.score = ATTNLAB_SCORE_HYPERBOLIC;
            a.hyp_c = score_.c;
            a.hyp_beta = score_.beta;
            a.hyp_gamma = score_.gamma;
        }
        ck_attn(attnlab_attention_fwd(&a));
    }

    // SwiGLU feed-forward block, added into x_.
    void feed_forward(const layer_w & w, int n) {
        ckk(cuda::lg_rmsnorm(x_.as<float>(), w.ffn_norm.as<float>(), xn_.as<uint16_t>(), n, E_, c_.rms_eps, st_), "rmsnorm");
        linear(xn_.p, n, E_, w.wgu, 2 * F_, gu_.as<float>(), 0.0f);
        ckk(cuda::lg_swiglu(gu_.as<float>(), h_.as<uint16_t>(), n, F_, st_), "swiglu");
        linear(h_.p, n, F_, w.wdown, E_, x_.as<float>(), 1.0f);
    }

    // Per-layer device times and densities (waits for the layers, not the logits copy).
    void finish_layer_stats(const sel_plan & plan, int n, const host_acc & host) {
        ck(cudaEventSynchronize(ev_[(size_t)(c_.n_layer - 1) * 4 + 2]), "layers");
        for (int il = 0; il < c_.n_layer; ++il) {
            float g = 0.f, a = 0.f;
            ck(cudaEventElapsedTime(&g, ev_[(size_t)il * 4], ev_[(size_t)il * 4 + 1]), "event time");
            ck(cudaEventElapsedTime(&a, ev_[(size_t)il * 4 + 1], ev_[(size_t)il * 4 + 2]), "event time");
            stats_.gate_s += g * 1e-3;
            stats_.attention_s += a * 1e-3;
        }
        if (plan.mode == sel_mode::gate) {
            unsigned long long cnt[2];
            ck(cudaMemcpy(cnt, counters_.p, sizeof cnt, cudaMemcpyDeviceToHost), "copy counters");
            const double lh = (double)c_.n_layer * H_;
            stats_.block_density = (double)cnt[0] / (lh * (double)causal_blocks(n, plan.B, true));
            stats_.token_density = (double)cnt[1] / (lh * (double)causal_pairs(n, true));
        } else if (plan.mode == sel_mode::host) {
            stats_.gate_s = host.gate_s;
            stats_.block_density = host.bd / c_.n_layer;
            stats_.token_density = host.td / c_.n_layer;
            if (host.masked_layers > 0) stats_.selection_path = "host+token_masks";
        } else if (plan.mode == sel_mode::host_attend) {
            // host wall times: the events bracket the host's work, not the GPU's
            stats_.gate_s = host.gate_s;
            stats_.attention_s = host.attend_s;
            stats_.block_density = host.bd / c_.n_layer;
            stats_.token_density = host.td / c_.n_layer;
        }
        stats_.device_bytes_peak = dev_bytes::peak();
        stats_.selection_bytes = plan.mode == sel_mode::gate
                                     ? (int64_t)(kvnum_.bytes + kvidx_.bytes + gatews_.bytes + gatew_.bytes)
                                     : host.mask_bytes;
    }

    // The observer's view of layer il: post-RoPE Q/K/V split out of qkv_.
    // Post-RoPE Q/K/V of the current layer to the host (obs_q_/obs_k_/obs_v_,
    // layouts of attention_layer_io), out of the interleaved qkv_.
    void split_qkv(int n) {
        obs_qkv_.resize((size_t)n * C_);
        ck(cudaMemcpyAsync(obs_qkv_.data(), qkv_.p, obs_qkv_.size() * 4, cudaMemcpyDeviceToHost, st_), "copy qkv");
        ck(cudaStreamSynchronize(st_), "qkv");
        const size_t q = (size_t)H_ * D_, kv = (size_t)Hk_ * D_;
        obs_q_.resize((size_t)n * q);
        obs_k_.resize((size_t)n * kv);
        obs_v_.resize((size_t)n * kv);
        for (int t = 0; t < n; ++t) {
            const float * row = obs_qkv_.data() + (size_t)t * C_;
            std::copy(row, row + q, obs_q_.data() + (size_t)t * q);
            std::copy(row + q, row + q + kv, obs_k_.data() + (size_t)t * kv);
            std::copy(row + q + kv, row + q + 2 * kv, obs_v_.data() + (size_t)t * kv);
        }
    }

    // The host view of layer il after split_qkv (out null).
    attention_layer_io host_layer_io(int il, int n, float scale) const {
        attention_layer_io io;
        io.layer = il;
        io.n_tokens = n;
        io.n_head = H_;
        io.n_head_kv = Hk_;
        io.head_dim = D_;
        io.scale = scale;
        io.causal = true;
        io.q = obs_q_.data();
        io.k = obs_k_.data();
        io.v = obs_v_.data();
        return io;
    }

    // The observer's view of layer il.
    void observe_layer(int il, int n, float scale) {
        split_qkv(n);
        observer_->on_qkv(host_layer_io(il, n, scale));
    }

    void record_gate(int il, int n, int B, int nb) {
        std::vector<int32_t> num((size_t)H_ * nb), idx((size_t)H_ * nb * nb);
        ck(cudaMemcpyAsync(num.data(), kvnum_.p, num.size() * 4, cudaMemcpyDeviceToHost, st_), "copy kv_num");
        ck(cudaMemcpyAsync(idx.data(), kvidx_.p, idx.size() * 4, cudaMemcpyDeviceToHost, st_), "copy kv_idx");
        ck(cudaStreamSynchronize(st_), "gate");
        rec_[il].resize(H_);
        for (int h = 0; h < H_; ++h) {
            recorded_blocks & r = rec_[il][h];
            r.block = B;
            r.ptr.assign(1, 0);
            r.cols.clear();
            for (int I = 0; I < nb; ++I) {
                const size_t row = (size_t)h * nb + I;
                for (int e = 0; e < num[row]; ++e) r.cols.push_back(idx[row * nb + e]);
                r.ptr.push_back((int32_t)r.cols.size());
            }
        }
        (void)n;
    }

    // Any block-level method: select() per head on the host from the layer's
    // post-RoPE Q/K (downloaded in fp32), then the block lists go up.
    void host_select(const sparse_method & m, int il, int n, float scale, host_acc & host, layer_sel & sel) {
        std::vector<float> & host_qkv = host.qkv;
        double & bd_sum = host.bd;
        double & td_sum = host.td;
        host_qkv.resize((size_t)n * C_);
        ck(cudaMemcpyAsync(host_qkv.data(), qkv_.p, host_qkv.size() * 4, cudaMemcpyDeviceToHost, st_), "copy qkv");
        ck(cudaStreamSynchronize(st_), "qkv");
        std::vector<selection> sels(H_);
        std::vector<std::string> errs(H_);
#pragma omp parallel for schedule(dynamic, 1)
        for (int h = 0; h < H_; ++h) {
            head_inputs in;
            in.n_tokens = n;
            in.head_dim = D_;
            in.causal = true;
            in.scale = scale;
            in.q = host_qkv.data() + (size_t)h * D_;
            in.q_stride = C_;
            in.k = host_qkv.data() + (size_t)(H_ + h / (H_ / Hk_)) * D_;
            in.k_stride = C_;
            in.layer = il;
            in.head = h;
            try {
                sels[h] = m.select(in);
            } catch (const std::exception & e) {
                errs[h] = e.what();
            }
        }
        for (const auto & e : errs)
            if (!e.empty()) throw std::runtime_error("llama_gpu: " + m.spec() + ": " + e);
        for (const selection & s : sels)
            if (s.n_tokens != n || !s.causal) throw std::invalid_argument("llama_gpu: " + m.spec() + ": selection shape");
        // block lists, with token masks where a selection keeps blocks in
        // part (token-level methods, block sizes other than 64/128)
        const tile_list t = tile_list_build(sels.data(), H_);
        double bd = 0, td = 0;
        for (int h = 0; h < H_; ++h) {
            bd += selection_block_density(sels[h]) / H_;
            td += selection_token_density(sels[h]) / H_;
            if (record_)
                rec_[il].push_back({sels[h].block, sels[h].blk_ptr, sels[h].blk_cols, sels[h].token_level, sels[h].tok_ptr,
                                    sels[h].tok_cols});
        }
        bd_sum += bd;
        td_sum += td;
        host.mask_bytes = std::max<int64_t>(host.mask_bytes, t.bytes());
        if (!t.masks.empty()) ++host.masked_layers;
        // on st_ (non-blocking: a legacy-stream copy would not order with it)
        auto up = [&](dev_buf & b, const void * src, size_t bytes, const char * what) {
            b.ensure(bytes);
            if (bytes) ck(cudaMemcpyAsync(b.p, src, bytes, cudaMemcpyHostToDevice, st_), what);
        };
        up(kvnum_, t.kv_num.data(), t.kv_num.size() * 4, "copy kv_num");
        up(kvidx_, t.kv_idx.data(), t.kv_idx.size() * 4, "copy kv_idx");
        if (!t.mask_index.empty()) {
            up(kvmask_, t.mask_index.data(), t.mask_index.size() * 4, "copy kv_mask_index");
            up(tokmask_, t.masks.data(), t.masks.size() * 8, "copy token masks");
        }
        ck(cudaStreamSynchronize(st_), "upload tile lists");   // t dies here
        sel.kv_num = kvnum_.as<int32_t>();
        sel.kv_idx = kvidx_.as<int32_t>();
        sel.kv_mask = t.mask_index.empty() ? nullptr : kvmask_.as<int32_t>();
        sel.tok_mask = t.mask_index.empty() ? nullptr : tokmask_.as<uint64_t>();
        sel.blk = t.block;
        sel.max_kv = t.max_kv;
    }

    // The whole attention of layer il on the host (sel_mode::host_attend):
    // post-RoPE Q/K/V down, the method's select() and attend() as the CPU
    // forward pass runs them (score function included), the output up as
    // bf16 into att_. Selection and attention are timed apart.
    void host_attend(const sparse_method & m, int il, int n, float scale, host_acc & host) {
        const auto t0 = std::chrono::steady_clock::now();
        split_qkv(n);
        attention_layer_io io = host_layer_io(il, n, scale);
        std::vector<selection> sels(H_);
        std::vector<std::string> errs(H_);
#pragma omp parallel for schedule(dynamic, 1)
        for (int h = 0; h < H_; ++h) {
            try {
                sels[h] = m.select(head_inputs_of(io, h));
            } catch (const std::exception & e) {
                errs[h] = e.what();
            }
        }
        for (const auto & e : errs)
            if (!e.empty()) throw std::runtime_error("llama_gpu: " + m.spec() + ": " + e);
        for (int h = 0; h < H_; ++h) {
            host.bd += selection_block_density(sels[h]) / H_;
            host.td += selection_token_density(sels[h]) / H_;
            if (record_)
                rec_[il].push_back({sels[h].block, sels[h].blk_ptr, sels[h].blk_cols, sels[h].token_level, sels[h].tok_ptr,
                                    sels[h].tok_cols});
        }
        const auto t1 = std::chrono::steady_clock::now();
        host_out_.assign((size_t)n * H_ * D_, 0.0f);
        io.out = host_out_.data();
        m.attend(io, sels.data(), score_);
        host_att_.resize(host_out_.size());
        for (size_t i = 0; i < host_out_.size(); ++i) host_att_[i] = f32_to_bf16(host_out_[i]);
        ck(cudaMemcpyAsync(att_.p, host_att_.data(), host_att_.size() * 2, cudaMemcpyHostToDevice, st_), "copy attention");
        ck(cudaStreamSynchronize(st_), "upload attention");
        const auto t2 = std::chrono::steady_clock::now();
        host.gate_s += std::chrono::duration<double>(t1 - t0).count();
        host.attend_s += std::chrono::duration<double>(t2 - t1).count();
    }

    llama_config c_;
    int H_ = 0, Hk_ = 0, D_ = 0, E_ = 0, F_ = 0, V_ = 0, C_ = 0;
    bool flash_ = true;
    std::string name_;
    cudaStream_t st_ = nullptr;
    cublasHandle_t cb_ = nullptr;
    dev_buf tok_embd_, out_w_, out_norm_, rope_cos_, rope_sin_;
    std::vector<layer_w> layers_;
    int rope_n_ = 0;
    dev_buf ids_, x_, xn_, qkv_, q_, k_, v_, att_, gu_, h_, logits_, nll_, argmax_, kvnum_, kvidx_, kvmask_, tokmask_, gatews_, gatew_,
        counters_;
    std::vector<cudaEvent_t> ev_;
    llama_gpu_stats stats_;
    bool record_ = false;
    std::vector<std::vector<recorded_blocks>> rec_;
    attention_hook * observer_ = nullptr;
    score_fn score_;   // of the call in progress
    std::vector<float> obs_qkv_, obs_q_, obs_k_, obs_v_, host_out_;
    std::vector<uint16_t> host_att_;
};

} // namespace

int cuda_device_count() { return attnlab_cuda_device_count(); }

std::unique_ptr<llama_gpu> cuda_llama_create(const llama_model & m) {
    if (attnlab_cuda_device_count() <= 0) throw std::runtime_error("--device cuda: no CUDA device");
    return std::make_unique<cuda_llama>(m);
}

} // namespace attnlab
