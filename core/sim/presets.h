#pragma once
// Model and hardware presets for the cost simulator: JSON data files under
// assets/presets/{models,hardware}/, every number carrying its source.
//
// Model file:    {"kind": "model", "name": ..., "n_layer": {"value": 32, "source": "..."},
//                 hidden, n_head, n_head_kv, head_dim, ffn, vocab, context (same form),
//                 optional tied_embeddings / qkv_bias {"value": bool, "source"}, sliding_window}
// Hardware file: {"kind": "hardware", "name": ..., "precision": "bf16" | "f32",
//                 "dense_tflops" | "mem_bw" (GB/s) | "mem" (GB): {"value", "source"},
//                 optional "sparse_2to4_tflops" (kept apart, never used), "device_match": [..],
//                 optional "measured": {"date", ...}}
// The dense tensor peak is the only compute peak the simulator uses: the 2:4
// structured-sparsity figure of the datasheets is read into its own field so
// the two can never be mixed up.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace attnlab {

struct model_preset {
    std::string name, file, repo, source, note;
    int n_layer = 0;
    int hidden = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    int ffn = 0;
    int vocab = 0;
    int context = 0;
    int sliding_window = 0;        // 0: none
    bool tied_embeddings = false;
    bool qkv_bias = false;
    std::map<std::string, std::string> sources; // field -> where the number comes from

    int64_t q_dim() const { return int64_t(n_head) * head_dim; }
    int64_t kv_dim() const { return int64_t(n_head_kv) * head_dim; }
    // Weights that take part in a matmul in one layer (Q, K, V, O, gate, up, down).
    int64_t layer_matmul_params() const;
    // All weights of one layer (adds norms and biases).
    int64_t layer_params() const;
    // Everything: layers, embedding, final norm, lm_head unless tied.
    int64_t total_params() const;
};

struct hw_preset {
    std::string name, file, precision, note;
    double dense_tflops = 0.0;     // dense tensor-core peak in `precision` (never the 2:4 figure)
    double sparse_2to4_tflops = 0.0; // informational only
    double mem_bw_gbs = 0.0;
    double mem_gb = 0.0;
    bool measured = false;
    std::string measured_date;
    std::vector<std::string> device_match; // substrings of device names, for calibration
    std::map<std::string, std::string> sources;

    double ridge_flop_per_byte() const { return dense_tflops * 1e12 / (mem_bw_gbs * 1e9); }
    int precision_bytes() const { return precision == "f32" ? 4 : 2; }
};

// The presets folder: $ATTNLAB_PRESETS if set, else <source dir>/assets/presets.
std::string preset_dir();

// Parse from text (`file` names the source in errors). Throw input_error.
model_preset model_preset_parse(const std::string & text, const std::string & file);
hw_preset hw_preset_parse(const std::string & text, const std::string & file);

// Load by path (anything with a '/' or ending in .json) or by name: the file
// stem under <dir>/models or <dir>/hardware. Unknown names list what exists.
model_preset model_preset_load(const std::string & name_or_path, const std::string & dir = "");
hw_preset hw_preset_load(const std::string & name_or_path, const std::string & dir = "");

// Stems of the preset files of one kind ("models" or "hardware"), sorted.
std::vector<std::string> preset_list(const std::string & kind, const std::string & dir = "");

// Read a whole text file; throws input_error(path, "file", ...) when missing.
std::string sim_read_text(const std::string & path);

} // namespace attnlab
