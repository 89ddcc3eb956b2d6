// The method and score-function tables (filled by each method file's
// registrar), spec resolution against an entry's parameters with clear
// errors, building from a spec; shared helpers of the method files.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "base/error.h"
#include "methods/method.h"

namespace attnlab {

method_param param_int(const std::string & key, const std::string & def, double lo, double hi, const std::string & help) {
    method_param p;
    p.key = key;
    p.kind = method_param::integer;
    p.def = def;
    p.lo = lo;
    p.hi = hi;
    p.help = help;
    return p;
}

method_param param_real(const std::string & key, const std::string & def, double lo, double hi, bool lo_open,
                        const std::string & help) {
    method_param p = param_int(key, def, lo, hi, help);
    p.kind = method_param::real;
    p.lo_open = lo_open;
    return p;
}

method_param param_text(const std::string & key, const std::string & def, const std::string & help) {
    method_param p;
    p.key = key;
    p.kind = method_param::text;
    p.def = def;
    p.help = help;
    return p;
}

method_param param_block(const std::string & def) {
    method_param p = param_int("B", def, 16, 128, "kernel block size (16, 32, 64 or 128)");
    p.kind = method_param::block;
    return p;
}

std::string method_real_text(double x) {
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

namespace {

using mp = method_param;

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

bool parse_real(const std::string & s, double & out) {
    char * end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end && *end == '\0' && end != s.c_str() && std::isfinite(out);
}

// Whole text, and within int: every integer parameter is read back as an int
// (method_args::integer), so a wider value would run as its low bits
// (B=4294967360 ran as 64 but was recorded as given).
bool parse_int(const std::string & s, long long & out) {
    char * end = nullptr;
    errno = 0;
    out = std::strtoll(s.c_str(), &end, 10);
    return end && *end == '\0' && end != s.c_str() && errno != ERANGE && out >= INT_MIN && out <= INT_MAX;
}

// Checks one value against its parameter; returns the canonical text.
std::string value_check(const std::string & spec_text, const method_param & p, const std::string & v) {
    switch (p.kind) {
        case mp::text:
            return v;
        case mp::integer:
        case mp::block: {
            long long x = 0;
            if (!parse_int(v, x)) {
                throw input_error(spec_text, p.key, "'" + v + "' is not an integer within " + std::to_string(INT_MIN) + ".." +
                                                        std::to_string(INT_MAX));
            }
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
            return method_real_text(x);
        }
        case mp::positions: {
            std::string r;
            size_t b = 0;
            while (b <= v.size()) {
                size_t e = v.find(';', b);
                if (e == std::string::npos) e = v.size();
                long long x = 0;
                if (!parse_int(v.substr(b, e - b), x) || x < 0 || x > k_any_length) {
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

// ---- the tables ----

namespace {

// Function-local statics: filled by the registrars during static
// initialisation, whatever the order of the translation units.
std::vector<method_info> & method_table() {
    static std::vector<method_info> t;
    return t;
}

std::vector<method_info> & score_table() {
    static std::vector<method_info> t;
    return t;
}

void table_add(std::vector<method_info> & t, method_info e, const char * what) {
    const bool ok = !e.name.empty() && (e.create || e.create_score) && !info_find(t, e.name);
    if (!ok) {
        // A programming error in a method file: stop at start-up, loudly.
        std::fprintf(stderr, "attnlab: bad or duplicate %s registration '%s'\n", what, e.name.c_str());
        std::abort();
    }
    t.push_back(std::move(e));
    std::stable_sort(t.begin(), t.end(), [](const method_info & x, const method_info & y) {
        return x.order != y.order ? x.order < y.order : x.name < y.name;
    });
}

std::vector<std::string> names_of(const std::vector<method_info> & t) {
    std::vector<std::string> r;
    for (const auto & m : t) r.push_back(m.name);
    return r;
}

} // namespace

method_registrar::method_registrar(method_info e) { table_add(method_table(), std::move(e), "method"); }
score_registrar::score_registrar(method_info e) { table_add(score_table(), std::move(e), "score function"); }

const std::vector<method_info> & method_registry() { return method_table(); }
const std::vector<method_info> & score_registry() { return score_table(); }

const method_info * method_find(const std::string & name) { return info_find(method_table(), name); }

std::vector<std::string> method_names() { return names_of(method_table()); }

bool sparse_method::uses_qk() const {
    const method_info * e = method_find(name());
    return e && e->uses_qk;
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
    const method_info * info = method_find(spec.name);
    if (!info) {
        throw input_error(spec.text, "name", "unknown method '" + spec.name + "' (valid: " + join(method_names()) + ")");
    }
    return info->create(method_args_resolve(spec, *info));
}

std::unique_ptr<sparse_method> method_create(const std::string & spec_text) {
    return method_create(method_spec_parse(spec_text));
}

score_fn score_create(const method_spec & spec) {
    const method_info * info = info_find(score_table(), spec.name);
    if (!info) {
        throw input_error(spec.text, "name",
                          "unknown score function '" + spec.name + "' (valid: " + join(names_of(score_table())) + ")");
    }
    return info->create_score(method_args_resolve(spec, *info));
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
