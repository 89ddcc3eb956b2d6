#pragma once
// Trace files: the post-RoPE Q, K, V of every captured layer of one model on
// one text, so that analysis can run without the model (and on models too
// large for this engine: tools/export_trace.py writes the same format from
// Hugging Face transformers).
//
// Container: safetensors. Tensors "layers.<l>.q" [n_tokens, n_head, head_dim],
// "layers.<l>.k" and "layers.<l>.v" [n_tokens, n_head_kv, head_dim], all in one
// dtype (F32, F16 or BF16). The header's __metadata__ holds one key,
// "attnlab.trace", whose value is a JSON object (see trace_info).
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace attnlab {

class job_progress;

struct trace_info {
    int format_version = 1;
    std::string producer;        // "attnlab-cli capture", "tools/export_trace.py"
    std::string model_id;
    std::string model_sha256;
    std::string text_spec;
    std::string text_sha256;
    std::string arch = "llama";
    int n_layer = 0;             // layers of the model (captured ones are in `layers`)
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    int n_ctx_train = 0;
    double rope_theta = 0.0;
    std::vector<int> layers;     // indices of the captured layers, ascending
    std::vector<int32_t> token_ids;
    std::vector<std::string> token_strings;
    st_dtype dtype = st_dtype::F32;

    int n_tokens() const { return int(token_ids.size()); }
};

struct layer_qkv {
    int layer = 0;
    std::vector<float> q, k, v;  // layouts of attention_layer_io (attention/attention.h)
};

struct qkv_capture {
    trace_info info;
    std::vector<layer_qkv> layers; // same order as info.layers

    const layer_qkv * find_layer(int layer) const;
};

// Atomic write (temporary file, then rename). Converts to info.dtype.
// `cancel`: a cancel request (Ctrl-C) stops it with job_cancelled, leaving
// PATH as it was and no temporary behind.
void trace_write(const std::string & path, const qkv_capture & cap, job_progress * cancel = nullptr);

// Reads and validates a trace: JSON fields, tensor names, shapes, dtypes.
// `only_layers` (if not empty) loads just those layers. Throws input_error.
qkv_capture trace_read(const std::string & path, const std::vector<int> & only_layers = {});
trace_info trace_read_info(const std::string & path);

// True if the file is a safetensors file carrying the "attnlab.trace" key.
bool trace_is_trace(const std::string & path);

} // namespace attnlab
