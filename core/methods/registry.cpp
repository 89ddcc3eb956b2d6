// Method registry: names, keys, defaults and ranges; building a method or a
// score function from a spec; shared helpers of the method files.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "base/error.h"
#include "methods/method.h"
#include "methods/registry_trained.h"

namespace attnlab {

namespace {

using mp = method_param;

method_param p_int(const std::string & key, const std::string & def, double lo, double hi, const std::string & help) {
    method_param p;
    p.key = key;
    p.kind = mp::integer;
    p.def = def;
    p.lo = lo;
    p.hi = hi;
    p.help = help;
    return p;
}

method_param p_real(const std::string & key, const std::string & def, double lo, double hi, bool lo_open,
                    const std::string & help) {
    method_param p;
    p.key = key;
    p.kind = mp::real;
    p.def = def;
    p.lo = lo;
    p.hi = hi;
    p.lo_open = lo_open;
    p.help = help;
    return p;
}

method_param p_block(const std::string & def = "64") {
    method_param p;
    p.key = "B";
    p.kind = mp::block;
    p.def = def;
    p.lo = 16;
    p.hi = 128;
    p.help = "kernel block size (16, 32, 64 or 128)";
    return p;
}

constexpr double k_big = 1 << 30;  // "any length"

std::string range_text(const method_param & p) {
    std::ostringstream os;
    os << (p.lo_open ? "(" : "[") << p.lo << ", " << p.hi << "]";
    return os.str();
}

std::string join(const std::vector<std::string> & v) {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + v[i];
    return r;
}

// Shortest decimal text that reads back as the same double.
std::string real_text(double x) {
    for (int prec = 1; prec <= 17; ++prec) {
        std::ostringstream os;
        os.precision(prec);
        os << x;
        if (std::strtod(os.str().c_str(), nullptr) == x) return os.str();
    }
    std::ostringstream os;
    os.precision(17);
    os << x;
    return os.str();
}

bool parse_real(const std::string & s, double & out) {
    char * end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end && *end == '\0' && end != s.c_str() && std::isfinite(out);
}

bool parse_int(const std::string & s, long long & out) {
    char * end = nullptr;
    out = std::strtoll(s.c_str(), &end, 10);
    return end && *end == '\0' && end != s.c_str();
}

// Checks one value against its parameter; returns the canonical text.
std::string value_check(const std::string & spec_text, const method_param & p, const std::string & v) {
    switch (p.kind) {
        case mp::text:
            return v;
        case mp::integer:
        case mp::block: {
            long long x = 0;
            if (!parse_int(v, x)) throw input_error(spec_text, p.key, "'" + v + "' is not an integer");
            if (p.kind == mp::block) {
                if (!block_size_valid((int) x)) {
                    throw input_error(spec_text, p.key, "block size " + v + " is not one of 16, 32, 64, 128");
                }
            } else if ((double) x < p.lo || (double) x > p.hi) {
                throw input_error(spec_text, p.key, "value " + v + " out of range " + range_text(p));
            }
            return std::to_string(x);
        }
        case mp::real: {
            double x = 0;
            if (!parse_real(v, x)) throw input_error(spec_text, p.key, "'" + v + "' is not a finite number");
            if ((p.lo_open ? x <= p.lo : x < p.lo) || x > p.hi) {
                throw input_error(spec_text, p.key, "value " + v + " out of range " + range_text(p));
            }
            return real_text(x);
        }
        case mp::positions: {
            std::string r;
            size_t b = 0;
            while (b <= v.size()) {
                size_t e = v.find(';', b);
                if (e == std::string::npos) e = v.size();
                long long x = 0;
                if (!parse_int(v.substr(b, e - b), x) || x < 0 || x > k_big) {
                    throw input_error(spec_text, p.key, "'" + v + "' is not a ';'-separated list of positions >= 0");
                }
                r += (r.empty() ? "" : ";") + std::to_string(x);
                b = e + 1;
            }
            return r;
        }
        case mp::choice:
            if (std::find(p.choices.begin(), p.choices.end(), v) == p.choices.end()) {
                throw input_error(spec_text, p.key, "'" + v + "' is not one of: " + join(p.choices));
            }
            return v;
    }
    return v;
}

// Long names users type for METHODS.md's symbols: block_topk:density=0.2,block=64
// means block_topk:rho=0.2,B=64. Only used where the method has the symbol.
const char * key_alias(const std::string & key) {
    if (key == "density") return "rho";
    if (key == "block") return "B";
    return nullptr;
}

} // namespace

method_args method_args_resolve(const method_spec & spec, const method_info & info) {
    method_args a;
    a.spec_text = spec.text;
    for (auto kv : spec.args) {
        auto has = [&](const std::string & k) {
            return std::any_of(info.params.begin(), info.params.end(), [&](const method_param & p) { return p.key == k; });
        };
        if (!has(kv.first) && key_alias(kv.first) && has(key_alias(kv.first))) {
            const std::string canonical = key_alias(kv.first);
            if (std::any_of(spec.args.begin(), spec.args.end(), [&](const std::pair<std::string, std::string> & o) { return o.first == canonical; })) {
                throw input_error(spec.text, kv.first, "given twice (as '" + kv.first + "' and '" + canonical + "')");
            }
            kv.first = canonical;
        }
        auto it = std::find_if(info.params.begin(), info.params.end(), [&](const method_param & p) { return p.key == kv.first; });
        if (it == info.params.end()) {
            std::vector<std::string> keys;
            for (const auto & p : info.params) keys.push_back(p.key);
            throw input_error(spec.text, kv.first,
                              "unknown key for '" + info.name + "' (valid keys: " + (keys.empty() ? "none" : join(keys)) + ")");
        }
        a.values[kv.first] = value_check(spec.text, *it, kv.second);
    }
    for (const auto & p : info.params) {
        if (!a.values.count(p.key)) a.values[p.key] = value_check(spec.text, p, p.def);
    }
    return a;
}

namespace {

const method_info * info_find(const std::vector<method_info> & reg, const std::string & name) {
    for (const auto & m : reg) {
        if (m.name == name) return &m;
    }
    return nullptr;
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

} // namespace

// ---- method_args ----

const std::string & method_args::text(const std::string & key) const {
    auto it = values.find(key);
    if (it == values.end()) throw input_error(spec_text, key, "internal: key not resolved");
    return it->second;
}

double method_args::real(const std::string & key) const { return std::strtod(text(key).c_str(), nullptr); }

int method_args::integer(const std::string & key) const { return (int) std::strtoll(text(key).c_str(), nullptr, 10); }

std::vector<int> method_args::positions(const std::string & key) const {
    std::vector<int> r;
    const std::string & v = text(key);
    size_t b = 0;
    while (b <= v.size()) {
        size_t e = v.find(';', b);
        if (e == std::string::npos) e = v.size();
        r.push_back((int) std::strtoll(v.substr(b, e - b).c_str(), nullptr, 10));
        b = e + 1;
    }
    return r;
}

// ---- registries ----

const std::vector<method_info> & method_registry() {
    static const std::vector<method_info> reg = [] {
        std::vector<method_info> r;
        const auto w = [](const std::string & def) { return p_int("w", def, 1, k_big, "window: keys i-w+1..i"); };
        const auto seed = [] { return p_int("seed", "0", 0, 2147483647.0, "random seed"); };
        r.push_back({"dense", "exact attention", {p_block()}});
        r.push_back({"window", "keys i-w+1..i (sliding window)", {w("256"), p_block()}});
        r.push_back({"sinks_window", "first g keys (attention sinks) + window w",
                     {p_int("g", "4", 0, k_big, "sink tokens"), w("256"), p_block()}});
        {
            method_param P;
            P.key = "P";
            P.kind = mp::positions;
            P.def = "0";
            P.help = "global positions, ';'-separated";
            r.push_back({"global_tokens", "positions in P attend to and are attended by all, + window w",
                         {P, w("256"), p_block()}});
        }
        r.push_back({"block_local", "block-diagonal: keys in the query's own block of B", {p_block()}});
        r.push_back({"strided", "keys j with j = i (mod m), or in the window w",
                     {p_int("m", "64", 1, k_big, "stride"), w("64"), p_block()}});
        r.push_back({"random", "each causal key kept with probability p (plus the diagonal)",
                     {p_real("p", "0.1", 0.0, 1.0, false, "keep probability"), seed(), p_block()}});
        r.push_back({"bigbird", "window w + first g tokens global + r random keys per row",
                     {w("192"), p_int("g", "128", 0, k_big, "global tokens"),
                      p_int("r", "192", 0, k_big, "random keys per row"), seed(), p_block()}});
        r.push_back({"oracle_topk", "exact top ceil(rho*keys) keys per row by s*q*k (pays for the full QK^T)",
                     {p_real("rho", "0.2", 0.0, 1.0, true, "kept fraction of each row's causal keys"), p_block()}});
        r.push_back({"block_topk", "pooled block scores s*mean(Q)*mean(K)^T, top ceil(rho*nb_causal) blocks per "
                                   "query block incl. the diagonal and block 0",
                     {p_real("rho", "0.2", 0.0, 1.0, true, "kept fraction of each query block's causal blocks"),
                      p_block()}});
        return r;
    }();
    return reg;
}

const std::vector<method_info> & score_registry() {
    static const std::vector<method_info> reg = [] {
        std::vector<method_info> r;
        r.push_back({"softmax", "softmax(s*q*k) over the selected keys", {}});
        method_param norm;
        norm.key = "norm";
        norm.kind = mp::choice;
        norm.def = "L";
        norm.choices = {"L", "row"};
        norm.help = "divide by the sequence length L, or by the row sum";
        r.push_back({"relu", "relu(s*q*k - b) / L (or / row sum)",
                     {p_real("b", "0", -1e6, 1e6, false, "bias subtracted before the relu"), norm}});
        r.push_back({"hyperbolic", "softmax(-beta*d_c(q,k) - gamma) in the Poincare ball",
                     {p_real("c", "1", 0.0, 1e6, true, "curvature magnitude"),
                      p_real("beta", "1", 0.0, 1e6, false, "distance scale"),
                      p_real("gamma", "0", -1e6, 1e6, false, "offset")}});
        return r;
    }();
    return reg;
}

// The trained methods (learned_gate, asa_router, spa, hybrid, layer_adaptive,
// max_keys) live in registry_trained.cpp: they take file and nested-spec keys.
const method_info * method_find(const std::string & name) {
    const method_info * m = info_find(method_registry(), name);
    return m ? m : trained_method_find(name);
}

std::vector<std::string> method_names() {
    std::vector<std::string> r;
    for (const auto & m : method_registry()) r.push_back(m.name);
    for (const auto & m : trained_method_registry()) r.push_back(m.name);
    return r;
}

std::string method_args_spec(const std::string & name, const method_args & a) {
    const method_info * info = method_find(name);
    std::string r = name;
    if (!info) return r;
    for (size_t i = 0; i < info->params.size(); ++i) {
        r += (i == 0 ? ":" : ",") + info->params[i].key + "=" + a.text(info->params[i].key);
    }
    return r;
}

std::unique_ptr<sparse_method> method_create(const method_spec & spec) {
    if (trained_method_find(spec.name)) return trained_method_create(spec);
    const method_info * info = info_find(method_registry(), spec.name);
    if (!info) {
        throw input_error(spec.text, "name", "unknown method '" + spec.name + "' (valid: " + join(method_names()) + ")");
    }
    const method_args a = method_args_resolve(spec, *info);
    const std::string & n = info->name;
    if (n == "dense") return make_dense(a);
    if (n == "window") return make_window(a);
    if (n == "sinks_window") return make_sinks_window(a);
    if (n == "global_tokens") return make_global_tokens(a);
    if (n == "block_local") return make_block_local(a);
    if (n == "strided") return make_strided(a);
    if (n == "random") return make_random(a);
    if (n == "bigbird") return make_bigbird(a);
    if (n == "oracle_topk") return make_oracle_topk(a);
    if (n == "block_topk") return make_block_topk(a);
    throw input_error(spec.text, "name", "method '" + n + "' has no factory");
}

std::unique_ptr<sparse_method> method_create(const std::string & spec_text) {
    return method_create(method_spec_parse(spec_text));
}

score_fn score_create(const method_spec & spec) {
    const method_info * info = info_find(score_registry(), spec.name);
    if (!info) {
        std::vector<std::string> names;
        for (const auto & m : score_registry()) names.push_back(m.name);
        throw input_error(spec.text, "name", "unknown score function '" + spec.name + "' (valid: " + join(names) + ")");
    }
    const method_args a = method_args_resolve(spec, *info);
    score_fn f;
    if (spec.name == "relu") {
        f.kind = score_kind::relu;
        f.relu_bias = (float) a.real("b");
        f.relu_row_norm = a.text("norm") == "row";
    } else if (spec.name == "hyperbolic") {
        f.kind = score_kind::hyperbolic;
        f.c = (float) a.real("c");
        f.beta = (float) a.real("beta");
        f.gamma = (float) a.real("gamma");
        if (!(f.c > 0.0f)) throw input_error(spec.text, "c", "value rounds to 0 in float");
    }
    return f;
}

score_fn score_create(const std::string & spec_text) { return score_create(method_spec_parse(spec_text)); }

// ---- shared helpers ----

head_inputs head_inputs_of(const attention_layer_io & io, int h) {
    head_inputs in;
    const int g = io.kv_head_of(h);
    in.n_tokens = io.n_tokens;
    in.head_dim = io.head_dim;
    in.causal = io.causal;
    in.scale = io.scale;
    in.q_stride = (int64_t) io.n_head * io.head_dim;
    in.k_stride = (int64_t) io.n_head_kv * io.head_dim;
    in.q = io.q + (int64_t) h * io.head_dim;
    in.k = io.k + (int64_t) g * io.head_dim;
    in.layer = io.layer;
    in.head = h;
    return in;
}

double attention_flops(int L, int d, bool causal) { return 4.0 * d * (double) causal_pairs(L, causal); }

uint64_t mix_hash(uint64_t seed, uint64_t layer, uint64_t head, uint64_t row, uint64_t t) {
    uint64_t h = splitmix64(seed);
    h = splitmix64(h ^ layer);
    h = splitmix64(h ^ head);
    h = splitmix64(h ^ row);
    return splitmix64(h ^ t);
}

int oracle_row_budget(double rho, int n_keys) {
    if (n_keys <= 0) return 0;
    // The small slack keeps rho·n that is an integer in exact arithmetic from
    // rounding up by one (0.1·30 = 3.0000000000000004).
    const int k = (int) std::ceil(rho * n_keys - 1e-9);
    return std::min(n_keys, std::max(1, k));
}

void topk_indices(const double * scores, int n_keys, int k, std::vector<int32_t> & out) {
    out.resize(n_keys);
    for (int j = 0; j < n_keys; ++j) out[j] = j;
    k = std::max(0, std::min(k, n_keys));
    const auto better = [scores](int32_t a, int32_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); };
    if (k < n_keys) std::nth_element(out.begin(), out.begin() + k, out.end(), better);
    out.resize(k);
    std::sort(out.begin(), out.end());
}

} // namespace attnlab
