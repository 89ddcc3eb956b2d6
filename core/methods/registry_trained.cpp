// Registry of the trained, calibrated and composed methods (registry_trained.h):
// names, keys, defaults and ranges, spec resolution with clear errors, and
// provenance lookup.
#include "methods/registry_trained.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "io/error.h"

namespace attnlab {

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
    p.kind = mp::choice;   // with no choices: free text (registry_trained.h)
    p.def = def;
    p.help = help;
    return p;
}

method_param p_block() { return p_num("B", mp::block, "64", 16, 128, false, "kernel block size (16, 32, 64 or 128)"); }

method_param p_rho(const std::string & help) { return p_num("rho", mp::real, "0.2", 0.0, 1.0, true, help); }

constexpr double k_big = 1 << 30;

std::string join(const std::vector<std::string> & v) {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + v[i];
    return r;
}

std::string real_text(double x) {
    for (int prec = 1; prec <= 17; ++prec) {
        std::ostringstream os;
        os.precision(prec);
        os << x;
        if (std::strtod(os.str().c_str(), nullptr) == x) return os.str();
    }
    return std::to_string(x);
}

std::string range_text(const method_param & p) {
    std::ostringstream os;
    os << (p.lo_open ? "(" : "[") << p.lo << ", " << p.hi << "]";
    return os.str();
}

std::string value_check(const std::string & spec_text, const method_param & p, const std::string & v) {
    if (method_param_is_text(p)) return v;
    if (p.kind == mp::integer || p.kind == mp::block) {
        char * end = nullptr;
        const long long x = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0') throw input_error(spec_text, p.key, "'" + v + "' is not an integer");
        if (p.kind == mp::block) {
            if (!block_size_valid((int) x)) throw input_error(spec_text, p.key, "block size " + v + " is not one of 16, 32, 64, 128");
        } else if ((double) x < p.lo || (double) x > p.hi) {
            throw input_error(spec_text, p.key, "value " + v + " out of range " + range_text(p));
        }
        return std::to_string(x);
    }
    if (p.kind == mp::real) {
        char * end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || !std::isfinite(x)) throw input_error(spec_text, p.key, "'" + v + "' is not a finite number");
        if ((p.lo_open ? x <= p.lo : x < p.lo) || x > p.hi) {
            throw input_error(spec_text, p.key, "value " + v + " out of range " + range_text(p));
        }
        return real_text(x);
    }
    if (p.kind == mp::choice) {
        if (std::find(p.choices.begin(), p.choices.end(), v) == p.choices.end()) {
            throw input_error(spec_text, p.key, "'" + v + "' is not one of: " + join(p.choices));
        }
        return v;
    }
    throw input_error(spec_text, p.key, "unsupported key kind");
}

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

std::string trained_args_spec(const std::string & name, const method_args & a) {
    const method_info * info = trained_method_find(name);
    std::string r = name;
    if (!info) return r;
    for (size_t i = 0; i < info->params.size(); ++i) r += (i == 0 ? ":" : ",") + info->params[i].key + "=" + a.text(info->params[i].key);
    return r;
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
    if (!info) {
        std::vector<std::string> names;
        for (const auto & m : trained_method_registry()) names.push_back(m.name);
        throw input_error(spec.text, "name", "unknown method '" + spec.name + "' (valid: " + join(names) + ")");
    }
    method_args a;
    a.spec_text = spec.text;
    for (const auto & kv : spec.args) {
        auto it = std::find_if(info->params.begin(), info->params.end(), [&](const method_param & p) { return p.key == kv.first; });
        if (it == info->params.end()) {
            std::vector<std::string> keys;
            for (const auto & p : info->params) keys.push_back(p.key);
            throw input_error(spec.text, kv.first, "unknown key for '" + info->name + "' (valid keys: " + join(keys) + ")");
        }
        a.values[kv.first] = value_check(spec.text, *it, kv.second);
    }
    for (const auto & p : info->params) {
        if (!a.values.count(p.key)) a.values[p.key] = value_check(spec.text, p, p.def);
    }
    return trained_method_create(info->name, a);
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
