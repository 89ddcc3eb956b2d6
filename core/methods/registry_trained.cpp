// Registry of the trained, calibrated and composed methods (registry_trained.h):
// names, keys, defaults and ranges, spec resolution with clear errors, and
// provenance lookup.
#include "methods/registry_trained.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "base/error.h"

namespace attnlab {

int trained_layer_index(const std::vector<int> & layers, int layer) {
    for (size_t i = 0; i < layers.size(); ++i) {
        if (layers[i] == layer) return (int) i;
    }
    return -1;
}

double trained_mean_loss(const std::vector<float> & per_head) {
    double s = 0.0;
    for (float x : per_head) s += x;
    return per_head.empty() ? 0.0 : s / per_head.size();
}

std::unique_ptr<sparse_method> make_learned_gate(const method_args & a);
std::unique_ptr<sparse_method> make_asa_router(const method_args & a);
std::unique_ptr<sparse_method> make_spa(const method_args & a);
std::unique_ptr<sparse_method> make_hybrid(const method_args & a);
std::unique_ptr<sparse_method> make_layer_adaptive(const method_args & a);
std::unique_ptr<sparse_method> make_max_keys(const method_args & a);

namespace {

using mp = method_param;

method_param p_num(const std::string & key, mp::kind_t kind, const std::string & def, double lo, double hi, bool lo_open,
                   const std::string & help) {
    method_param p;
    p.key = key;
    p.kind = kind;
    p.def = def;
    p.lo = lo;
    p.hi = hi;
    p.lo_open = lo_open;
    p.help = help;
    return p;
}

method_param p_text(const std::string & key, const std::string & def, const std::string & help) {
    method_param p;
    p.key = key;
    p.kind = mp::text;
    p.def = def;
    p.help = help;
    return p;
}

method_param p_block() { return p_num("B", mp::block, "64", 16, 128, false, "kernel block size (16, 32, 64 or 128)"); }

method_param p_rho(const std::string & help) { return p_num("rho", mp::real, "0.2", 0.0, 1.0, true, help); }

constexpr double k_big = 1 << 30;

} // namespace

const std::vector<method_info> & trained_method_registry() {
    static const std::vector<method_info> reg = [] {
        std::vector<method_info> r;
        r.push_back({"learned_gate",
                     "trained per-head gate on pooled blocks (distilled from the true block mass on calibration text); "
                     "blocks with P >= tau, or the top rho, plus the diagonal and block 0",
                     {p_rho("kept fraction of each query block's causal blocks (when tau = 0)"),
                      p_num("tau", mp::real, "0", 0.0, 1.0, false, "gate probability threshold; 0 selects by rho"),
                      p_block(), p_text("params", "", "trained gate file (safetensors)")}});
        r.push_back({"asa_router",
                     "token-level router: rank-r maps + positional prior + sink, distilled on calibration text; keys "
                     "with router probability >= theta, or the top rho, plus the diagonal",
                     {p_num("theta", mp::real, "0", 0.0, 1.0, false, "router probability threshold; 0 selects by rho"),
                      p_rho("kept fraction of each row's causal keys (when theta = 0)"), p_block(),
                      p_text("params", "", "trained router file (safetensors)")}});
        r.push_back({"spa", "exact attention on block_topk(rho) pairs + FAVOR+ low-rank estimate (m features) of the rest",
                     {p_rho("kept fraction of each query block's causal blocks"),
                      p_num("m", mp::integer, "64", 1, 65536, false, "random features"),
                      p_num("seed", mp::integer, "0", 0, 2147483647.0, false, "random seed"), p_block()}});
        r.push_back({"hybrid", "per head: dense if the pooled estimate needs block density > delta for `mass`, else those blocks",
                     {p_num("delta", mp::real, "0.5", 0.0, 1.0, true, "density above which the head runs dense"),
                      p_num("mass", mp::real, "0.95", 0.0, 1.0, true, "attention mass the estimate must cover"), p_block()}});
        r.push_back({"layer_adaptive", "per-(layer, head) block_topk budgets from calibrated recall curves (greedy)",
                     {p_rho("global budget: mean block density over heads"), p_text("table", "", "allocation table (JSON)"),
                      p_block()}});
        r.push_back({"max_keys", "guard: caps each query row at its k best selected keys (inner spec, ',' written '|')",
                     {p_num("k", mp::integer, "256", 1, k_big, false, "keys per query"),
                      p_text("inner", "block_topk", "the wrapped method's spec")}});
        return r;
    }();
    return reg;
}

const method_info * trained_method_find(const std::string & name) {
    for (const auto & m : trained_method_registry()) {
        if (m.name == name) return &m;
    }
    return nullptr;
}

std::unique_ptr<sparse_method> trained_method_create(const std::string & name, const method_args & a) {
    if (name == "learned_gate") return make_learned_gate(a);
    if (name == "asa_router") return make_asa_router(a);
    if (name == "spa") return make_spa(a);
    if (name == "hybrid") return make_hybrid(a);
    if (name == "layer_adaptive") return make_layer_adaptive(a);
    if (name == "max_keys") return make_max_keys(a);
    throw input_error(a.spec_text, "name", "method '" + name + "' is not a trained method");
}

std::unique_ptr<sparse_method> trained_method_create(const method_spec & spec) {
    const method_info * info = trained_method_find(spec.name);
    if (!info) throw input_error(spec.text, "name", "'" + spec.name + "' is not a trained method");
    return trained_method_create(info->name, method_args_resolve(spec, *info));
}

std::unique_ptr<sparse_method> method_create_any(const std::string & spec_text) {
    const method_spec s = method_spec_parse(spec_text);
    if (trained_method_find(s.name)) return trained_method_create(s);
    return method_create(s);
}

const trained_provenance * method_provenance(const sparse_method & m) {
    if (const auto * t = dynamic_cast<const trained_method *>(&m)) return &t->provenance();
    if (const sparse_method * inner = max_keys_inner(m)) return method_provenance(*inner);
    return nullptr;
}

} // namespace attnlab
