#pragma once
// What a model file holds, read from its header only (no weights loaded):
// a GGUF file, a Hugging Face checkpoint directory (config.json + shards) or an
// AttnLab trace. One reader for `attnlab-cli info` and the app's model facts,
// so the two never disagree on a head count or a parameter total.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/model_files.h"

namespace attnlab {

struct model_info {
    std::string path;
    file_kind kind = file_kind::unknown;  // gguf, hf_checkpoint or trace
    std::string name;                     // general.name, _name_or_path, or the trace's model id
    std::string arch;                     // general.architecture, model_type, or the trace's arch

    // Shapes. Missing keys read as 0; kv_heads defaults to heads and head_dim
    // to embedding / heads, as the loaders do.
    int64_t layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
    int64_t embedding = 0, ffn = 0;       // 0 for a trace (it does not record them)
    int64_t context = 0;                  // the model's training context
    double rope_theta = 0.0;              // as the loader reads it (model/rope_theta.h)

    int64_t file_bytes = 0;               // the file, the sum of the shards, or the trace file
    int64_t n_tensors = 0;
    int64_t parameters = 0;               // elements over all tensors (0 for a trace)
    std::map<std::string, int64_t> tensor_types;  // type name -> tensor count
    std::map<std::string, int64_t> type_bytes;    // type name -> bytes on disk (GGUF only)

    // GGUF only.
    uint32_t gguf_version = 0;
    uint64_t gguf_alignment = 0;
    int64_t metadata_keys = 0;
    // HF checkpoint only.
    int64_t shards = 0;
    // Trace only.
    std::string producer, model_sha256, text_spec, text_sha256;
    std::vector<int> captured_layers;
    int64_t n_tokens = 0;

    bool valid() const { return layers > 0 && heads > 0; }
};

// Throws input_error (path: file: "not a GGUF file, a Hugging Face checkpoint
// directory or an AttnLab trace") for anything else, and the readers' own
// input_error for a damaged file.
model_info model_info_read(const std::string & path);

// One line for people: "GGUF v3", "HF safetensors (2 shard(s))",
// "AttnLab trace (64 tokens, 2 layers captured)".
std::string model_info_format_line(const model_info & f);

} // namespace attnlab
