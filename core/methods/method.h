#pragma once
// The sparse-method interface (METHODS.md, "Methods"). A method looks at one
// head's Q and K and returns a selection; the compute step (the block-sparse
// kernel, with a score function) then runs exact attention on it. Methods are
// built by name from a spec "name:key=value,..." through the registry, which
// knows every method's keys, defaults and valid ranges.
//
// select() must be thread-safe (it is const and called for several heads at
// once). Random methods draw from mix_hash(seed, layer, head, row, t), so a
// selection depends only on its inputs and the spec, never on call order.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/score.h"
#include "attention/selection.h"
#include "methods/method_spec.h"

namespace attnlab {

// One query head with the K head it reads (GQA resolved): row t of Q is
// q + t*q_stride, row t of K is k + t*k_stride.
struct head_inputs {
    int n_tokens = 0;
    int head_dim = 0;
    bool causal = true;
    float scale = 0.0f;
    const float * q = nullptr;
    int64_t q_stride = 0;
    const float * k = nullptr;
    int64_t k_stride = 0;
    int layer = 0;
    int head = 0;    // query head index
};

head_inputs head_inputs_of(const attention_layer_io & io, int h);

// struct gate_params: learned_gate.h (the GPU selector points at one).
struct gate_params;
struct trained_provenance;   // registry_trained.h

// What the GPU forward pass (model/llama_gpu_api.h) can run for a method
// without calling select() on the host. A plain descriptor: core knows no
// CUDA, the kernels read this and never the method's name or class.
//   none:              no GPU selection: the forward pass runs select() per
//                      head on the host from downloaded Q/K (block masks only)
//   dense:             dense causal attention, no selection at all
//   pooled_block_topk: block_topk's rule on mean-pooled Q/K (block, rho)
//   learned_gate:      the gate's projections on pooled blocks (*gate, rho),
//                      top-rho blocks; heads of layers the gate lacks run
//                      pooled_block_topk at the same rho
struct gpu_selector {
    enum kind_t { none, dense, pooled_block_topk, learned_gate } kind = none;
    int block = 0;
    double rho = 1.0;
    const gate_params * gate = nullptr;
};

class sparse_method {
public:
    virtual ~sparse_method() = default;
    virtual std::string name() const = 0;
    // Canonical spec with every key, in registry order: parses back to an
    // equal method (method_create(m.spec())->spec() == m.spec()).
    virtual std::string spec() const = 0;
    virtual selection select(const head_inputs & in) const = 0;
    // FLOPs the predictor spends for one head of length L, head dim d (scoring,
    // pooling; sorting is not counted). 0 for fixed patterns.
    virtual double predictor_flops(int L, int d, bool causal) const { (void) L; (void) d; (void) causal; return 0.0; }
    // The compute step on one layer: exact attention on each query head's
    // selection (sels[h]) into io.out. The default is the block-sparse
    // kernel; a method that also approximates what it skips (spa) overrides it.
    virtual void attend(const attention_layer_io & io, const selection * sels, const score_fn & score) const;
    // False for a method whose attend() computes more than exact attention on
    // its selection (spa's low-rank term): the GPU forward pass, which runs
    // the selection alone, refuses it rather than compute something else.
    virtual bool attends_selection_only() const { return true; }
    // The GPU forward pass's own selection for this method; the default
    // (none) makes it run select() on the host.
    virtual gpu_selector gpu_selection() const { return gpu_selector{}; }
    // Where fitted parameters came from (trained methods, and guards around
    // them); nullptr for methods that fit nothing.
    virtual const trained_provenance * provenance() const { return nullptr; }
    // False for patterns that ignore Q and K (callers may skip the data): the
    // registry entry's capability (false for a method not in the registry).
    bool uses_qk() const;
};

// Dense attention FLOPs of one head (4·d per causal pair: QKᵀ and PV).
double attention_flops(int L, int d, bool causal);

// ---- registry ----
// One table of methods (and one of score functions). Each method file adds
// its own entry with a static registrar, so a new method is one .cpp file:
//
//   static const method_registrar reg([] {
//       method_info e;  e.name = "mine";  e.help = "...";
//       e.params = {param_real("rho", "0.2", 0.0, 1.0, true, "kept fraction"), param_block()};
//       e.create = [](const method_args & a) -> std::unique_ptr<sparse_method> { ... };
//       return e;
//   }());
//
// The methods library is linked whole-archive (CMakeLists.txt), so no entry
// is dropped by the linker for want of a reference.

struct method_param {
    std::string key;
    // integer/real: checked against [lo, hi] ((lo, hi] when lo_open);
    // positions: ';'-separated token indices >= 0; choice: one of `choices`;
    // block: a block size 16, 32, 64 or 128.
    // text: free text (a file path, or a nested spec with ',' written '|')
    enum kind_t { integer, real, positions, choice, block, text } kind = real;
    std::string def;            // default value, as spec text
    double lo = 0.0, hi = 0.0;
    bool lo_open = false;
    std::vector<std::string> choices;
    std::string help;
};

// Parameter builders for entries (ranges as method_param says).
method_param param_int(const std::string & key, const std::string & def, double lo, double hi, const std::string & help);
method_param param_real(const std::string & key, const std::string & def, double lo, double hi, bool lo_open,
                        const std::string & help);
method_param param_text(const std::string & key, const std::string & def, const std::string & help);
method_param param_block(const std::string & def = "64");   // key B
constexpr double k_any_length = 1 << 30;                    // "hi" of lengths and counts

class method_args;
using method_factory = std::unique_ptr<sparse_method> (*)(const method_args & a);
using score_factory = score_fn (*)(const method_args & a);

// How the cost simulator (sim/cost.h) prices a method: the blocks it pays for.
//   none: not modelled (sim refuses the method, saying so)
//   dense: every causal block; window: keys i-w+1..i (key w) at block
//   granularity; block_density: ceil(rho·(I+1)) blocks per query block, at
//   least the diagonal and block 0 (key rho)
enum class method_cost { none, dense, window, block_density };

struct method_info {
    std::string name;
    std::string help;
    std::vector<method_param> params;
    method_factory create = nullptr;   // from resolved args (every key, checked)
    score_factory create_score = nullptr;  // score functions only
    // ---- capabilities ----
    enum grain_t { block, token } grain = block;  // selection granularity (token: a token mask; block: block lists)
    bool uses_qk = false;                      // reads Q and K (false: a fixed pattern)
    std::vector<std::string> file_keys;        // keys naming trained parameter files ("params", "table")
    bool budget_from_file = false;             // rho must equal the file's (one file per budget)
    gpu_selector::kind_t gpu = gpu_selector::none;   // what the GPU pass may run itself (the instance decides)
    method_cost cost = method_cost::none;
    std::string family;                        // regime class: dense | window | block_sparse | learned
    int order = 1000;                          // position in listings (METHODS.md order; ties by name)
};

// Static registrars: one per entry, in the entry's own .cpp file.
struct method_registrar {
    explicit method_registrar(method_info e);
};
struct score_registrar {
    explicit score_registrar(method_info e);
};

// Resolved arguments: every key of the method, defaults filled in, checked.
class method_args {
public:
    std::string spec_text;   // the spec as given (for error messages)
    std::map<std::string, std::string> values;
    double real(const std::string & key) const;
    int integer(const std::string & key) const;
    std::vector<int> positions(const std::string & key) const;   // "0;5;9" -> {0,5,9}
    const std::string & text(const std::string & key) const;
};

// Every method, in listing order.
const std::vector<method_info> & method_registry();
const std::vector<method_info> & score_registry();
const method_info * method_find(const std::string & name);
std::vector<std::string> method_names();

// Throws input_error(spec text, key, message) for an unknown name (listing the
// valid ones), an unknown key (listing the method's keys), a value that does
// not parse, or one out of range (giving the range). Nested specs (max_keys'
// inner) go through the same call.
std::unique_ptr<sparse_method> method_create(const method_spec & spec);
std::unique_ptr<sparse_method> method_create(const std::string & spec_text);

// Score function from "softmax" | "relu:b=..,norm=L|row" | "hyperbolic:c=..,beta=..,gamma=..".
score_fn score_create(const method_spec & spec);
score_fn score_create(const std::string & spec_text);

// Every key of the method resolved from the spec: defaults filled in, values
// checked (input_error naming the key); `density`/`block` alias `rho`/`B`.
method_args method_args_resolve(const method_spec & spec, const method_info & info);

// Canonical spec text "name:key=value,..." for resolved args, registry order.
std::string method_args_spec(const std::string & name, const method_args & a);

// Shortest decimal text that reads back as the same double (spec values).
std::string method_real_text(double x);

// Deterministic 64-bit mix (splitmix64 over the fields): the one source of
// randomness of random methods. mix_uniform maps it into (0, 1].
uint64_t mix_hash(uint64_t seed, uint64_t layer, uint64_t head, uint64_t row, uint64_t t);
inline double mix_uniform(uint64_t h) { return ((h >> 11) + 1) * (1.0 / 9007199254740992.0); }

// block_topk(rho) at block size B: the building block of spa, the gate's
// fallback and layer_adaptive's per-head budgets (rho clamped to (0, 1]).
std::unique_ptr<sparse_method> block_topk_create(double rho, int B);

// Exact top-k keys of one query row by the logit s·q·k (ties: lower j), used
// by oracle_topk and by the metrics; `scores` holds the row's n_keys logits.
void topk_indices(const double * scores, int n_keys, int k, std::vector<int32_t> & out);
int oracle_row_budget(double rho, int n_keys);  // ceil(rho·n_keys), at least 1 when n_keys > 0

// ---- patching a method into the forward pass ----

// For each layer: every query head's selection from io.q/io.k (heads in
// parallel), then the block-sparse kernel into io.out. A per-layer override
// replaces the method for that layer. Records measured times per layer.
// `dense` with the softmax score runs attention_dense_flash itself (bit-
// identical to the unpatched forward pass).
class sparse_attention_hook : public attention_hook {
public:
    explicit sparse_attention_hook(std::shared_ptr<const sparse_method> method, score_fn score = score_fn());
    void set_layer_method(int layer, std::shared_ptr<const sparse_method> method);
    bool attend(const attention_layer_io & io) override;

    struct layer_record {
        int layer = 0;
        int n_tokens = 0;
        double predictor_s = 0.0;   // wall time of all heads' select()
        double kernel_s = 0.0;
        double token_density = 0.0; // mean over heads
        double block_density = 0.0;
    };
    const std::vector<layer_record> & records() const { return records_; }
    void clear_records() { records_.clear(); }

private:
    std::shared_ptr<const sparse_method> method_;
    std::map<int, std::shared_ptr<const sparse_method>> per_layer_;
    score_fn score_;
    std::vector<layer_record> records_;
};

} // namespace attnlab
