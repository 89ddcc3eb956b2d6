#pragma once
// Rotary position embedding tables: the one place rope frequencies are
// computed, for the CPU forward pass (llama_forward.cpp) and the GPU one
// (kernels/llama_gpu_cuda.cpp), which must agree bit for bit. A rope-scaling
// scheme (llama3, YaRN, ...) changes rope_inv_freq and both paths follow.
#include <vector>

#include "model/llama.h"

namespace attnlab {

// inv_freq[i] = theta^(-2i/head_dim), i < head_dim/2, in double.
std::vector<double> rope_inv_freq(const llama_config & c);

// cos/sin of pos * inv_freq[i] for pos < n_pos, row-major [n_pos, head_dim/2].
// Angles in double, then rounded to float: at long positions a float angle
// loses precision.
struct rope_table {
    int half = 0;
    std::vector<float> cos_, sin_;

    rope_table(const llama_config & c, int n_pos);
};

} // namespace attnlab
