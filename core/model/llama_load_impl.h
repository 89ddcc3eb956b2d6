#pragma once
// Internal to the loaders (llama_load*.cpp): what GGUF and Hugging Face
// loading share once the architecture table has named the tensors.
#include <cstdint>
#include <string>
#include <vector>

#include "model/llama.h"

namespace attnlab {

class job_progress;

std::string shape_str(const std::vector<int64_t> & s);

// Config sanity shared by both sources; `file` and the field names are what
// the user sees.
struct config_fields {
    const char * layer, * embd, * head, * head_kv, * ff, * vocab, * head_dim;
};
void check_config(const llama_config & c, const std::string & file, const config_fields & f);

// The weights of n_layer layers must fit in the file's bytes at min_bits per
// weight at the least, before any layer is allocated (checked products).
void check_budget(const llama_config & c, const std::string & file, const config_fields & f, uint64_t weight_bytes,
                  int64_t min_bits);

// The sliding layers: `layer_types` when the file lists them, else the
// family's pattern. Sets c.swa_layers (n_layer entries).
void set_swa_layers(llama_config & c, int pattern, const std::vector<std::string> & layer_types,
                    const std::string & file, const char * field);

// A file's tensors by the table's names, in PyTorch layout.
class tensor_source {
public:
    virtual ~tensor_source() = default;
    // Full name of tensor t of layer il, with ".weight" or ".bias"; "" when the
    // family has no such tensor in this format.
    virtual std::string name(llm_tensor t, int il, bool bias = false) const = 0;
    virtual bool has(const std::string & name) const = 0;
    virtual matrix_rm matrix(const std::string & name, int rows, int cols) const = 0;
    virtual Eigen::VectorXf vector(const std::string & name, int n) const = 0;
    // Added to every norm weight (1 for Gemma's HF "x * (1 + w)" norms).
    float norm_offset = 0.0f;
    // GGUF of a family whose converter interleaves q/k rows (llama).
    bool qk_permuted = false;
    // For errors about the file as a whole.
    std::string file;
};

// Loads the embeddings, output and every layer the config's features call
// for (fused tensors split, permutations undone, norm offsets added).
void load_weights(llama_model & m, const tensor_source & src, job_progress * progress);

llama_model load_gguf(const std::string & path, job_progress * progress);
llama_model load_hf(const std::string & dir, job_progress * progress);

} // namespace attnlab
