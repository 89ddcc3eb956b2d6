// The GPU backend of the emulation (tests/emu/cuda_runtime.h): upload and
// head_map through kernels/head_map_run.cpp, everything else refused; and the
// two C entry points tests/test_cuda_head_map.cu calls.
#include <stdexcept>
#include "attention/gpu_backend.h"
#include "head_map_run.h"
namespace {
struct emu_backend final : attnlab::gpu_attention_backend {
    bool available() const override { return true; }
    std::string device_name() const override { return "EMU"; }
    void dense(const attnlab::gpu_attention_args &) override { throw std::runtime_error("emu"); }
    void block_sparse(const attnlab::gpu_attention_args &, const attnlab::gpu_block_list &) override { throw std::runtime_error("emu"); }
    void dense_host(const attnlab::attention_layer_io &) override { throw std::runtime_error("emu"); }
    void sparse_host(const attnlab::attention_layer_io &, const attnlab::selection *) override { throw std::runtime_error("emu"); }
    std::shared_ptr<attnlab::gpu_floats> upload(const float * h, size_t n) override { return attnlab::cuda::hm_upload(h, n); }
    void head_map(const attnlab::gpu_head_map_args & a, attnlab::gpu_head_map_out & o) override { attnlab::cuda::hm_run(a, o); }
};
}
extern "C" void attnlab_cuda_register(void) { static emu_backend b; attnlab::gpu_backend_register(&b); }
extern "C" int attnlab_cuda_device_count(void) { return 1; }
