#pragma once
// The GPU attention backend as core sees it: a plain C++ interface, no CUDA
// types. kernels/ (built only where nvcc is found) implements it and registers
// an instance; core and the app ask gpu_backend_get(), which returns nullptr
// when no backend was built in or no GPU is present, and then stay on the CPU.
//
// Registration: attnlab_cuda_register() (kernels/cuda_register.h) calls
// gpu_backend_register(); a program linking attnlab_kernels calls it once at
// start (the CLI/app under #ifdef ATTNLAB_HAVE_CUDA). Header-only on purpose: core needs no source file
// and no link dependency for it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/lod_level.h"
#include "attention/selection.h"

namespace attnlab {

enum class gpu_dtype { bf16 = 0, fp16 = 1 };

// Device-pointer view of one attention call. Layout by element strides
// [batch, head, token] (head dim contiguous); zeros mean [B, H, L, D].
struct gpu_attention_args {
    gpu_dtype dtype = gpu_dtype::bf16;
    const void * q = nullptr;
    const void * k = nullptr;
    const void * v = nullptr;
    void * o = nullptr;
    int batch = 1, n_head = 0, n_head_kv = 0, n_tokens = 0, head_dim = 0;
    bool causal = true;
    float scale = 0.0f;   // <= 0: 1/sqrt(head_dim)
    int64_t q_strides[3] = {0, 0, 0}, k_strides[3] = {0, 0, 0}, v_strides[3] = {0, 0, 0}, o_strides[3] = {0, 0, 0};
    void * stream = nullptr;   // cudaStream_t
};

// Block list (FlexAttention's kv_num_blocks / kv_indices), device pointers:
// kv_num_blocks [mask_batch][mask_heads][nqb], kv_indices [...][nqb][max_kv_blocks].
// Token masks (tile_list.h): kv_mask_index, shaped as kv_indices, is -1 for a
// block kept whole or the number of its bit mask in token_masks; both null
// for plain block lists.
struct gpu_block_list {
    int block_size = 128;   // 64 or 128, query and key blocks alike
    const int32_t * kv_num_blocks = nullptr;
    const int32_t * kv_indices = nullptr;
    int mask_batch = 1, mask_heads = 1, max_kv_blocks = 0;
    const int32_t * kv_mask_index = nullptr;
    const uint64_t * token_masks = nullptr;
};

// A device copy of host floats (a capture's layer kept on the GPU), freed
// when the last handle goes.
class gpu_floats {
public:
    virtual ~gpu_floats() = default;
    virtual const float * data() const = 0;   // device pointer
    virtual size_t size() const = 0;
};

// One head's attention map (metrics/head_map.h defines it; the CPU computes
// the same). Row t of the head is q + t * q_stride (host, or device with
// on_device, e.g. a gpu_floats of the layer plus the head's offset). Logits
// are (q * scale) . k with q * scale rounded to float first, as the CPU does.
struct gpu_head_map_args {
    const float * q = nullptr;
    const float * k = nullptr;
    int64_t q_stride = 0, k_stride = 0;   // floats from token to token; 0: head_dim
    bool on_device = false;
    int n_tokens = 0, head_dim = 0;
    float scale = 1.0f;
    int finest_factor = 1;                // cells of the finest level: a power of 2, at most 64
    const selection * sel = nullptr;      // host; null: the dense map only
};

// Row statistics and the pyramids (finest first, down to 8 cells a side or
// fewer), as metrics/head_map.h's head_map holds them; sparse/kept/row_recall
// only with a selection. Times: kernels (CUDA events), the host step (the
// selection's arrays copied to the GPU; the rest of the selection work is
// kernels), and the whole call (uploads and downloads).
struct gpu_head_map_out {
    std::vector<float> row_max, row_inv_sum, row_entropy, row_recall;
    std::vector<lod_level> dense, sparse, kept;
    double kernel_s = 0.0, host_s = 0.0, total_s = 0.0;
};

class gpu_attention_backend {
public:
    virtual ~gpu_attention_backend() = default;
    virtual bool available() const = 0;               // a usable GPU is present
    virtual std::string device_name() const = 0;

    // Device pointers. Throw std::runtime_error naming the problem on failure.
    virtual void dense(const gpu_attention_args & a) = 0;
    virtual void block_sparse(const gpu_attention_args & a, const gpu_block_list & blocks) = 0;

    // Host float32 in/out with the layouts of attention_layer_io; computed in
    // bf16 with fp32 accumulation. Any selection runs: block masks of 64 or
    // 128 as block lists, token-level ones (and other block sizes) as tiles
    // with token masks (tile_list.h).
    virtual void dense_host(const attention_layer_io & io) = 0;
    virtual void sparse_host(const attention_layer_io & io, const selection * sels) = 0;

    // Head maps: a device copy to keep (the app keeps its capture's Q and K
    // on the GPU), and one head's map from host or device rows. Throw
    // std::invalid_argument on a bad shape, std::runtime_error on a CUDA failure.
    virtual std::shared_ptr<gpu_floats> upload(const float * host, size_t n) = 0;
    virtual void head_map(const gpu_head_map_args & a, gpu_head_map_out & out) = 0;
};

inline gpu_attention_backend *& gpu_backend_slot() {
    static gpu_attention_backend * backend = nullptr;
    return backend;
}
inline void gpu_backend_register(gpu_attention_backend * b) { gpu_backend_slot() = b; }
// The registered backend if it has a GPU, else nullptr.
inline gpu_attention_backend * gpu_backend_get() {
    gpu_attention_backend * b = gpu_backend_slot();
    return (b && b->available()) ? b : nullptr;
}

} // namespace attnlab
