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
    // False for patterns that ignore Q and K (callers may skip the data).
    virtual bool uses_qk() const { return false; }
    // The compute step on one layer: exact attention on each query head's
    // selection (sels[h]) into io.out. The default is the block-sparse
    // kernel; a method that also approximates what it skips (spa) overrides it.
    virtual void attend(const attention_layer_io & io, const selection * sels, const score_fn & score) const;
};

// Dense attention FLOPs of one head (4·d per causal pair: QKᵀ and PV).
double attention_flops(int L, int d, bool causal);

// ---- registry ----

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

struct method_info {
    std::string name;
    std::string help;
    std::vector<method_param> params;
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

const std::vector<method_info> & method_registry();
const std::vector<method_info> & score_registry();
const method_info * method_find(const std::string & name);
std::vector<std::string> method_names();

// Throws input_error(spec text, key, message) for an unknown name (listing the
// valid ones), an unknown key (listing the method's keys), a value that does
// not parse, or one out of range (giving the range).
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

// Deterministic 64-bit mix (splitmix64 over the fields): the one source of
// randomness of random methods. mix_uniform maps it into (0, 1].
uint64_t mix_hash(uint64_t seed, uint64_t layer, uint64_t head, uint64_t row, uint64_t t);
inline double mix_uniform(uint64_t h) { return ((h >> 11) + 1) * (1.0 / 9007199254740992.0); }

// Factories, one per method (defined in the family files).
std::unique_ptr<sparse_method> make_dense(const method_args & a);
std::unique_ptr<sparse_method> make_window(const method_args & a);
std::unique_ptr<sparse_method> make_sinks_window(const method_args & a);
std::unique_ptr<sparse_method> make_global_tokens(const method_args & a);
std::unique_ptr<sparse_method> make_block_local(const method_args & a);
std::unique_ptr<sparse_method> make_strided(const method_args & a);
std::unique_ptr<sparse_method> make_random(const method_args & a);
std::unique_ptr<sparse_method> make_bigbird(const method_args & a);
std::unique_ptr<sparse_method> make_oracle_topk(const method_args & a);
std::unique_ptr<sparse_method> make_block_topk(const method_args & a);

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
