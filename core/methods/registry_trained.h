#pragma once
// The methods of METHODS.md that are trained, calibrated or composed:
// learned_gate, asa_router, spa, hybrid, layer_adaptive and the max_keys
// guard. Same interface as the registry of method.h; hooking them in is two
// lines in registry.cpp (method_find falling back to trained_method_registry(),
// method_create falling back to trained_method_create()).
//
// Path- and spec-valued keys ("params", "table", "inner") are free text
// (anything without ','). method_param has no kind for that yet: they are
// declared as kind `choice` with an empty `choices` list, which this file's
// resolver reads as "free text, must not be empty". The main registry's
// args_resolve needs the same reading (or a `text` kind) before the hookup.
//
// Nesting (max_keys): the inner spec is one value, so its own ',' are written
// '|': "max_keys:k=256,inner=block_topk:rho=0.2|B=64".
#include <memory>
#include <string>
#include <vector>

#include "methods/method.h"

namespace attnlab {

const std::vector<method_info> & trained_method_registry();
const method_info * trained_method_find(const std::string & name);

// Builds from resolved args (every key of the method, checked).
std::unique_ptr<sparse_method> trained_method_create(const std::string & name, const method_args & a);

// Resolves and checks a spec against trained_method_registry() (input_error
// naming the spec and key, as method_create does) and builds it.
std::unique_ptr<sparse_method> trained_method_create(const method_spec & spec);

// Either registry: a trained name goes to trained_method_create, anything else
// to method_create. Used for inner specs, and by tests until the hookup.
std::unique_ptr<sparse_method> method_create_any(const std::string & spec_text);


// True for a key that takes free text (see above).
inline bool method_param_is_text(const method_param & p) { return p.kind == method_param::text; }

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

// Helpers of the trained parameter sets (gate_params, router_params): the
// position of `layer` in their layer list (-1 when absent), and the mean of a
// per-head loss table (0 when empty).
int trained_layer_index(const std::vector<int> & layers, int layer);
double trained_mean_loss(const std::vector<float> & per_head);

// Methods with fitted parameters implement this as well as sparse_method.
class trained_method {
public:
    virtual ~trained_method() = default;
    virtual const trained_provenance & provenance() const = 0;
};

// The provenance of m (or of the method a guard wraps); nullptr for methods
// that fit nothing.
const trained_provenance * method_provenance(const sparse_method & m);

// ---- hybrid(δ) (hybrid.cpp) ----

struct hybrid_estimate {
    double density = 0.0;   // estimated block density for `mass` of the attention
    bool dense = false;     // density > delta: the head runs dense
    selection sparse;       // the blocks the estimate needs (what runs when sparse)
};
hybrid_estimate hybrid_estimate_head(const head_inputs & in, int B, double mass, double delta);

// ---- guard max_keys(k) (max_keys_guard.cpp) ----

// Keys per query row of a selection (before the cap) against the cap k.
struct max_keys_report {
    int64_t rows = 0;
    int64_t rows_over = 0;          // rows with more than k keys
    double share_over = 0.0;
    int64_t min_keys = 0, max_keys = 0;
    double mean_keys = 0.0, p50 = 0.0, p90 = 0.0, p99 = 0.0;
};
max_keys_report max_keys_report_of(const selection & inner, int k);
// The cap itself: rows over k keep their k best logits among the selected.
selection max_keys_cap(const head_inputs & in, const selection & inner, int k);
// The wrapped method of a max_keys guard (nullptr for anything else).
const sparse_method * max_keys_inner(const sparse_method & m);

} // namespace attnlab
