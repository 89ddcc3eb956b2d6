#pragma once
// Kernel timing on random Q/K/V, shared by the app's Kernels view and the
// tests: dense flash attention, then a block_topk selection (the gate) and the
// block-sparse kernel, each the median of `reps` runs. kernel_bench_cpu runs
// core's CPU kernels; kernels/kernel_bench_gpu.h fills the same result on the
// GPU (CUDA-event times), so both devices are reported side by side. No CUDA
// here: core stays CUDA-free.
#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/selection.h"
#include "base/job.h"

namespace attnlab {

struct kernel_bench_shape {
    int L = 4096, n_head = 4, head_dim = 64;
    int block = 64;          // block_topk block size B
    double rho = 0.2;        // block_topk density
    int reps = 3;
    uint32_t seed = 1234;
};

// Q, K, V ~ N(0, 1), layout of attention_layer_io: [token][head][dim], H == Hkv.
struct kernel_bench_inputs {
    kernel_bench_shape shape;
    std::vector<float> q, k, v;
    attention_layer_io io(float * out) const;   // causal, scale 1/sqrt(d)
};
kernel_bench_inputs kernel_bench_make_inputs(const kernel_bench_shape & s);

struct kernel_bench_result {
    std::string device;          // "CPU (N threads)" or the GPU's name
    bool has_dense = false, has_sparse = false;
    double dense_s = 0.0;        // median kernel time
    double sparse_s = 0.0;       // block-sparse kernel only
    double gate_s = 0.0;         // selection (CPU select() or the GPU gate), timed separately
    double dense_flops = 0.0;    // 4 d per causal pair (attention_flops x heads)
    double sparse_flops = 0.0;   // 4 d per causal pair inside the kept blocks
    double block_density = 1.0;  // kept blocks / causal blocks, mean over heads
    double token_density = 1.0;  // causal pairs in kept blocks / causal pairs
    std::string gate;            // what selected the blocks
    std::string note;            // why a part did not run (empty when all ran)
    double dense_tflops() const { return dense_s > 0 ? dense_flops / dense_s * 1e-12 : 0.0; }
    double sparse_tflops() const { return sparse_s > 0 ? sparse_flops / sparse_s * 1e-12 : 0.0; }
};

// Median of a non-empty list of times.
double kernel_bench_median(std::vector<double> ts);
// FLOPs of the block-sparse kernel on these selections: 4 d per causal pair of
// every kept block, summed over heads.
double kernel_bench_sparse_flops(const std::vector<selection> & sels, int head_dim);
// Mean block and token density of per-head selections.
void kernel_bench_densities(const std::vector<selection> & sels, double & block_density, double & token_density);

// CPU: attention_dense_flash, then block_topk:rho=...,B=... select() per head
// (gate_s) and attention_block_sparse. sparse = false skips the second part.
kernel_bench_result kernel_bench_cpu(const kernel_bench_inputs & in, bool sparse, job_progress * job = nullptr);

} // namespace attnlab
