#pragma once
// Rotary position embedding tables: the one place rope frequencies are
// computed, with every scaling scheme (linear, dynamic NTK, YaRN, llama3,
// longrope), for the CPU forward pass (llama_forward.cpp) and the GPU one
// (kernels/llama_gpu_cuda.cpp), which must agree bit for bit.
#include <vector>

#include "model/llama.h"

namespace attnlab {

// inv_freq[i], i < head_dim/2, in double, for a window of n_seq tokens
// (dynamic NTK and longrope change with it, as in transformers). `local`:
// a sliding layer of a family with its own local base (Gemma 3), unscaled.
std::vector<double> rope_inv_freq(const llama_config & c, int n_seq, bool local = false);

// The factor cos and sin are multiplied by (YaRN's and longrope's attention
// scaling), 1 otherwise.
double rope_attn_factor(const llama_config & c, bool local = false);

// True when the frequencies depend on the window length (dynamic, longrope):
// a table must then be built for exactly the window it serves.
bool rope_depends_on_length(const llama_config & c);

// cos/sin of pos * inv_freq[i] (times the attention factor) for pos < n_pos,
// row-major [n_pos, head_dim/2]. Angles in double, then rounded to float: at
// long positions a float angle loses precision.
struct rope_table {
    int half = 0;
    std::vector<float> cos_, sin_;

    rope_table(const llama_config & c, int n_pos, bool local = false);
};

} // namespace attnlab
