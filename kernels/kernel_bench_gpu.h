#pragma once
// The GPU half of core's kernel timing (core/lab/kernel_bench.h): the same
// random inputs on the CUDA kernels (bf16 in, fp32 accumulation), times from
// CUDA events around each launch (median of reps, after one warm-up run):
// dense flash, the GPU gate (attnlab_block_topk: pooled block scores, top
// ceil(rho * allowed) key blocks per query block, diagonal kept) and the
// block-sparse kernel on the gate's block lists. Used by the app's Kernels
// view and tests/test_cuda_app.cu.
#include <string>
#include <vector>

#include "metrics/kernel_bench.h"

namespace attnlab {

// What the GPU computed, for checks against the CPU: outputs in the inputs'
// [token][head][dim] layout and the gate's blocks as per-head selections.
struct kernel_bench_gpu_outputs {
    std::vector<float> dense_out, sparse_out;
    std::vector<selection> sels;
};

// "" when the GPU kernels can run this shape, else why not (no device, head
// dim other than 64/128, block other than 64/128).
std::string kernel_bench_gpu_unsupported(const kernel_bench_shape & s);

// Throws std::runtime_error without a GPU or on a CUDA error. A shape the
// kernels lack gives has_dense = has_sparse = false and the reason in note.
kernel_bench_result kernel_bench_gpu(const kernel_bench_inputs & in, bool sparse, job_progress * job = nullptr,
                                     kernel_bench_gpu_outputs * outputs = nullptr);

} // namespace attnlab
