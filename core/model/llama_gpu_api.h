#pragma once
// The Llama forward pass on a GPU, as core sees it: a plain C++ interface, no
// CUDA types. kernels/ (built only where nvcc is found) implements it
// (kernels/llama_gpu_cuda.cpp: weights uploaded once in bf16, cuBLAS linears with
// fp32 accumulation, fp32 residual stream and norms, the project's flash
// kernels for attention) and registers a factory; without it, or without a
// GPU, llama_gpu::create() throws a clear std::runtime_error.
//
// Registration, as for gpu_backend.h: a program linking attnlab_kernels calls
// attnlab_cuda_register() (kernels/cuda_register.h) once at start, under
// #ifdef ATTNLAB_HAVE_CUDA. Header-only: core needs no source file and no link
// dependency for it.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "attention/score.h"
#include "model/llama.h"

namespace attnlab {

class sparse_method;

// Per-forward measurements (device time from CUDA events, summed over layers).
struct llama_gpu_stats {
    double forward_s = 0.0;       // wall time of the whole call, host sync included
    double attention_s = 0.0;     // attention kernels
    double gate_s = 0.0;          // selection: GPU gate, or host select() + upload
    double block_density = 1.0;   // kept blocks / causal blocks (mean over layers and heads)
    double token_density = 1.0;   // causal pairs in kept blocks / causal pairs
    std::string attention_path;   // "flash", "reference" (head dims the flash kernels lack)
    std::string selection_path;   // "dense", "gpu_gate" (block_topk), "gpu_learned_gate", "host" (select()
                                  // on the host: block lists), "host+token_masks" (some layer needed masks)
                                  // or "host_attention" (select() and attend() on the host: spa's
                                  // low-rank term; attention_s is then host wall time)
    // Device memory (bytes, measured from this object's allocations): the
    // most held at once during the call (weights, activations, selection
    // arrays, workspaces) and the selection's share (block lists, token
    // masks, gate workspace) of one layer, the largest. The flash kernels
    // never hold an L x L matrix, dense or sparse.
    int64_t device_bytes_peak = 0;
    int64_t selection_bytes = 0;
};

// Next-token scores of one window, computed on the GPU (log-softmax over the
// vocabulary: fp32 logits, max then a double-accumulated sum): for t < n-1,
// nll[t] = -log p(tokens[t+1] | tokens[..t]) and argmax[t] of row t's logits.
struct llama_gpu_scores {
    std::vector<double> nll;
    std::vector<int32_t> argmax;
};

class llama_gpu {
public:
    virtual ~llama_gpu() = default;

    // Uploads the model's weights. Throws std::runtime_error: "built without
    // CUDA" (no factory registered) or "no CUDA device" (none present).
    static std::unique_ptr<llama_gpu> create(const llama_model & m);

    virtual std::string device_name() const = 0;

    // Tokens [0, n) from position 0, like llama_forward. The method's
    // gpu_selection() (methods/method.h) decides the path: dense (or no
    // method): dense causal flash attention; pooled_block_topk or
    // learned_gate with B in {64, 128}: the GPU gate (the CPU method's rule,
    // the diagonal and block 0 forced) then the block-sparse flash kernel;
    // none (every other method, and those two at other block sizes): its
    // select() per head on the host from downloaded post-RoPE Q/K, timed as
    // selection and reported as selection_path "host", then the flash kernel
    // on block lists, with token masks for blocks kept in part
    // (attention/tile_list.h). A method whose attention adds more than exact
    // attention on its selection (attends_selection_only() false: spa's
    // low-rank term) runs select() and attend() on the host, uploads the
    // output and reports selection_path "host_attention", both steps timed.
    // Every method runs; none falls back silently.
    // Logits (fp32, row-major [n (or 1), n_vocab]) come back to the host.
    // score: the attention's score function (attention/score.h) in every
    // layer, softmax by default; relu and hyperbolic need head dim 64/128.
    virtual matrix_rm forward(const std::vector<int32_t> & tokens, bool all_logits = true,
                              const sparse_method * method = nullptr, const score_fn & score = score_fn()) = 0;

    // The same forward pass with the vocabulary scores reduced on the GPU:
    // only n-1 NLLs and argmaxes cross the bus (for perplexity).
    virtual llama_gpu_scores score(const std::vector<int32_t> & tokens, const sparse_method * method = nullptr,
                                   const score_fn & score = score_fn()) = 0;

    // Of the last forward()/score() call.
    virtual const llama_gpu_stats & last_stats() const = 0;

    // Observer of every layer's post-RoPE Q/K/V (fp32 host copies, layouts of
    // attention_layer_io; out is null): on_qkv() is called per layer, before
    // that layer's attention, as llama_forward calls a hook's. For captures
    // (data/capture.h through a hook) and cancellation (a hook may throw).
    // attend() is never called: the method runs on the GPU. nullptr: none.
    virtual void set_observer(attention_hook * h) = 0;

    // Debug/test hook: when on, the next calls keep each layer's block lists
    // (per head: blk_ptr/blk_cols as in selection) so that a test can replay
    // exactly those blocks on the CPU. recorded()[layer][head] = {ptr, cols}.
    struct recorded_blocks {
        int block = 0;
        std::vector<int32_t> ptr, cols;
        bool token_level = false;   // then tok_ptr/tok_cols hold the exact mask (host selections)
        std::vector<int64_t> tok_ptr;
        std::vector<int32_t> tok_cols;
    };
    virtual void set_record_blocks(bool on) = 0;
    virtual const std::vector<std::vector<recorded_blocks>> & recorded() const = 0;

    // Factory registration (kernels/ sets it when linked).
    using factory_fn = std::unique_ptr<llama_gpu> (*)(const llama_model &);
    using device_count_fn = int (*)();
    static factory_fn & factory_slot() {
        static factory_fn f = nullptr;
        return f;
    }
    static device_count_fn & device_count_slot() {
        static device_count_fn f = nullptr;
        return f;
    }
    // True when a CUDA build registered itself and a GPU is present.
    static bool available() {
        return factory_slot() && device_count_slot() && device_count_slot()() > 0;
    }
    // "" when available(), else why not ("built without CUDA" / "no CUDA device").
    static std::string unavailable_reason() {
        if (!factory_slot() || !device_count_slot()) return "built without CUDA";
        if (device_count_slot()() <= 0) return "no CUDA device";
        return "";
    }
};

inline void llama_gpu_register(llama_gpu::factory_fn f, llama_gpu::device_count_fn n) {
    llama_gpu::factory_slot() = f;
    llama_gpu::device_count_slot() = n;
}

inline std::unique_ptr<llama_gpu> llama_gpu::create(const llama_model & m) {
    const std::string why = unavailable_reason();
    if (!why.empty()) throw std::runtime_error("--device cuda: " + why);
    return factory_slot()(m);
}

} // namespace attnlab
