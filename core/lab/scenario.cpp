// Scenarios: schema, validation and the per-kind drivers (see scenario.h).
#include "lab/scenario.h"
#include "base/atomic_write.h"
#include "base/data_path.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <memory>
#include <omp.h>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <atomic>
#include <unistd.h>

#include "attention/selection.h"
#include "base/error.h"
#include "base/sha256.h"
#include "data/capture.h"
#include "lab/claims_measure.h"
#include "data/corpus.h"
#include "lab/figures.h"
#include "base/job.h"
#include "lab/snapshot.h"
#include "lab/sweep.h"
#include "methods/layer_adaptive.h"
#include "methods/learned_gate.h"
#include "methods/method.h"
#include "methods/train/calib.h"
#include "metrics/passkey.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"
#include "sim/cost.h"
#include "sim/presets.h"
#include "sim/regimes.h"

namespace attnlab {

using nlohmann::json;

// ------------------------------------------------------------------ schema

namespace {

const char * const k_default_model = "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";

enum class kt { str, boolean, integer, real, int_list, real_list, str_list };

struct key_def {
    std::string name;
    kt type;
    json def;                        // null: required
    double lo = -1e300, hi = 1e300;  // numbers and list elements
    bool lo_open = false;            // (lo, hi] instead of [lo, hi]
    std::vector<std::string> choices;  // strings and string-list elements
    bool non_empty = false;          // lists
};

key_def K(std::string n, kt t, json def, double lo = -1e300, double hi = 1e300, bool lo_open = false) {
    key_def k;
    k.name = std::move(n);
    k.type = t;
    k.def = std::move(def);
    k.lo = lo;
    k.hi = hi;
    k.lo_open = lo_open;
    return k;
}
key_def C(std::string n, kt t, json def, std::vector<std::string> choices) {
    key_def k = K(std::move(n), t, std::move(def));
    k.choices = std::move(choices);
    return k;
}
key_def NE(key_def k) {
    k.non_empty = true;
    return k;
}

constexpr double k_max_ctx = 1 << 20;
constexpr double k_max_sim_ctx = 1 << 24;

const std::vector<std::string> k_outputs = {"report", "csv", "json", "figures"};
const std::vector<std::string> k_trained_compare_methods = {"learned_gate", "block_topk", "oracle_topk"};

json default_views(const std::string & kind) {
    if (kind == "sweep") return {"tradeoffs", "layers_heads"};
    if (kind == "passkey") return {"source", "attention_map", "masks"};
    if (kind == "trained_compare") return {"masks", "tradeoffs"};
    if (kind == "layer_adaptive") return {"layers_heads", "tradeoffs"};
    if (kind == "sim_quadratic") return {"quadratic"};
    if (kind == "sim_regimes") return {"quadratic", "tradeoffs"};
    return {"tradeoffs", "layers_heads"};
}

std::vector<int> pow2_range(int a, int b) {
    std::vector<int> v;
    for (int x = a; x <= b; x *= 2) v.push_back(x);
    return v;
}

// The kind's own keys (everything but schema/kind/title/description/views/outputs/small).
std::vector<key_def> kind_keys(const std::string & kind) {
    const key_def seed = K("seed", kt::integer, 1, 0, 2147483647.0);
    const key_def source = K("source", kt::str, k_default_model);
    const key_def text = K("text", kt::str, "kjv:eval");
    const key_def calib = K("calib_text", kt::str, "kjv:calib");
    const key_def block = K("block", kt::integer, 64, 16, 128);
    const key_def dens = [](json d) { return NE(K("densities", kt::real_list, std::move(d), 0.0, 1.0, true)); }({0.1, 0.2, 0.4, 0.6});
    const auto dens_of = [&](json d) {
        key_def k = dens;
        k.def = std::move(d);
        return k;
    };
    const key_def layers = K("layers", kt::int_list, json::array(), 0, 1000);
    const json grid = {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0};
    if (kind == "sweep") {
        return {seed, source, text, NE(K("ctx", kt::int_list, {2048}, 2, k_max_ctx)), NE(K("methods", kt::str_list, nullptr)),
                dens, K("max_tokens", kt::integer, 4096, 0, 1e9), K("passkey_depths", kt::real_list, json::array(), 0, 1),
                K("passkey_trials", kt::integer, 1, 1, 100), K("mass_recall", kt::boolean, true),
                K("score", kt::str, "softmax")};
    }
    if (kind == "passkey") {
        return {seed, source, text, NE(K("ctx", kt::int_list, {2048}, 16, k_max_ctx)),
                NE(K("methods", kt::str_list, {"dense"})), dens_of({0.2}),
                NE(K("depths", kt::real_list, {0.1, 0.3, 0.5, 0.7, 0.9}, 0, 1)), K("trials", kt::integer, 1, 1, 100)};
    }
    if (kind == "trained_compare") {
        key_def m = NE(C("methods", kt::str_list, k_trained_compare_methods, k_trained_compare_methods));
        return {seed, source, text, calib, K("ctx", kt::integer, 1024, 64, k_max_ctx),
                K("calib_windows", kt::integer, 4, 1, 64), layers, block, K("d_g", kt::integer, 32, 1, 512),
                K("steps", kt::integer, 300, 1, 100000), K("lr", kt::real, 0.01, 0, 10, true), dens_of({0.1, 0.2, 0.3}), m,
                K("eval_windows", kt::integer, 1, 1, 64)};
    }
    if (kind == "layer_adaptive") {
        return {seed, source, text, calib, K("ctx", kt::integer, 1024, 64, k_max_ctx),
                K("calib_windows", kt::integer, 4, 1, 64), layers, block, NE(K("grid", kt::real_list, grid, 0, 1, true)),
                dens_of({0.2, 0.3}), K("eval_windows", kt::integer, 1, 1, 64)};
    }
    if (kind == "sim_quadratic") {
        return {seed, K("source", kt::str, "smollm2-135m"), K("hw", kt::str, "h100-sxm"),
                NE(K("ctx", kt::int_list, pow2_range(1024, 131072), 1, k_max_sim_ctx)),
                K("densities", kt::real_list, {0.1, 0.2}, 0, 1, true), K("batch", kt::integer, 1, 1, 4096)};
    }
    if (kind == "sim_regimes") {
        std::vector<int> ctxs;
        for (int64_t c : regime_default_contexts()) ctxs.push_back(int(c));
        return {seed, K("source", kt::str, "llama-3-8b"), K("hw", kt::str, "h100-sxm"), K("table", kt::str, "default"),
                NE(K("ctx", kt::int_list, ctxs, 1, k_max_sim_ctx)), C("phase", kt::str, "prefill", {"prefill", "decode"})};
    }
    if (kind == "claims") {
        return {seed, source, text, K("ctx", kt::integer, 1024, 64, k_max_ctx), K("windows", kt::integer, 2, 1, 64), block,
                NE(K("grid", kt::real_list, grid, 0, 1, true)), dens_of({0.15, 0.2, 0.25}),
                K("methods", kt::str_list, json::array())};
    }
    return {};
}

std::string join(const std::vector<std::string> & v, const char * sep = ", ") {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? sep : "") + v[i];
    return r;
}

std::string num_text(double x) {
    char b[64];
    std::snprintf(b, sizeof b, "%g", x);
    return b;
}

std::string range_text(const key_def & k) {
    return std::string(k.lo_open ? "(" : "[") + num_text(k.lo) + ", " + num_text(k.hi) + "]";
}

bool in_range(const key_def & k, double v) { return (k.lo_open ? v > k.lo : v >= k.lo) && v <= k.hi; }

json check_number(const std::string & file, const std::string & path, const key_def & k, const json & v, bool integer) {
    if (!v.is_number()) throw input_error(file, path, integer ? "must be an integer" : "must be a number");
    if (integer && !v.is_number_integer()) throw input_error(file, path, "must be an integer, not " + v.dump());
    const double d = v.get<double>();
    if (!std::isfinite(d) || !in_range(k, d)) throw input_error(file, path, v.dump() + " is outside " + range_text(k));
    return v;
}

json check_string(const std::string & file, const std::string & path, const key_def & k, const json & v) {
    if (!v.is_string()) throw input_error(file, path, "must be a string");
    const std::string s = v.get<std::string>();
    if (s.empty()) throw input_error(file, path, "must not be empty");
    if (!k.choices.empty() && std::find(k.choices.begin(), k.choices.end(), s) == k.choices.end()) {
        throw input_error(file, path, "'" + s + "' is not one of: " + join(k.choices));
    }
    return v;
}

json check_value(const std::string & file, const std::string & path, const key_def & k, const json & v) {
    switch (k.type) {
    case kt::str: return check_string(file, path, k, v);
    case kt::boolean:
        if (!v.is_boolean()) throw input_error(file, path, "must be true or false");
        return v;
    case kt::integer: return check_number(file, path, k, v, true);
    case kt::real: return check_number(file, path, k, v, false);
    case kt::int_list:
    case kt::real_list:
    case kt::str_list: {
        json arr = v;
        // A single value stands for a list of one (ctx: 2048).
        if (!v.is_array()) {
            if (k.type == kt::str_list ? !v.is_string() : !v.is_number()) {
                throw input_error(file, path, std::string("must be a list of ") +
                                                  (k.type == kt::str_list ? "strings" : k.type == kt::int_list ? "integers" : "numbers"));
            }
            arr = json::array({v});
        }
        if (k.non_empty && arr.empty()) throw input_error(file, path, "must not be empty");
        json out = json::array();
        for (size_t i = 0; i < arr.size(); ++i) {
            const std::string p = path + "[" + std::to_string(i) + "]";
            if (k.type == kt::str_list) out.push_back(check_string(file, p, k, arr[i]));
            else out.push_back(check_number(file, p, k, arr[i], k.type == kt::int_list));
        }
        return out;
    }
    }
    return v;
}

const key_def * find_key(const std::vector<key_def> & keys, const std::string & name) {
    for (const auto & k : keys) {
        if (k.name == name) return &k;
    }
    return nullptr;
}

std::vector<std::string> key_names(const std::vector<key_def> & keys) {
    std::vector<std::string> r;
    for (const auto & k : keys) r.push_back(k.name);
    return r;
}

// Checks what only makes sense after defaults and "small" are merged.
void check_merged(const std::string & file, const std::string & pre, const std::string & kind, const json & c) {
    if (c.contains("block") && !block_size_valid(c["block"].get<int>())) {
        throw input_error(file, pre + "block", "must be one of 16, 32, 64, 128");
    }
    if (kind == "sweep" || kind == "passkey") {
        const std::vector<double> dens = c["densities"].get<std::vector<double>>();
        const std::vector<int> ctx = c["ctx"].get<std::vector<int>>();
        const std::vector<std::string> ms = c["methods"].get<std::vector<std::string>>();
        for (size_t i = 0; i < ms.size(); ++i) {
            try {
                sweep_plan({ms[i]}, dens, ctx, "", "", 0);
            } catch (const input_error & e) {
                throw input_error(file, pre + "methods[" + std::to_string(i) + "]", e.what());
            }
        }
        if (kind == "sweep") {
            try {
                score_create(c["score"].get<std::string>());
            } catch (const input_error & e) {
                throw input_error(file, pre + "score", e.what());
            }
        }
    }
    if (kind == "trained_compare" || kind == "layer_adaptive") {
        const std::vector<int> layers = c["layers"].get<std::vector<int>>();
        if (std::set<int>(layers.begin(), layers.end()).size() != layers.size()) {
            throw input_error(file, pre + "layers", "a layer is listed twice");
        }
        if (c["ctx"].get<int>() < 2 * c["block"].get<int>()) {
            throw input_error(file, pre + "ctx", "must be at least two blocks (2 x block)");
        }
    }
}

} // namespace

const std::vector<std::string> & scenario_kinds() {
    static const std::vector<std::string> k = {"sweep", "passkey", "trained_compare", "layer_adaptive",
                                               "sim_quadratic", "sim_regimes", "claims"};
    return k;
}

const std::vector<std::string> & scenario_view_ids() {
    static const std::vector<std::string> v = {"source", "attention_map", "masks", "layers_heads", "hyperbolic",
                                               "tradeoffs", "kernels", "quadratic", "snapshots"};
    return v;
}

scenario scenario_parse(const std::string & text, const std::string & file, bool small) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::parse_error & e) {
        throw input_error(file, "json", std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw input_error(file, "json", "a scenario is a JSON object");
    if (!j.contains("schema")) throw input_error(file, "schema", "missing (want \"" + std::string(k_scenario_schema) + "\")");
    if (!j["schema"].is_string() || j["schema"].get<std::string>() != k_scenario_schema) {
        throw input_error(file, "schema", j["schema"].dump() + " is not \"" + std::string(k_scenario_schema) + "\"");
    }
    if (!j.contains("kind")) throw input_error(file, "kind", "missing (one of: " + join(scenario_kinds()) + ")");
    if (!j["kind"].is_string()) throw input_error(file, "kind", "must be a string");
    const std::string kind = j["kind"].get<std::string>();
    if (std::find(scenario_kinds().begin(), scenario_kinds().end(), kind) == scenario_kinds().end()) {
        throw input_error(file, "kind", "'" + kind + "' is not one of: " + join(scenario_kinds()));
    }
    const std::vector<key_def> keys = kind_keys(kind);
    std::vector<key_def> common = {K("title", kt::str, nullptr), K("description", kt::str, nullptr),
                                   C("views", kt::str_list, default_views(kind), scenario_view_ids()),
                                   C("outputs", kt::str_list, k_outputs, k_outputs)};
    scenario s;
    s.file = file;
    s.kind = kind;
    json cfg = json::object();
    cfg["schema"] = k_scenario_schema;
    cfg["kind"] = kind;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string & name = it.key();
        if (name == "schema" || name == "kind" || name == "small") continue;
        const key_def * k = find_key(common, name);
        if (!k) k = find_key(keys, name);
        if (!k) {
            std::vector<std::string> valid = {"schema", "kind", "small"};
            for (const auto & c : common) valid.push_back(c.name);
            for (const auto & c : keys) valid.push_back(c.name);
            throw input_error(file, name, "unknown key for a " + kind + " scenario (valid: " + join(valid) + ")");
        }
        cfg[name] = check_value(file, name, *k, it.value());
    }
    for (const std::vector<key_def> * list : std::initializer_list<const std::vector<key_def> *>{&common, &keys}) {
        for (const auto & k : *list) {
            if (cfg.contains(k.name)) continue;
            if (k.def.is_null()) throw input_error(file, k.name, "missing (required for a " + kind + " scenario)");
            cfg[k.name] = k.def;
        }
    }
    check_merged(file, "", kind, cfg);
    json sm = json::object();
    if (j.contains("small")) {
        if (!j["small"].is_object()) throw input_error(file, "small", "must be an object of overrides");
        for (auto it = j["small"].begin(); it != j["small"].end(); ++it) {
            const key_def * k = find_key(keys, it.key());
            if (!k) {
                throw input_error(file, "small." + it.key(),
                                  "not a key \"small\" can override for a " + kind + " scenario (valid: " + join(key_names(keys)) + ")");
            }
            sm[it.key()] = check_value(file, "small." + it.key(), *k, it.value());
        }
        json merged = cfg;
        for (auto it = sm.begin(); it != sm.end(); ++it) merged[it.key()] = it.value();
        check_merged(file, "small.", kind, merged);
        if (small) cfg = merged;
    }
    cfg["small"] = sm;
    s.small = small;
    s.title = cfg["title"].get<std::string>();
    s.description = cfg["description"].get<std::string>();
    s.cfg = cfg;
    return s;
}

scenario scenario_load(const std::string & path, bool small) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw input_error(path, "file", "cannot open");
    std::stringstream ss;
    ss << f.rdbuf();
    return scenario_parse(ss.str(), path, small);
}

bool scenario_needs_model(const scenario & s) { return s.kind != "sim_quadratic" && s.kind != "sim_regimes"; }

std::string scenario_resolve_path(const std::string & path) {
    struct stat st;
    if (path.empty() || path[0] == '/' || stat(path.c_str(), &st) == 0) return path;
    const std::string alt = attnlab::data_path(path);
    return stat(alt.c_str(), &st) == 0 ? alt : path;
}

// ------------------------------------------------------------------ running

namespace {

using clk = std::chrono::steady_clock;
double secs_since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

void make_dirs(const std::string & dir) {
    std::string cur;
    std::stringstream ss(dir);
    std::string part;
    if (!dir.empty() && dir[0] == '/') cur = "/";
    while (std::getline(ss, part, '/')) {
        if (part.empty()) continue;
        cur += part + "/";
        if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) throw input_error(dir, "directory", "cannot create");
    }
}

// Temporary file, fsync, rename: readers never see half a file.

std::string fmt(const char * f, double x) {
    char b[64];
    std::snprintf(b, sizeof b, f, x);
    return b;
}

std::string csv_cell(const json & v) {
    std::string s;
    if (v.is_string()) s = v.get<std::string>();
    else if (v.is_null()) s = "";
    else if (v.is_number_float()) s = fmt("%.17g", v.get<double>());
    else s = v.dump();
    if (s.find_first_of(",\"\n") != std::string::npos) {
        std::string q = "\"";
        for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        return q + "\"";
    }
    return s;
}

// One stage of a run reported as the share [lo, hi] of the whole, so the bar
// and its ETA move forward only: the stage's code reports 0..1 on `sub`, a
// watcher maps that into the parent and passes a cancel down.
class stage_progress {
public:
    stage_progress(job_progress * parent, double lo, double hi) : parent_(parent), lo_(lo), hi_(hi) {
        if (!parent_) return;
        job_step(parent_, lo_, "");
        th_ = std::thread([this] {
            while (!stop_.load()) {
                relay();
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
    }
    ~stage_progress() {
        if (!parent_) return;
        stop_.store(true);
        th_.join();
        relay();
    }
    job_progress * get() { return parent_ ? &sub_ : nullptr; }

private:
    void relay() {
        if (parent_->cancelled()) sub_.cancel();
        parent_->report(lo_ + (hi_ - lo_) * std::min(1.0, std::max(0.0, sub_.fraction())), sub_.stage());
    }
    job_progress * parent_;
    double lo_, hi_;
    job_progress sub_;
    std::atomic<bool> stop_{false};
    std::thread th_;
};

// What a driver collects; scenario_run turns it into the files.
struct run_out {
    std::string dir;
    bool figures = true;
    json metrics = json::object();
    json inputs = json::object();
    json methods = json::array();
    json trained = json::array();
    json seeds = json::object();
    json timings = json::object();
    std::vector<std::string> csv_columns;
    json csv_rows = json::array();          // objects with csv_columns keys
    std::ostringstream md;                   // the report body after the header
    std::vector<std::string> figure_files;  // relative paths

    std::string fig(const std::string & name) {
        figure_files.push_back("figures/" + name);
        return dir + "/figures/" + name;
    }
    void figure_link(const std::string & caption, const std::string & rel) { md << "![" << caption << "](" << rel << ")\n\n"; }
};

// The model a scenario names, its tokenizer, and the input record.
struct model_ctx {
    llama_model m;
    std::unique_ptr<bpe_tokenizer> tok;
    std::string path;
};

void load_model(model_ctx & mc, const std::string & source, run_out & R, job_progress * progress) {
    job_step(progress, 0.0, "loading model");
    mc.path = scenario_resolve_path(source);
    if (file_kind_detect(mc.path) == file_kind::trace) {
        throw input_error(source, "source", "a scenario needs a model (GGUF or HF checkpoint), not a trace");
    }
    const auto t0 = clk::now();
    mc.m = llama_model_load(mc.path);
    mc.tok.reset(new bpe_tokenizer(tokenizer_load(mc.path)));
    tokenizer_check_model(*mc.tok, mc.m, mc.path);
    R.timings["model_load_s"] = secs_since(t0);
    R.inputs["model"] = {{"path", source}, {"id", mc.m.model_id}, {"sha256", mc.m.source_sha256}};
}

void record_text(run_out & R, const char * role, const text_source & t) { R.inputs[role] = {{"spec", t.spec}, {"sha256", t.sha256}}; }

// The first n tokens of a text (all for n <= 0; no BOS, as the sweep does).
std::vector<int32_t> first_tokens(const bpe_tokenizer & tok, const std::string & text, int64_t n) {
    std::vector<int32_t> ids = tok.encode(text);
    if (n > 0 && int64_t(ids.size()) > n) ids.resize(size_t(n));
    return ids;
}

void check_ctx_for_model(const llama_model & m, const std::vector<int> & ctxs, const std::string & source) {
    for (int c : ctxs) {
        llama_check_ctx(m, c, 2, source);
    }
}

// Where every model-backed kind starts: the scenario's text, refused unless
// it is evaluation text (`what` names the metrics in the message), and the
// model, both recorded in the manifest's inputs.
text_source open_eval_and_model(const scenario & s, const char * what, model_ctx & mc, run_out & R, job_progress * progress) {
    const json & c = s.cfg;
    text_source src = text_load(c["text"].get<std::string>());
    sweep_require_evaluation(src, what);
    record_text(R, "text", src);
    load_model(mc, c["source"], R, progress);
    return src;
}

// Sweep rows without wall times (those go to timings).
json row_metrics(const sweep_row & r) {
    json j = sweep_row_to_json(r);
    for (const char * k : {"predictor_s", "kernel_s", "dense_kernel_s", "seconds"}) j.erase(k);
    for (const char * k : {"key", "model_id", "model_sha256", "text_spec", "text_sha256"}) j.erase(k);
    return j;
}
json row_timings(const sweep_row & r) {
    return {{"method", r.method}, {"ctx", r.ctx}, {"predictor_s", r.predictor_s}, {"kernel_s", r.kernel_s},
            {"dense_kernel_s", r.dense_kernel_s}, {"seconds", r.seconds}};
}

const std::vector<std::string> k_row_columns = {"method", "method_name", "density_set", "ctx", "tokens", "windows",
                                                "ppl_dense", "ppl", "delta_ppl_rel", "top1_agreement", "token_density",
                                                "block_density", "predictor_flop_share", "mass_recall", "passkey_accuracy"};

// Replaces an absolute staging path inside method specs by the path relative
// to the snapshot, so metrics compare across runs.
std::string relative_spec(std::string spec, const std::string & dir) {
    const std::string pre = dir + "/";
    for (size_t p; (p = spec.find(pre)) != std::string::npos;) spec.erase(p, pre.size());
    return spec;
}

void md_rows_table(std::ostringstream & md, const std::vector<sweep_row> & rows, const std::string & dir) {
    md << "| method | ctx | block density | token density | ppl | Δppl | top-1 agr. | mass recall |";
    const bool pk = std::any_of(rows.begin(), rows.end(), [](const sweep_row & r) { return r.passkey_accuracy >= 0; });
    if (pk) md << " passkey |";
    md << "\n|---|---|---|---|---|---|---|---|" << (pk ? "---|" : "") << "\n";
    for (const auto & r : rows) {
        md << "| `" << relative_spec(r.method, dir) << "` | " << r.ctx << " | " << fmt("%.3f", r.block_density) << " | " << fmt("%.3f", r.token_density)
           << " | " << fmt("%.3f", r.ppl) << " | " << fmt("%+.2f%%", 100 * r.delta_ppl_rel) << " | "
           << fmt("%.3f", r.top1_agreement) << " | " << (r.mass_recall >= 0 ? fmt("%.3f", r.mass_recall) : "-") << " |";
        if (pk) md << " " << (r.passkey_accuracy >= 0 ? fmt("%.2f", r.passkey_accuracy) : "-") << " |";
        md << "\n";
    }
    md << "\n";
}

void add_rows(run_out & R, const std::vector<sweep_row> & rows, json & mrows) {
    R.csv_columns = k_row_columns;
    json trows = json::array();
    for (const auto & r : rows) {
        json j = row_metrics(r);
        j["method"] = relative_spec(r.method, R.dir);
        mrows.push_back(j);
        json c = j;
        R.csv_rows.push_back(c);
        json t = row_timings(r);
        t["method"] = j["method"];
        trows.push_back(t);
    }
    R.timings["rows"] = trows;
}

// ---- sweep

void run_sweep(const scenario & s, run_out & R, job_progress * progress) {
    const json & c = s.cfg;
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the scenario's metrics", mc, R, progress);
    const std::vector<int> ctxs = c["ctx"].get<std::vector<int>>();
    check_ctx_for_model(mc.m, ctxs, s.file);
    const int64_t max_tokens = c["max_tokens"].get<int64_t>();
    const std::string score = c["score"].get<std::string>();
    std::vector<sweep_task> tasks = sweep_plan(c["methods"].get<std::vector<std::string>>(), c["densities"].get<std::vector<double>>(),
                                               ctxs, src.sha256, mc.m.source_sha256, max_tokens, score);
    if (s.shard_count > 1) {
        tasks = sweep_shard(tasks, s.shard_index, s.shard_count);
        R.metrics["shard"] = {{"index", s.shard_index}, {"count", s.shard_count}};
    }
    for (const auto & t : tasks) R.methods.push_back(t.method);
    sweep_model_options opt;
    opt.passkey_depths = c["passkey_depths"].get<std::vector<double>>();
    opt.passkey_trials = c["passkey_trials"].get<int>();
    opt.mass_recall = c["mass_recall"].get<bool>();
    opt.score_spec = score;
    // the sweep runner seeds passkey trial k with 1 + k (the scenario's "seed" does not reach it)
    if (!opt.passkey_depths.empty()) R.seeds["passkey_seeds"] = {{"first", 1}, {"count", opt.passkey_trials}};
    auto runner = std::make_shared<sweep_model_runner>(mc.m, mc.tok.get(), src, first_tokens(*mc.tok, src.text, max_tokens), opt);
    const auto t0 = clk::now();
    sweep_outcome res = sweep_execute(tasks, R.dir, [runner](const sweep_task & t, job_progress * p) { return (*runner)(t, p); }, progress);
    R.timings["rows_s"] = secs_since(t0);
    json mrows = json::array();
    add_rows(R, res.rows, mrows);
    R.metrics["rows"] = mrows;
    // Pareto front of perplexity change vs block density (per ctx).
    json front = json::array();
    for (int ctx : ctxs) {
        std::vector<double> x, y;
        std::vector<std::string> name;
        for (const auto & r : res.rows) {
            if (r.ctx != ctx) continue;
            x.push_back(r.block_density);
            y.push_back(r.delta_ppl_rel);
            name.push_back(r.method);
        }
        for (int i : pareto_front(x, y)) front.push_back({{"ctx", ctx}, {"method", name[size_t(i)]}});
    }
    R.metrics["pareto_front"] = front;

    R.md << "## Results\n\nEvery method patched into every layer of " << mc.m.model_id << ", on " << src.spec << " ("
         << (res.rows.empty() ? 0 : res.rows[0].tokens) << " tokens, windows of ctx). Δppl is relative to dense on the same windows; "
         << "mass recall is the mean per-head share of dense softmax mass the selection keeps (first window).\n\n";
    md_rows_table(R.md, res.rows, R.dir);
    R.md << "Pareto front (lowest Δppl for its block density): ";
    for (size_t i = 0; i < front.size(); ++i) R.md << (i ? ", " : "") << "`" << front[i]["method"].get<std::string>() << "` (ctx " << front[i]["ctx"] << ")";
    R.md << "\n\n";
    if (R.figures && !res.rows.empty()) {
        make_dirs(R.dir + "/figures");
        for (const auto & f : sweep_write_figures(R.dir + "/figures", res.rows)) {
            const std::string base = f.substr(f.find_last_of('/') + 1);
            R.figure_files.push_back("figures/" + base);
            R.figure_link(base, "figures/" + base);
        }
    }
}

// ---- passkey

void run_passkey(const scenario & s, run_out & R, job_progress * progress) {
    const json & c = s.cfg;
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the passkey test", mc, R, progress);
    const std::vector<int> ctxs = c["ctx"].get<std::vector<int>>();
    check_ctx_for_model(mc.m, ctxs, s.file);
    const std::vector<double> depths = c["depths"].get<std::vector<double>>();
    const int trials = c["trials"].get<int>();
    const uint64_t seed = c["seed"].get<uint64_t>();
    R.seeds["passkey_seeds"] = {{"first", seed}, {"count", trials}};
    // sweep_plan expands methods x densities x ctx and canonicalises the specs.
    const std::vector<sweep_task> tasks = sweep_plan(c["methods"].get<std::vector<std::string>>(),
                                                     c["densities"].get<std::vector<double>>(), ctxs, src.sha256,
                                                     mc.m.source_sha256, 0);
    std::vector<std::string> specs;
    for (const auto & t : tasks) {
        if (std::find(specs.begin(), specs.end(), t.method) == specs.end()) specs.push_back(t.method);
    }
    for (const auto & sp : specs) R.methods.push_back(sp);
    const int total = int(tasks.size() * depths.size()) * trials;
    int done = 0;
    json rows = json::array(), summary = json::array();
    R.csv_columns = {"method", "ctx", "depth", "seed", "key", "needle_position", "digits_correct", "n_digits", "retrieved"};
    const auto t0 = clk::now();
    std::map<std::pair<std::string, int>, std::vector<double>> acc_by;   // (method, ctx) -> accuracy per depth
    for (const auto & t : tasks) {
        std::shared_ptr<const sparse_method> meth(method_create(t.method));
        sparse_attention_hook hook(meth);
        int ok_all = 0;
        std::vector<double> acc;
        for (double d : depths) {
            int ok = 0;
            for (int k = 0; k < trials; ++k) {
                job_step(progress, double(done) / total, t.method_name + " ctx " + std::to_string(t.ctx) + " depth " + fmt("%g", d));
                passkey_options o;
                o.ctx = t.ctx;
                o.depth = d;
                o.seed = seed + uint64_t(k);
                const passkey_trial r = passkey_run(mc.m, *mc.tok, src.text, o, &hook);
                done++;
                ok += r.retrieved;
                json row = {{"method", t.method},          {"ctx", r.ctx},
                            {"depth", r.depth},            {"seed", r.seed},
                            {"key", r.key},                {"needle_position", r.needle_position},
                            {"digits_correct", r.digits_correct}, {"n_digits", r.n_digits},
                            {"retrieved", r.retrieved}};
                rows.push_back(row);
                R.csv_rows.push_back(row);
            }
            acc.push_back(double(ok) / trials);
            ok_all += ok;
        }
        acc_by[{t.method, t.ctx}] = acc;
        // block density of the method's mask on this ctx, for the report
        double dens = 0;
        for (const auto & rec : hook.records()) dens += rec.block_density / double(hook.records().size());
        summary.push_back({{"method", t.method}, {"ctx", t.ctx}, {"accuracy", double(ok_all) / (trials * double(depths.size()))},
                           {"accuracy_by_depth", acc}, {"block_density", dens}});
    }
    R.timings["trials_s"] = secs_since(t0);
    R.metrics["trials"] = rows;
    R.metrics["summary"] = summary;
    R.metrics["depths"] = depths;

    R.md << "## Results\n\nA five-digit key hidden at each depth of " << src.spec << " filler, asked for at the end; retrieved = the greedy "
         << "answer has every digit right. " << trials << " trial(s) per depth; each method patched into every layer of "
         << mc.m.model_id << ". Block density is the mean over layers and heads of the method's mask on the prompts.\n\n";
    R.md << "| method | ctx | block density | accuracy |";
    for (double d : depths) R.md << " d=" << fmt("%g", d) << " |";
    R.md << "\n|---|---|---|---|";
    for (size_t i = 0; i < depths.size(); ++i) R.md << "---|";
    R.md << "\n";
    for (const auto & sm : summary) {
        R.md << "| `" << sm["method"].get<std::string>() << "` | " << sm["ctx"] << " | " << fmt("%.3f", sm["block_density"].get<double>())
             << " | " << fmt("%.2f", sm["accuracy"].get<double>()) << " |";
        for (const auto & a : sm["accuracy_by_depth"]) R.md << " " << fmt("%.2f", a.get<double>()) << " |";
        R.md << "\n";
    }
    R.md << "\n";
    if (R.figures) {
        make_dirs(R.dir + "/figures");
        for (int ctx : ctxs) {
            plot_spec p;
            p.title = "Passkey retrieval at ctx " + std::to_string(ctx);
            p.note = mc.m.model_id + ", " + src.spec + ", " + std::to_string(trials) + " trial(s) per depth";
            p.x_label = "needle depth (fraction of the filler)";
            p.y_label = "retrieval accuracy";
            p.y_min = -0.05;
            p.y_max = 1.05;
            int i = 0;
            for (const auto & sp : specs) {
                auto it = acc_by.find({sp, ctx});
                if (it == acc_by.end()) continue;
                plot_series se;
                se.label = sp;
                se.x = depths;
                se.y = it->second;
                se.color = plot_palette(i++);
                p.series.push_back(se);
            }
            const std::string name = "passkey_ctx" + std::to_string(ctx) + ".png";
            plot_write_png(R.fig(name), p);
            R.figure_link("passkey accuracy by depth, ctx " + std::to_string(ctx), "figures/" + name);
        }
    }
}

// ---- shared by the trained kinds

std::vector<qkv_capture> calibration_captures(const json & c, model_ctx & mc, run_out & R, job_progress * progress) {
    const text_source calib = text_load(c["calib_text"].get<std::string>());
    R.inputs["calib_text"] = {{"spec", calib.spec}, {"sha256", calib.sha256}};
    const auto t0 = clk::now();
    stage_progress st(progress, 0.0, 0.2);
    std::vector<qkv_capture> caps = calib_capture_windows(mc.m, *mc.tok, calib, c["ctx"].get<int>(), c["calib_windows"].get<int>(),
                                                          c["layers"].get<std::vector<int>>(), st.get());
    R.timings["calibration_capture_s"] = secs_since(t0);
    return caps;
}

std::vector<const qkv_capture *> capture_ptrs(std::vector<qkv_capture> & caps) {
    std::vector<const qkv_capture *> ptrs;
    for (auto & x : caps) ptrs.push_back(&x);
    return ptrs;
}

std::string sha_of_file(const std::string & path) { return sha256_file(path); }

void record_trained(run_out & R, const std::string & role, const std::string & rel, const std::string & calib_sha) {
    R.trained.push_back({{"role", role}, {"file", rel}, {"sha256", sha_of_file(R.dir + "/" + rel)}, {"calib_text_sha256", calib_sha}});
}

// Rows of specs at one ctx through the sweep's model runner (dense reference
// cached, every layer patched, recall on the first window's capture).
std::vector<sweep_row> eval_rows(const std::vector<std::string> & specs, int ctx, int windows, model_ctx & mc, const text_source & src,
                                 job_progress * progress, double lo, double hi) {
    std::vector<sweep_task> tasks;
    for (const auto & sp : specs) {
        auto t = sweep_plan({sp}, {}, {ctx}, src.sha256, mc.m.source_sha256, int64_t(ctx) * windows);
        tasks.insert(tasks.end(), t.begin(), t.end());
    }
    sweep_model_options o;
    o.mass_recall = true;
    sweep_model_runner runner(mc.m, mc.tok.get(), src, first_tokens(*mc.tok, src.text, int64_t(ctx) * windows), o);
    std::vector<sweep_row> rows;
    for (size_t i = 0; i < tasks.size(); ++i) {
        sweep_task t = tasks[i];
        t.progress_lo = lo + (hi - lo) * double(i) / tasks.size();
        t.progress_hi = lo + (hi - lo) * double(i + 1) / tasks.size();
        rows.push_back(runner(t, progress));
    }
    return rows;
}

// ---- trained_compare

void run_trained_compare(const scenario & s, run_out & R, job_progress * progress) {
    const json & c = s.cfg;
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the comparison", mc, R, progress);
    const int ctx = c["ctx"].get<int>(), B = c["block"].get<int>();
    check_ctx_for_model(mc.m, {ctx}, s.file);
    gate_params p;
    {
        std::vector<qkv_capture> caps = calibration_captures(c, mc, R, progress);
        const std::vector<const qkv_capture *> ptrs = capture_ptrs(caps);
        gate_train_options o;
        o.block = B;
        o.d_g = c["d_g"].get<int>();
        o.steps = c["steps"].get<int>();
        o.lr = c["lr"].get<double>();
        o.seed = c["seed"].get<uint64_t>();
        o.layers = c["layers"].get<std::vector<int>>();
        stage_progress st(progress, 0.2, 0.3);
        o.progress = st.get();
        const auto t0 = clk::now();
        p = gate_train(ptrs, o);
        R.timings["training_s"] = secs_since(t0);
    }
    R.seeds["gate_init"] = c["seed"];
    make_dirs(R.dir + "/trained");
    const std::string rel = "trained/learned_gate.safetensors";
    gate_save(R.dir + "/" + rel, p);
    record_trained(R, "learned_gate", rel, p.prov.calib_text_sha256);

    std::vector<std::string> specs;
    const std::vector<std::string> names = c["methods"].get<std::vector<std::string>>();
    const std::vector<double> dens = c["densities"].get<std::vector<double>>();
    for (double rho : dens) {
        for (const auto & n : names) {
            std::string sp = n + ":rho=" + fmt("%.17g", rho) + ",B=" + std::to_string(B);
            if (n == "learned_gate") sp += ",params=" + R.dir + "/" + rel;
            specs.push_back(sp);
        }
    }
    const std::vector<sweep_row> rows = eval_rows(specs, ctx, c["eval_windows"].get<int>(), mc, src, progress, 0.3, 1.0);
    for (const auto & r : rows) R.methods.push_back(relative_spec(r.method, R.dir));
    json mrows = json::array();
    add_rows(R, rows, mrows);
    json per_layer = json::array();
    for (size_t li = 0; li < p.layers.size(); ++li) {
        double a = 0, b = 0, v = 0;
        for (int h = 0; h < p.n_head; ++h) {
            a += p.initial_loss[li * p.n_head + h] / p.n_head;
            b += p.final_loss[li * p.n_head + h] / p.n_head;
            v += p.val_loss[li * p.n_head + h] / p.n_head;
        }
        per_layer.push_back({{"layer", p.layers[li]}, {"initial_kl", a}, {"final_kl", b}, {"val_kl", v}});
    }
    R.metrics["training"] = {{"heads", int(p.layers.size()) * p.n_head}, {"initial_kl", p.mean_initial_loss()},
                             {"final_kl", p.mean_final_loss()}, {"val_kl", p.mean_val_loss()}, {"val_windows", p.val_windows},
                             {"per_layer", per_layer}};
    R.metrics["rows"] = mrows;

    R.md << "## Training\n\nlearned_gate (B=" << B << ", d_g=" << p.d_g << ", " << p.steps << " Adam steps, lr " << p.lr << ") on "
         << c["calib_windows"] << " window(s) of " << ctx << " tokens of " << c["calib_text"].get<std::string>() << " ("
         << p.val_windows << " held out), " << p.layers.size() << " layers x " << p.n_head << " heads: block-mass KL "
         << fmt("%.4f", p.mean_initial_loss()) << " -> " << fmt("%.4f", p.mean_final_loss()) << " (held out "
         << fmt("%.4f", p.mean_val_loss()) << "). Parameters: [" << rel << "](" << rel << ").\n\n";
    R.md << "## Evaluation on " << src.spec << "\n\nEach method at the same rho (share of each query block's causal blocks kept; "
         << "block_topk and learned_gate always add the diagonal and block 0, oracle_topk keeps exact top keys per row), patched "
         << "into every layer" << (p.layers.size() < size_t(mc.m.cfg.n_layer) ? " (layers without a gate run block_topk)" : "")
         << "; " << c["eval_windows"] << " window(s) of " << ctx << " tokens.\n\n";
    md_rows_table(R.md, rows, R.dir);
    if (R.figures) {
        make_dirs(R.dir + "/figures");
        const auto chart = [&](const std::string & name, const std::string & title, const std::string & ylab,
                               const std::function<double(const sweep_row &)> & y) {
            plot_spec ps;
            ps.title = title;
            ps.note = mc.m.model_id + ", " + src.spec + ", ctx " + std::to_string(ctx) + ", B=" + std::to_string(B);
            ps.x_label = "rho (set)";
            ps.y_label = ylab;
            for (size_t k = 0; k < names.size(); ++k) {
                plot_series se;
                se.label = names[k];
                se.color = plot_palette(int(k));
                for (const auto & r : rows) {
                    if (r.method_name != names[k]) continue;
                    se.x.push_back(r.density_set);
                    se.y.push_back(y(r));
                }
                ps.series.push_back(se);
            }
            plot_write_png(R.fig(name), ps);
            R.figure_link(title, "figures/" + name);
        };
        chart("recall_vs_rho.png", "Attention-mass recall at equal rho", "mean per-head mass recall",
              [](const sweep_row & r) { return r.mass_recall; });
        chart("ppl_vs_rho.png", "Perplexity change at equal rho", "delta ppl (relative)",
              [](const sweep_row & r) { return r.delta_ppl_rel; });
        chart("block_density_vs_rho.png", "Realised block density", "block density", [](const sweep_row & r) { return r.block_density; });
        plot_spec pl;
        pl.title = "Gate training: block-mass KL per layer";
        pl.x_label = "layer";
        pl.y_label = "KL(target || gate), mean over heads";
        const char * lab[] = {"initial", "final (train)", "held out"};
        const char * key[] = {"initial_kl", "final_kl", "val_kl"};
        for (int k = 0; k < (p.val_windows > 0 ? 3 : 2); ++k) {
            plot_series se;
            se.label = lab[k];
            se.color = plot_palette(k);
            for (const auto & x : per_layer) {
                se.x.push_back(x["layer"].get<double>());
                se.y.push_back(x[key[k]].get<double>());
            }
            pl.series.push_back(se);
        }
        plot_write_png(R.fig("gate_training_kl.png"), pl);
        R.figure_link("gate training KL per layer", "figures/gate_training_kl.png");
    }
}

// ---- layer_adaptive

void run_layer_adaptive(const scenario & s, run_out & R, job_progress * progress) {
    const json & c = s.cfg;
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the comparison", mc, R, progress);
    const int ctx = c["ctx"].get<int>(), B = c["block"].get<int>();
    check_ctx_for_model(mc.m, {ctx}, s.file);
    recall_curves curves;
    {
        std::vector<qkv_capture> caps = calibration_captures(c, mc, R, progress);
        const std::vector<const qkv_capture *> ptrs = capture_ptrs(caps);
        const auto t0 = clk::now();
        stage_progress st(progress, 0.2, 0.3);
        curves = layer_adaptive_calibrate(ptrs, c["grid"].get<std::vector<double>>(), B, st.get());
        R.timings["calibration_s"] = secs_since(t0);
    }
    make_dirs(R.dir + "/trained");
    const std::vector<double> budgets = c["densities"].get<std::vector<double>>();
    json per_budget = json::array();
    std::vector<sweep_row> all_rows;
    std::vector<std::string> specs;
    std::vector<layer_adaptive_table> tables;
    for (double b : budgets) {
        layer_adaptive_table t = layer_adaptive_build(curves, b);
        const std::string tag = fmt("%g", b);
        const std::string rel = "trained/layer_adaptive_rho" + tag + ".json";
        layer_adaptive_save(R.dir + "/" + rel, t);
        record_trained(R, "layer_adaptive rho=" + tag, rel, t.prov.calib_text_sha256);
        // The seed's schedule, rescaled to the budget, as a table of its own.
        layer_adaptive_table seed = t;
        seed.head_rho = t.seed_scaled.rho;
        const std::string rel_seed = "trained/seed_schedule_rho" + tag + ".json";
        layer_adaptive_save(R.dir + "/" + rel_seed, seed);
        record_trained(R, "seed schedule rho=" + tag, rel_seed, t.prov.calib_text_sha256);
        const std::string bs = fmt("%.17g", b) + ",B=" + std::to_string(B);
        specs.push_back("layer_adaptive:rho=" + bs + ",table=" + R.dir + "/" + rel);
        specs.push_back("block_topk:rho=" + fmt("%.17g", t.uniform.rho.empty() ? b : t.uniform.rho[0]) + ",B=" + std::to_string(B));
        specs.push_back("layer_adaptive:rho=" + bs + ",table=" + R.dir + "/" + rel_seed);
        const auto alloc = [](const head_allocation & a) { return json{{"mean_recall", a.mean_recall}, {"mean_density", a.mean_density}}; };
        // At small ctx the diagonal and block 0 alone can exceed the budget.
        const bool reachable = t.greedy.mean_density <= b + 1e-9;
        per_budget.push_back({{"budget", b},
                              {"reachable", reachable},
                              {"calibration", {{"greedy", alloc(t.greedy)}, {"uniform", alloc(t.uniform)}, {"seed", alloc(t.seed)},
                                               {"seed_scaled", alloc(t.seed_scaled)}}},
                              {"uniform_rho", t.uniform.rho.empty() ? b : t.uniform.rho[0]}});
        tables.push_back(std::move(t));
    }
    const std::vector<sweep_row> rows = eval_rows(specs, ctx, c["eval_windows"].get<int>(), mc, src, progress, 0.3, 1.0);
    const char * roles[] = {"greedy", "uniform", "seed_scaled"};
    for (size_t i = 0; i < rows.size(); ++i) {
        R.methods.push_back(relative_spec(rows[i].method, R.dir));
        per_budget[i / 3]["evaluation"][roles[i % 3]] = {{"method", relative_spec(rows[i].method, R.dir)},
                                                         {"mass_recall", rows[i].mass_recall},
                                                         {"block_density", rows[i].block_density},
                                                         {"delta_ppl_rel", rows[i].delta_ppl_rel},
                                                         {"top1_agreement", rows[i].top1_agreement}};
    }
    json mrows = json::array();
    add_rows(R, rows, mrows);
    R.metrics["budgets"] = per_budget;
    R.metrics["rows"] = mrows;
    R.metrics["calibrated_heads"] = curves.heads.size();
    R.metrics["grid"] = curves.grid;

    R.md << "## Method\n\nPer-head recall curves of block_topk (B=" << B << ") on " << c["calib_windows"] << " window(s) of " << ctx
         << " tokens of " << c["calib_text"].get<std::string>() << "; at each budget (mean block density over heads) three "
         << "allocations: greedy (best recall gain per unit density), uniform (one rho for every head) and the seed's schedule "
         << "(rho linear in depth from 0.45 to 0.125, rescaled to the budget). Predicted on the calibration curves, then measured "
         << "on " << src.spec << " with each allocation patched into every layer.\n\n";
    R.md << "| budget | allocation | predicted recall | predicted density | measured recall | measured block density | Δppl | top-1 agr. |\n"
         << "|---|---|---|---|---|---|---|---|\n";
    for (const auto & pb : per_budget) {
        for (const char * role : roles) {
            const json & cal = pb["calibration"][role];
            const json & ev = pb["evaluation"][role];
            R.md << "| " << fmt("%g", pb["budget"].get<double>()) << " | " << role << " | " << fmt("%.4f", cal["mean_recall"].get<double>())
                 << " | " << fmt("%.4f", cal["mean_density"].get<double>()) << " | " << fmt("%.4f", ev["mass_recall"].get<double>())
                 << " | " << fmt("%.4f", ev["block_density"].get<double>()) << " | "
                 << fmt("%+.2f%%", 100 * ev["delta_ppl_rel"].get<double>()) << " | " << fmt("%.3f", ev["top1_agreement"].get<double>())
                 << " |\n";
        }
        if (!pb["reachable"].get<bool>()) {
            R.md << "| " << fmt("%g", pb["budget"].get<double>()) << " | (budget below the least block density block_topk reaches "
                 << "at this ctx and B: the diagonal and block 0 are always kept) | | | | | | |\n";
        }
        const json & sd = pb["calibration"]["seed"];
        R.md << "| " << fmt("%g", pb["budget"].get<double>()) << " | seed (as given) | " << fmt("%.4f", sd["mean_recall"].get<double>())
             << " | " << fmt("%.4f", sd["mean_density"].get<double>()) << " | - | - | - | - |\n";
    }
    R.md << "\n";
    if (R.figures) {
        make_dirs(R.dir + "/figures");
        plot_spec p;
        p.title = "Measured mass recall at each budget";
        p.note = mc.m.model_id + ", " + src.spec + ", ctx " + std::to_string(ctx);
        p.x_label = "budget (mean block density)";
        p.y_label = "mean per-head mass recall (evaluation)";
        for (int k = 0; k < 3; ++k) {
            plot_series se;
            se.label = roles[k];
            se.color = plot_palette(k);
            for (const auto & pb : per_budget) {
                se.x.push_back(pb["budget"].get<double>());
                se.y.push_back(pb["evaluation"][roles[k]]["mass_recall"].get<double>());
            }
            p.series.push_back(se);
        }
        plot_write_png(R.fig("recall_vs_budget.png"), p);
        R.figure_link("measured recall vs budget", "figures/recall_vs_budget.png");
        for (size_t bi = 0; bi < tables.size(); ++bi) {
            const layer_adaptive_table & t = tables[bi];
            plot_spec q;
            q.title = "Allotted block density per layer, budget " + fmt("%g", t.rho);
            q.x_label = "layer";
            q.y_label = "mean block density over the layer's heads (calibration)";
            const head_allocation * al[] = {&t.greedy, &t.uniform, &t.seed_scaled};
            for (int k = 0; k < 3; ++k) {
                plot_series se;
                se.label = roles[k];
                se.color = plot_palette(k);
                for (size_t li = 0; li < curves.layers.size(); ++li) {
                    double d = 0;
                    for (int h = 0; h < curves.n_head; ++h) d += al[k]->density[li * curves.n_head + h] / curves.n_head;
                    se.x.push_back(curves.layers[li]);
                    se.y.push_back(d);
                }
                q.series.push_back(se);
            }
            const std::string name = "layer_density_budget" + fmt("%g", t.rho) + ".png";
            plot_write_png(R.fig(name), q);
            R.figure_link(q.title, "figures/" + name);
        }
    }
}

// ---- simulated kinds

std::string si(double x, const char * unit) {
    const char * pre[] = {"", "k", "M", "G", "T", "P", "E"};
    int k = 0;
    while (std::fabs(x) >= 1000.0 && k < 6) {
        x /= 1000.0;
        k++;
    }
    return fmt("%.3g ", x) + pre[k] + unit;
}

std::string pow2_label(double x) {
    const double v = std::pow(2.0, x);
    if (v >= 1024 * 1024) return fmt("%gM", v / (1024 * 1024));
    if (v >= 1024) return fmt("%gk", v / 1024);
    return fmt("%g", v);
}

void run_sim_quadratic(const scenario & s, run_out & R, job_progress * progress) {
    const json & c = s.cfg;
    const model_preset m = model_preset_load(c["source"].get<std::string>());
    const hw_preset h = hw_preset_load(c["hw"].get<std::string>());
    R.inputs["model_preset"] = {{"name", m.name}, {"file", m.file}};
    R.inputs["hw_preset"] = {{"name", h.name}, {"file", h.file}};
    const std::vector<int> ctxs = c["ctx"].get<std::vector<int>>();
    const std::vector<double> dens = c["densities"].get<std::vector<double>>();
    R.methods.push_back("dense");
    for (double d : dens) R.methods.push_back("density:rho=" + fmt("%g", d));
    json rows = json::array();
    R.csv_columns = {"ctx", "score_bytes_naive_head", "score_bytes_naive_layer", "score_bytes_flash_layer", "kv_cache_bytes",
                     "mem_total_naive", "mem_total_flash", "fits_naive", "fits_flash", "attention_flop_share", "time_dense_s"};
    for (double d : dens) R.csv_columns.push_back("time_rho" + fmt("%g", d) + "_s");
    for (size_t i = 0; i < ctxs.size(); ++i) {
        job_step(progress, double(i) / ctxs.size(), "ctx " + std::to_string(ctxs[i]));
        sim_options o;
        o.ctx = ctxs[i];
        o.batch = c["batch"].get<int>();
        o.impl = attn_impl::naive;
        const sim_result rn = sim_run(m, h, sim_method(), o);
        o.impl = attn_impl::flash;
        const sim_result rf = sim_run(m, h, sim_method(), o);
        double attn = 0;
        for (const auto & comp : rf.layer) attn += comp.name == "attention" ? comp.flops : 0.0;
        json row = {{"ctx", ctxs[i]},
                    {"score_bytes_naive_head", rn.score_bytes_naive_head},
                    {"score_bytes_naive_layer", rn.score_bytes_naive_layer},
                    {"score_bytes_flash_layer", rf.score_bytes_flash_layer},
                    {"kv_cache_bytes", rf.mem_kv_cache},
                    {"mem_total_naive", rn.mem_total},
                    {"mem_total_flash", rf.mem_total},
                    {"fits_naive", rn.fits},
                    {"fits_flash", rf.fits},
                    {"attention_flop_share", rf.layer_flops > 0 ? attn / rf.layer_flops : 0.0},
                    {"time_dense_s", rf.time_s}};
        for (double d : dens) {
            const sim_result rs = sim_run(m, h, sim_method_parse("density:rho=" + fmt("%.17g", d)), o);
            row["time_rho" + fmt("%g", d) + "_s"] = rs.time_s;
        }
        rows.push_back(row);
        R.csv_rows.push_back(row);
    }
    R.metrics["label"] = "simulated";
    R.metrics["score_bytes_per_element"] = h.precision_bytes();
    R.metrics["rows"] = rows;

    R.md << "**SIMULATED** (core/sim roofline model; no measurement). " << m.name << " on " << h.name << " (" << h.precision
         << "), prefill of L tokens, batch " << c["batch"] << ". A naive (eager) implementation materialises the L x L score matrix "
         << "of every head (" << h.precision_bytes() << " bytes per element); flash-style attention keeps tiles on chip.\n\n";
    R.md << "| L | scores, one head (naive) | scores, one layer (naive) | flash, one layer | KV cache | total naive | total flash | attention share of layer FLOPs | dense prefill time |\n"
         << "|---|---|---|---|---|---|---|---|---|\n";
    for (const auto & r : rows) {
        R.md << "| " << r["ctx"] << " | " << si(r["score_bytes_naive_head"].get<double>(), "B") << " | "
             << si(r["score_bytes_naive_layer"].get<double>(), "B") << " | " << si(r["score_bytes_flash_layer"].get<double>(), "B")
             << " | " << si(r["kv_cache_bytes"].get<double>(), "B") << " | " << si(r["mem_total_naive"].get<double>(), "B")
             << (r["fits_naive"].get<bool>() ? "" : " (does not fit)") << " | " << si(r["mem_total_flash"].get<double>(), "B")
             << (r["fits_flash"].get<bool>() ? "" : " (does not fit)") << " | "
             << fmt("%.1f%%", 100 * r["attention_flop_share"].get<double>()) << " | " << fmt("%.4g s", r["time_dense_s"].get<double>())
             << " |\n";
    }
    R.md << "\nDoubling L doubles the KV cache but quadruples the naive score matrix: the quadratic wall.\n\n";
    if (R.figures && ctxs.size() >= 1) {
        make_dirs(R.dir + "/figures");
        std::vector<double> lx;
        for (int L : ctxs) lx.push_back(std::log2(double(L)));
        const auto series = [&](const std::string & label, const std::string & key, int color, bool dashed = false) {
            plot_series se;
            se.label = label;
            se.x = lx;
            for (const auto & r : rows) se.y.push_back(std::max(1e-30, r[key].get<double>()));
            se.color = plot_palette(color);
            se.dashed = dashed;
            return se;
        };
        plot_spec p;
        p.title = "SIMULATED: memory of the attention scores vs context";
        p.note = m.name + " on " + h.name + "; hardware memory " + fmt("%g GB", h.mem_gb);
        p.x_label = "context length L";
        p.y_label = "bytes";
        p.y_log = true;
        p.x_format = pow2_label;
        p.series = {series("naive scores, one head (L^2)", "score_bytes_naive_head", 0),
                    series("naive scores, one layer", "score_bytes_naive_layer", 1),
                    series("flash, one layer (row stats)", "score_bytes_flash_layer", 2),
                    series("KV cache (all layers)", "kv_cache_bytes", 3)};
        plot_series hbm;
        hbm.label = "GPU memory";
        hbm.x = {lx.front(), lx.back()};
        hbm.y = {h.mem_gb * 1e9, h.mem_gb * 1e9};
        hbm.dashed = true;
        hbm.marker = plot_marker::none;
        hbm.color = 0x888888;
        p.series.push_back(hbm);
        plot_write_png(R.fig("score_memory.png"), p);
        R.figure_link("score memory vs L", "figures/score_memory.png");
        plot_spec t;
        t.title = "SIMULATED: prefill time vs context";
        t.note = m.name + " on " + h.name + ", flash-style attention";
        t.x_label = "context length L";
        t.y_label = "seconds";
        t.y_log = true;
        t.x_format = pow2_label;
        t.series = {series("dense", "time_dense_s", 0)};
        for (size_t k = 0; k < dens.size(); ++k) {
            t.series.push_back(series("block density " + fmt("%g", dens[k]), "time_rho" + fmt("%g", dens[k]) + "_s", int(k) + 1));
        }
        plot_write_png(R.fig("prefill_time.png"), t);
        R.figure_link("prefill time vs L", "figures/prefill_time.png");
        plot_spec a;
        a.title = "SIMULATED: attention's share of a layer's FLOPs";
        a.x_label = "context length L";
        a.y_label = "share";
        a.x_format = pow2_label;
        a.y_min = 0;
        a.y_max = 1;
        a.series = {series("attention / layer", "attention_flop_share", 0)};
        plot_write_png(R.fig("attention_share.png"), a);
        R.figure_link("attention share of FLOPs", "figures/attention_share.png");
    }
}

void run_sim_regimes(const scenario & s, run_out & R, job_progress * progress) {
    const json & c = s.cfg;
    const model_preset m = model_preset_load(c["source"].get<std::string>());
    const hw_preset h = hw_preset_load(c["hw"].get<std::string>());
    const regime_table t = regime_table_load(c["table"].get<std::string>());
    R.inputs["model_preset"] = {{"name", m.name}, {"file", m.file}};
    R.inputs["hw_preset"] = {{"name", h.name}, {"file", h.file}};
    R.inputs["regime_table"] = {{"name", t.name}, {"file", t.file}, {"source", t.source}};
    for (const auto & rm : t.methods) R.methods.push_back(sim_method_spec(rm.method));
    sim_options o;
    o.phase = c["phase"].get<std::string>() == "decode" ? sim_phase::decode : sim_phase::prefill;
    std::vector<int64_t> ctxs;
    for (int x : c["ctx"].get<std::vector<int>>()) ctxs.push_back(x);
    job_step(progress, 0.0, "regimes");
    const std::vector<regime_row> rows = regimes_compute(m, h, t, o, ctxs);
    json jr = json::array();
    int agree = 0;
    R.csv_columns = {"ctx", "cheapest", "cheapest_family", "seed_rule", "agrees", "speedup_vs_dense"};
    for (const auto & rm : t.methods) R.csv_columns.push_back(rm.name + "_time_s");
    for (const auto & r : rows) {
        json cells = json::array();
        json csv = {{"ctx", r.ctx}, {"cheapest", r.cheapest}, {"cheapest_family", r.cheapest_family}, {"seed_rule", r.seed_rule},
                    {"agrees", r.agrees}, {"speedup_vs_dense", r.speedup_vs_dense}};
        for (const auto & cell : r.cells) {
            cells.push_back({{"method", cell.name}, {"family", cell.family}, {"spec", cell.spec}, {"block_density", cell.block_density},
                             {"time_s", cell.time_s}, {"fits", cell.fits}});
            csv[cell.name + "_time_s"] = cell.time_s;
        }
        jr.push_back({{"ctx", r.ctx}, {"cheapest", r.cheapest}, {"cheapest_family", r.cheapest_family}, {"seed_rule", r.seed_rule},
                      {"agrees", r.agrees}, {"speedup_vs_dense", r.speedup_vs_dense}, {"methods", cells}});
        R.csv_rows.push_back(csv);
        agree += r.agrees;
    }
    R.metrics["label"] = "simulated";
    R.metrics["seed_rule"] = "dense < 8k, window 8k-32k, block-sparse 32k-128k, learnable > 128k";
    R.metrics["agreement"] = agree;
    R.metrics["rows"] = jr;

    R.md << "**SIMULATED** regime map (core/sim): " << m.name << " on " << h.name << ", " << sim_phase_name(o.phase)
         << "; the least density each method needs comes from the table `" << t.file << "` (" << t.source << ").\n\n| L |";
    for (const auto & rm : t.methods) R.md << " " << rm.name << " |";
    R.md << " cheapest | seed's rule | |\n|---|";
    for (size_t i = 0; i < t.methods.size(); ++i) R.md << "---|";
    R.md << "---|---|---|\n";
    for (const auto & r : rows) {
        R.md << "| " << r.ctx << " |";
        for (const auto & cell : r.cells) R.md << " " << fmt("%.4g s", cell.time_s) << (cell.fits ? "" : "*") << " |";
        R.md << " " << r.cheapest << " | " << r.seed_rule << " | " << (r.agrees ? "agrees" : "differs") << " |\n";
    }
    R.md << "\n" << agree << " of " << rows.size() << " context lengths agree with the seed's rule; * = does not fit in "
         << fmt("%g", h.mem_gb) << " GB.\n\n";
    if (R.figures && !rows.empty()) {
        make_dirs(R.dir + "/figures");
        plot_spec p;
        p.title = "SIMULATED: time per method vs context";
        p.note = m.name + " on " + h.name + ", " + sim_phase_name(o.phase);
        p.x_label = "context length L";
        p.y_label = "seconds";
        p.y_log = true;
        p.x_format = pow2_label;
        for (size_t k = 0; k < t.methods.size(); ++k) {
            plot_series se;
            se.label = t.methods[k].name;
            se.color = plot_palette(int(k));
            for (const auto & r : rows) {
                se.x.push_back(std::log2(double(r.ctx)));
                se.y.push_back(std::max(1e-30, r.cells[k].time_s));
            }
            p.series.push_back(se);
        }
        plot_write_png(R.fig("regime_time.png"), p);
        R.figure_link("time per method vs L", "figures/regime_time.png");
        plot_spec q;
        q.title = "SIMULATED: speed-up of the cheapest method over dense";
        q.x_label = "context length L";
        q.y_label = "dense time / cheapest time";
        q.x_format = pow2_label;
        plot_series se;
        se.label = "cheapest / dense";
        se.color = plot_palette(0);
        for (const auto & r : rows) {
            se.x.push_back(std::log2(double(r.ctx)));
            se.y.push_back(r.speedup_vs_dense);
        }
        q.series = {se};
        plot_write_png(R.fig("regime_speedup.png"), q);
        R.figure_link("speed-up of the cheapest method", "figures/regime_speedup.png");
    }
}

// ---- claims

void run_claims(const scenario & s, run_out & R, job_progress * progress) {
    const json & c = s.cfg;
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the claims' measurements", mc, R, progress);
    claims_measure_options o;
    o.text = c["text"].get<std::string>();
    o.ctx = c["ctx"].get<int>();
    o.windows = c["windows"].get<int>();
    o.block = c["block"].get<int>();
    o.rho_grid = c["grid"].get<std::vector<double>>();
    o.ppl_rhos = c["densities"].get<std::vector<double>>();
    o.trained_specs = c["methods"].get<std::vector<std::string>>();
    o.progress = progress;
    const auto t0 = clk::now();
    const claims_report rep = claims_measure(mc.m, *mc.tok, o);
    R.timings["claims_s"] = secs_since(t0);
    // The claim rows' text embeds measured times: kept in the report and in
    // timings, not in the metrics. The numbers behind them (minus times) are.
    json data = rep.data;
    json e2e = json::array();
    if (data.contains("end_to_end")) {
        for (auto r : data["end_to_end"]) {
            if (r.is_object()) {
                for (const char * k : {"predictor_s", "kernel_s", "dense_kernel_s", "seconds"}) r.erase(k);
            }
            e2e.push_back(r);
        }
        data["end_to_end"] = e2e;
    }
    R.metrics["data"] = data;
    json exact = json::array(), status = json::array();
    for (const auto & e : rep.exact) {
        exact.push_back({{"seed", e.seed}, {"claim", e.claim}, {"quantity", e.quantity}, {"unit", e.unit}, {"kind", e.kind},
                         {"claimed", e.claimed}, {"exact", e.exact}, {"ratio", e.ratio}, {"verdict", e.verdict}});
    }
    for (const auto & r : rep.rows) status.push_back({{"seed", r.seed}, {"claim", r.claim}, {"status", r.status}});
    R.metrics["exact"] = exact;
    R.metrics["claim_status"] = status;
    json rows_text = json::array();
    for (const auto & r : rep.rows) rows_text.push_back({{"seed", r.seed}, {"claim", r.claim}, {"measured", r.measured}, {"how", r.how}});
    R.timings["claim_rows"] = rows_text;
    for (const auto & sp : o.trained_specs) R.methods.push_back(sp);
    R.methods.push_back("block_topk:B=" + std::to_string(o.block));
    R.methods.push_back("oracle_topk:B=" + std::to_string(o.block));
    R.csv_columns = {"seed", "claim", "status", "measured", "how"};
    for (const auto & r : rep.rows) {
        R.csv_rows.push_back({{"seed", r.seed}, {"claim", r.claim}, {"status", r.status}, {"measured", r.measured}, {"how", r.how}});
    }

    R.md << "## Seed claims vs measured\n\nOn " << mc.m.model_id << ", " << src.spec << ", ctx " << o.ctx << ", " << o.windows
         << " perplexity window(s), B=" << o.block << ".\n\n| seed | claim | measured here | status |\n|---|---|---|---|\n";
    const auto cell = [](std::string x) {
        for (auto & ch : x) ch = ch == '|' ? '/' : ch == '\n' ? ' ' : ch;
        return x.empty() ? std::string("-") : x;
    };
    for (const auto & r : rep.rows) {
        R.md << "| " << r.seed << " | " << cell(r.claim) << " | " << cell(r.measured) << " | " << cell(r.status + (r.how.empty() ? "" : ": " + r.how))
             << " |\n";
    }
    R.md << "\n## Exact arithmetic (sim/claims)\n\n| seed | quantity | claimed | exact | verdict |\n|---|---|---|---|---|\n";
    for (const auto & e : rep.exact) {
        R.md << "| " << e.seed << " | " << cell(e.quantity) << " | " << fmt("%.4g", e.claimed) << " " << e.unit << " | " << e.kind << " "
             << fmt("%.4g", e.exact) << " " << e.unit << " | " << cell(e.verdict) << " |\n";
    }
    R.md << "\n";
    if (R.figures && data.contains("rho_grid")) {
        make_dirs(R.dir + "/figures");
        plot_spec p;
        p.title = "block_topk mass recall vs density";
        p.note = mc.m.model_id + ", " + src.spec + ", ctx " + std::to_string(o.ctx);
        p.x_label = "rho (block density set)";
        p.y_label = "recall";
        p.y_min = 0;
        p.y_max = 1.02;
        plot_series a;
        a.label = "mean mass recall";
        a.x = data["rho_grid"].get<std::vector<double>>();
        a.y = data["block_topk_mean_recall"].get<std::vector<double>>();
        a.color = plot_palette(0);
        plot_series b = a;
        b.label = "share of heads with recall >= 0.95";
        b.y = data["block_topk_share_heads_recall_ge_095"].get<std::vector<double>>();
        b.color = plot_palette(1);
        p.series = {a, b};
        plot_write_png(R.fig("recall_curve.png"), p);
        R.figure_link("recall curve", "figures/recall_curve.png");
        plot_spec q;
        q.title = "Density for 95% mass recall, per layer (seed: early 40-50%, deep 10-15%)";
        q.x_label = "layer";
        q.y_label = "smallest grid rho with mean recall >= 0.95";
        plot_series l;
        l.label = "measured";
        const std::vector<double> lr = data["layer_rho_for_095"].get<std::vector<double>>();
        for (size_t i = 0; i < lr.size(); ++i) {
            l.x.push_back(double(i));
            l.y.push_back(lr[i]);
        }
        l.color = plot_palette(0);
        plot_series seed;
        seed.label = "seed schedule (0.45 -> 0.125)";
        seed.x = {0.0, double(std::max<size_t>(1, lr.size()) - 1)};
        seed.y = {0.45, 0.125};
        seed.dashed = true;
        seed.marker = plot_marker::none;
        seed.color = 0x888888;
        q.series = {l, seed};
        plot_write_png(R.fig("layer_profile.png"), q);
        R.figure_link("density for 95% recall per layer", "figures/layer_profile.png");
    }
}

} // namespace

json scenario_run(const scenario & s, const std::string & out_dir, job_progress * progress) {
    const auto t0 = clk::now();
    make_dirs(out_dir);
    run_out R;
    R.dir = out_dir;
    const std::vector<std::string> outputs = s.cfg["outputs"].get<std::vector<std::string>>();
    const auto want = [&](const char * o) { return std::find(outputs.begin(), outputs.end(), o) != outputs.end(); };
    R.figures = want("figures");
    R.seeds["scenario"] = s.cfg["seed"];
    if (s.shard_count > 1 && s.kind != "sweep") {
        throw input_error(s.file, "shard", "only sweep scenarios split into shards (this one is " + s.kind + ")");
    }
    if (s.kind == "sweep") run_sweep(s, R, progress);
    else if (s.kind == "passkey") run_passkey(s, R, progress);
    else if (s.kind == "trained_compare") run_trained_compare(s, R, progress);
    else if (s.kind == "layer_adaptive") run_layer_adaptive(s, R, progress);
    else if (s.kind == "sim_quadratic") run_sim_quadratic(s, R, progress);
    else if (s.kind == "sim_regimes") run_sim_regimes(s, R, progress);
    else if (s.kind == "claims") run_claims(s, R, progress);
    else throw input_error(s.file, "kind", "'" + s.kind + "' has no runner");
    job_step(progress, 1.0, "writing report");
    R.timings["total_s"] = secs_since(t0);
    R.timings["threads"] = omp_get_max_threads();

    // results.csv (the sweep kind's is written row by row by sweep_execute)
    if (want("csv") && s.kind != "sweep") {
        std::string csv;
        for (size_t i = 0; i < R.csv_columns.size(); ++i) csv += (i ? "," : "") + R.csv_columns[i];
        csv += "\n";
        for (const auto & r : R.csv_rows) {
            for (size_t i = 0; i < R.csv_columns.size(); ++i) {
                csv += (i ? "," : "") + (r.contains(R.csv_columns[i]) ? csv_cell(r[R.csv_columns[i]]) : std::string());
            }
            csv += "\n";
        }
        write_file_atomic(out_dir + "/results.csv", csv);
    }
    if (want("json")) write_file_atomic(out_dir + "/results.json", json{{"kind", s.kind}, {"metrics", R.metrics}}.dump(2) + "\n");
    json report = {{"scenario", s.cfg},   {"small", s.small},   {"inputs", R.inputs}, {"methods", R.methods},
                   {"trained", R.trained}, {"seeds", R.seeds},  {"threads", omp_get_max_threads()},
                   {"metrics", R.metrics}, {"timings", R.timings}, {"figures", R.figure_files}};
    write_file_atomic(out_dir + "/report.json", report.dump(2) + "\n");
    if (want("report")) {
        std::ostringstream md;
        md << "# " << s.title << "\n\n" << s.description << "\n\n";
        md << "Scenario `" << (s.file.empty() ? "(text)" : s.file.substr(s.file.find_last_of('/') + 1)) << "`, kind `" << s.kind << "`"
           << (s.small ? ", **small** (CI) size" : ", full size") << ". ";
        if (R.inputs.contains("model")) {
            md << "Model " << R.inputs["model"]["id"].get<std::string>() << " (sha256 " << R.inputs["model"]["sha256"].get<std::string>().substr(0, 12)
               << "…). ";
        }
        if (R.inputs.contains("text")) md << "Text " << R.inputs["text"]["spec"].get<std::string>() << ". ";
        md << "Numbers: [results.csv](results.csv), [results.json](results.json), [report.json](report.json).\n\n";
        md << R.md.str();
        md << "## Run\n\n" << fmt("%.1f", R.timings["total_s"].get<double>()) << " s wall on " << omp_get_max_threads()
           << " thread(s) (timings are in report.json, not in the metrics).\n\n<details><summary>Scenario as run</summary>\n\n```json\n"
           << s.cfg.dump(2) << "\n```\n</details>\n";
        write_file_atomic(out_dir + "/report.md", md.str());
    }
    return R.metrics;
}

} // namespace attnlab

namespace attnlab {

scenario scenario_from_json(const nlohmann::json & cfg, const std::string & file) { return scenario_parse(cfg.dump(), file, false); }

nlohmann::json scenario_run_snapshot(const scenario & s, const std::string & out_dir, bool overwrite, job_progress * progress) {
    snapshot_writer w(out_dir, overwrite);
    scenario_run(s, w.staging_dir(), progress);
    // report.json holds everything the manifest records (written by scenario_run).
    std::ifstream f(w.staging_dir() + "/report.json");
    std::stringstream ss;
    ss << f.rdbuf();
    const nlohmann::json rep = nlohmann::json::parse(ss.str());
    nlohmann::json man;
    for (const char * k : {"scenario", "inputs", "methods", "trained", "seeds", "threads", "metrics", "timings"}) man[k] = rep[k];
    man["small"] = s.small;
    return w.commit(man);
}

} // namespace attnlab
