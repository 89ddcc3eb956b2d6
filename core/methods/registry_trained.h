#pragma once
// What the trained, calibrated and composed methods (learned_gate,
// asa_router, layer_adaptive; spa, hybrid and the max_keys guard compose
// them) share beyond the method table: where fitted parameters came from, and
// the common fields of a trained parameter set. Their table entries are in
// their own files like every method's; an entry's `file_keys` names the keys
// that take a parameter file ("params", "table").
#include <cstdint>
#include <string>
#include <vector>

#include "methods/method.h"

namespace attnlab {

// Where a trained or calibrated method's parameters came from. Every result
// that uses such a method records these (method_provenance finds them).
struct trained_provenance {
    std::string kind;               // "learned_gate", "asa_router", "layer_adaptive"
    std::string file;               // the parameter file or table
    std::string calib_text_spec;    // "kjv:calib"
    std::string calib_text_sha256;  // of the calibration text part
    std::string model_sha256;
    std::string model_id;
};

// Helpers of the trained parameter sets: the position of `layer` in their
// layer list (-1 when absent), and the mean of a per-head loss table (0 when
// empty).
int trained_layer_index(const std::vector<int> & layers, int layer);
double trained_mean_loss(const std::vector<float> & per_head);

// The fields every distilled parameter set has (gate_params, router_params).
struct trained_params {
    int head_dim = 0;
    int n_head = 0;
    int steps = 0;
    double lr = 0.0;
    uint64_t seed = 0;
    int ctx = 0;                    // tokens per calibration window
    int windows = 0;                // calibration windows
    std::vector<int> layers;        // ascending
    std::vector<float> initial_loss, final_loss;    // training loss, [layers][n_head]
    trained_provenance prov;

    int layer_index(int layer) const { return trained_layer_index(layers, layer); }
    double mean_final_loss() const { return trained_mean_loss(final_loss); }
    double mean_initial_loss() const { return trained_mean_loss(initial_loss); }
};

// The provenance of m (or of the method a guard wraps): m.provenance();
// nullptr for methods that fit nothing.
inline const trained_provenance * method_provenance(const sparse_method & m) { return m.provenance(); }

} // namespace attnlab
