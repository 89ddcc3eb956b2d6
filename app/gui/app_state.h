#pragma once
// What every view reads: the loaded source (model or trace), the capture, the
// selected head and method, recent files, the task manager and the event bus.
// Only the main thread touches this; workers get shared_ptr copies of what
// they need and hand results back through task closures.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "events.h"
#include "io/trace.h"
#include "model/llama.h"
#include "model/model_info.h"
#include "model/tokenizer.h"
#include "task_manager.h"

namespace attnlab {
struct gpu_capture;
}

namespace attnlab_gui {

struct kernel_record {
    int L = 0, head_dim = 0, heads = 0;
    double density = 1.0;
    double dense_s = 0.0, dense_gflops = 0.0;
    double sparse_s = 0.0, sparse_gflops = 0.0, predictor_s = 0.0;
    bool has_sparse = false;
    std::string method;
};

class app_state {
public:
    app_state();

    task_manager tasks;
    event_bus bus;

    // ---- source ----
    std::string source_path;
    std::string source_sha256;             // of the file (a model directory: empty), computed while loading
    attnlab::model_info facts;             // header facts (core's model_info_read, as attnlab-cli info)
    std::shared_ptr<const attnlab::llama_model> model;
    std::shared_ptr<const attnlab::bpe_tokenizer> tok;
    std::string load_error;

    // ---- capture ----
    std::string text_spec = "kjv:eval";  // or a path, or "typed"
    std::string typed_text = "In the beginning was the Word, and the Word was with God, and the Word was God.";
    int ctx = 512;
    std::string layers_spec;              // empty: all layers
    std::shared_ptr<const attnlab::qkv_capture> cap;
    std::string capture_error;
    double capture_seconds = 0.0;
    std::string capture_device = "CPU";   // what ran the capture's forward pass
    // With a GPU backend (attnlab::gpu_backend_get()), the capture's Q and K
    // are kept on the GPU too and head maps are computed there; null without.
    std::shared_ptr<const attnlab::gpu_capture> gpu_cap;
    std::string map_status;               // status bar: the last map's device and time (measured)

    // ---- selection ----
    int layer_index = 0;   // into cap->layers
    int head = 0;
    std::string method_spec = "block_topk:rho=0.2,B=64";
    bool methods_available = true;

    // ---- measurements shared between views ----
    std::vector<kernel_record> kernel_runs;
    std::vector<std::string> recent;

    // Actions (main thread). Each starts a task and returns immediately.
    // GGUF / HF dir: model; trace: capture. By value: callers pass entries
    // of `recent`, which opening reorders.
    void open_path(std::string path);
    void start_capture();
    void cancel_capture();
    void select_head(int layer_index, int head); // clamps, publishes head_selected
    void set_method(const std::string & spec);   // publishes method_changed

    int n_layers_captured() const { return cap ? int(cap->layers.size()) : 0; }
    int layer_id() const { return cap && layer_index < int(cap->layers.size()) ? cap->layers[layer_index].layer : 0; }
    std::string token_text(int t) const;          // printable piece of token t

    void load_recent();
    void save_recent() const;

private:
    void add_recent(const std::string & path);
};

// Printable form of a token piece: escapes newlines and control bytes.
std::string printable_piece(const std::string & s);

} // namespace attnlab_gui
