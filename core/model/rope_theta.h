#pragma once
// The RoPE base (theta) a model runs with, read one way for the loader and
// for the model facts (`info`, the app), so the two cannot disagree.
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace attnlab {

class gguf_file;

// HF config.json: top-level rope_theta (transformers < 5), overridden by
// rope_parameters.rope_theta (transformers 5) and rope_scaling.rope_theta;
// 10000 when absent. input_error(cfg_file, key) for a value that is not a
// number or a rope_parameters/rope_scaling that is not an object.
double rope_theta_hf(const nlohmann::json & cfg, const std::string & cfg_file);

// GGUF: ARCH.rope.freq_base, 10000 when absent (llama.cpp's default).
double rope_theta_gguf(const gguf_file & f, const std::string & arch);

} // namespace attnlab
