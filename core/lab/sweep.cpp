// The trade-off sweep (see sweep.h): planning, resumable row files, the
// Pareto front and the runner that measures a row on a real model.
#include "lab/sweep.h"
#include "base/atomic_write.h"
#include "base/dir_lock.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include <Eigen/Core>

#include "base/error.h"
#include "base/json_read.h"
#include "base/sha256.h"
#include "data/capture.h"
#include "base/job.h"
#include "methods/method.h"
#include "methods/registry_trained.h"
#include "metrics/passkey.h"
#include "metrics/perplexity.h"
#include "model/llama_gpu_api.h"
#include "model/llama.h"
#include "model/tokenizer.h"

namespace attnlab {

// ---- planning ----

// A method whose budget comes from its file (layer_adaptive: one table per
// budget, and method_create refuses another rho) is not expanded over the
// densities; its rho is only recorded as the row's density.
static bool density_fixed_by_file(const std::string & method_name) {
    const method_info * info = method_find(method_name);
    return info && info->budget_from_file;
}

std::string sweep_density_key(const std::string & method_name) {
    const method_info * info = method_find(method_name);
    if (!info || density_fixed_by_file(method_name)) return "";
    // The registry names the kept fraction "rho"; "density" is accepted for
    // methods that may call it so.
    for (const char * k : {"rho", "density"}) {
        for (const auto & p : info->params) {
            if (p.key == k && p.kind == method_param::real) return k;
        }
    }
    return "";
}

std::string sweep_row_key(const std::string & method_spec, int ctx, const std::string & text_sha256,
                          const std::string & model_sha256, int64_t max_tokens, const std::string & score_spec,
                          const std::string & params_sha256, const std::string & device) {
    // The token cap, the score function and the device (bf16 on the GPU)
    // change what a row measures, so they are part of the key beside the
    // method, ctx, text and model (cpu adds nothing: older keys stay valid).
    return method_spec + "|score=" + score_spec + "|ctx=" + std::to_string(ctx) + "|text=" + text_sha256 +
           "|model=" + model_sha256 + "|max_tokens=" + std::to_string(max_tokens) +
           (params_sha256.empty() ? "" : "|params=" + params_sha256) +
           (device.empty() || device == "cpu" ? "" : "|device=" + device);
}

std::vector<sweep_task> sweep_plan(const std::vector<std::string> & methods, const std::vector<double> & densities,
                                   const std::vector<int> & ctxs, const std::string & text_sha256,
                                   const std::string & model_sha256, int64_t max_tokens, const std::string & score_spec,
                                   const std::string & device) {
    if (methods.empty()) throw input_error("--methods", "methods", "empty list");
    if (device != "cpu" && device != "cuda") throw input_error("--device", "device", "cpu or cuda, not '" + device + "'");
    if (ctxs.empty()) throw input_error("--ctx", "ctx", "empty list");
    for (double d : densities) {
        if (!(d > 0.0 && d <= 1.0)) throw input_error("--densities", "densities", "density " + method_real_text(d) + " is outside (0, 1]");
    }
    for (int c : ctxs) {
        if (c < 2) throw input_error("--ctx", "ctx", "context length " + std::to_string(c) + " is below 2");
    }
    const std::string score_canon = score_spec.empty() ? "softmax" : score_spec;
    // Specs resolved once: bad names/keys fail before any work.
    struct variant {
        std::string spec, name;
        double density;
        std::string params_file, params_sha256, calib_text_sha256;
    };
    std::vector<variant> vars;
    std::map<std::string, std::string> file_sha;   // a parameter file is hashed once per plan
    const auto add_variant = [&](const sparse_method & m, double d) {
        variant v{m.spec(), m.name(), d, "", "", ""};
        if (const trained_provenance * p = method_provenance(m)) {
            v.params_file = p->file;
            v.calib_text_sha256 = p->calib_text_sha256;
            if (!p->file.empty()) {
                auto it = file_sha.find(p->file);
                if (it == file_sha.end()) it = file_sha.emplace(p->file, sha256_file(p->file)).first;
                v.params_sha256 = it->second;
            }
        }
        vars.push_back(v);
    };
    for (const std::string & text : methods) {
        method_spec ms = method_spec_parse(text);
        const std::string dkey = sweep_density_key(ms.name);
        if (dkey.empty() || densities.empty()) {
            auto m = method_create(ms);
            const std::string rkey = !dkey.empty() ? dkey : density_fixed_by_file(m->name()) ? "rho" : "";
            double d = -1.0;
            if (!rkey.empty()) d = std::strtod(m->spec().substr(m->spec().find(rkey + "=") + rkey.size() + 1).c_str(), nullptr);
            add_variant(*m, d);
            continue;
        }
        for (double d : densities) {
            method_spec v = ms;
            bool found = false;
            for (auto & kv : v.args) {
                if (kv.first == dkey) {
                    kv.second = method_real_text(d);
                    found = true;
                }
            }
            if (!found) v.args.push_back({dkey, method_real_text(d)});
            v.text = method_spec_format(v);
            auto m = method_create(v);
            add_variant(*m, d);
        }
    }
    // ctx-major: rows at one ctx share the dense reference and the capture.
    std::vector<sweep_task> tasks;
    std::set<std::string> seen;
    for (int c : ctxs) {
        for (const auto & v : vars) {
            sweep_task t;
            t.method = v.spec;
            t.method_name = v.name;
            t.density_set = v.density;
            t.ctx = c;
            t.params_file = v.params_file;
            t.params_sha256 = v.params_sha256;
            t.calib_text_sha256 = v.calib_text_sha256;
            t.key = sweep_row_key(v.spec, c, text_sha256, model_sha256, max_tokens, score_canon, v.params_sha256, device);
            if (seen.insert(t.key).second) tasks.push_back(t);
        }
    }
    return tasks;
}

// ---- row formats ----

static const char * const k_csv_columns[] = {
    "method", "method_name", "score", "density_set", "ctx", "tokens", "windows", "ppl_dense", "ppl", "delta_ppl",
    "delta_ppl_rel", "top1_agreement", "token_density", "block_density", "predictor_s", "kernel_s",
    "dense_kernel_s", "predictor_flop_share", "mass_recall", "passkey_accuracy", "passkey_trials", "seconds",
    "model_id", "model_sha256", "text", "text_sha256", "key", "params_file", "params_sha256", "calib_text_sha256",
    "device", "device_name", "device_bytes_peak", "dense_device_bytes_peak", "selection_bytes"};

std::string sweep_csv_header() {
    std::string r;
    for (const char * c : k_csv_columns) r += (r.empty() ? "" : ",") + std::string(c);
    return r;
}

// RFC 4180 quoting for fields that need it (specs hold commas).
static std::string csv_field(const std::string & s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string r = "\"";
    for (char c : s) {
        if (c == '"') r += '"';
        r += c;
    }
    return r + "\"";
}

static std::string num(double x) {
    if (!std::isfinite(x)) return std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", x);
    return buf;
}

std::string sweep_csv_line(const sweep_row & r) {
    std::vector<std::string> f = {csv_field(r.method), r.method_name, csv_field(r.score), num(r.density_set),
                                  std::to_string(r.ctx), std::to_string(r.tokens), std::to_string(r.windows),
                                  num(r.ppl_dense), num(r.ppl), num(r.delta_ppl), num(r.delta_ppl_rel),
                                  num(r.top1_agreement), num(r.token_density), num(r.block_density),
                                  num(r.predictor_s), num(r.kernel_s), num(r.dense_kernel_s),
                                  num(r.predictor_flop_share), num(r.mass_recall), num(r.passkey_accuracy),
                                  std::to_string(r.passkey_trials), num(r.seconds), csv_field(r.model_id),
                                  r.model_sha256, csv_field(r.text_spec), r.text_sha256, csv_field(r.key),
                                  csv_field(r.params_file), r.params_sha256, r.calib_text_sha256, r.device,
                                  csv_field(r.device_name), std::to_string(r.device_bytes_peak),
                                  std::to_string(r.dense_device_bytes_peak), std::to_string(r.selection_bytes)};
    std::string line;
    for (size_t i = 0; i < f.size(); ++i) line += (i ? "," : "") + f[i];
    return line;
}

// A non-finite metric (a diverged run's ppl) is a string, "nan", "inf" or
// "-inf", that reads back as itself: JSON has no NaN, and nlohmann writes it
// as null, which no later sweep or merge of the directory could read. The
// row's "non_finite" lists such fields, so a reader sees them at once.
static nlohmann::json metric_json(double x, const char * field, std::vector<std::string> & non_finite) {
    if (std::isfinite(x)) return x;
    if (std::find(non_finite.begin(), non_finite.end(), field) == non_finite.end()) non_finite.push_back(field);
    return num(x);
}

static nlohmann::json metrics_json(const std::vector<double> & v, const char * field, std::vector<std::string> & non_finite) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(metric_json(x, field, non_finite));
    return a;
}

static double metric_from_json(const nlohmann::json & j) {
    if (j.is_number()) return j.get<double>();
    if (j.is_null()) return std::nan("");   // how NaN was written before: such directories read again
    if (j.is_string()) {
        const std::string s = j.get<std::string>();
        if (s == "nan") return std::nan("");
        if (s == "inf") return HUGE_VAL;
        if (s == "-inf") return -HUGE_VAL;
    }
    throw std::invalid_argument("expected a number, \"nan\", \"inf\" or \"-inf\", got " + j.dump());
}

static double metric_at(const nlohmann::json & j, const char * key) {
    try {
        return metric_from_json(j.at(key));
    } catch (const std::invalid_argument & e) {
        throw std::invalid_argument(std::string(key) + ": " + e.what());
    }
}

static std::vector<double> metrics_at(const nlohmann::json & j, const char * key) {
    std::vector<double> v;
    for (const auto & x : j.at(key)) {
        try {
            v.push_back(metric_from_json(x));
        } catch (const std::invalid_argument & e) {
            throw std::invalid_argument(std::string(key) + ": " + e.what());
        }
    }
    return v;
}

nlohmann::json sweep_row_to_json(const sweep_row & r) {
    nlohmann::json j;
    std::vector<std::string> non_finite;
    j["key"] = r.key;
    j["method"] = r.method;
    j["method_name"] = r.method_name;
    j["score"] = r.score;
    j["density_set"] = metric_json(r.density_set, "density_set", non_finite);
    j["ctx"] = r.ctx;
    j["model_id"] = r.model_id;
    j["model_sha256"] = r.model_sha256;
    j["text"] = r.text_spec;
    j["text_sha256"] = r.text_sha256;
    j["tokens"] = r.tokens;
    j["windows"] = r.windows;
    j["ppl_dense"] = metric_json(r.ppl_dense, "ppl_dense", non_finite);
    j["ppl"] = metric_json(r.ppl, "ppl", non_finite);
    j["delta_ppl"] = metric_json(r.delta_ppl, "delta_ppl", non_finite);
    j["delta_ppl_rel"] = metric_json(r.delta_ppl_rel, "delta_ppl_rel", non_finite);
    j["top1_agreement"] = metric_json(r.top1_agreement, "top1_agreement", non_finite);
    j["token_density"] = metric_json(r.token_density, "token_density", non_finite);
    j["block_density"] = metric_json(r.block_density, "block_density", non_finite);
    j["predictor_s"] = metric_json(r.predictor_s, "predictor_s", non_finite);
    j["kernel_s"] = metric_json(r.kernel_s, "kernel_s", non_finite);
    j["dense_kernel_s"] = metric_json(r.dense_kernel_s, "dense_kernel_s", non_finite);
    j["predictor_flop_share"] = metric_json(r.predictor_flop_share, "predictor_flop_share", non_finite);
    j["mass_recall"] = metric_json(r.mass_recall, "mass_recall", non_finite);
    j["passkey_accuracy"] = metric_json(r.passkey_accuracy, "passkey_accuracy", non_finite);
    j["passkey_trials"] = r.passkey_trials;
    j["seconds"] = metric_json(r.seconds, "seconds", non_finite);
    j["layer_token_density"] = metrics_json(r.layer_token_density, "layer_token_density", non_finite);
    j["layer_block_density"] = metrics_json(r.layer_block_density, "layer_block_density", non_finite);
    j["params_file"] = r.params_file;
    j["params_sha256"] = r.params_sha256;
    j["calib_text_sha256"] = r.calib_text_sha256;
    j["device"] = r.device;
    j["device_name"] = r.device_name;
    j["device_bytes_peak"] = r.device_bytes_peak;
    j["dense_device_bytes_peak"] = r.dense_device_bytes_peak;
    j["selection_bytes"] = r.selection_bytes;
    if (!non_finite.empty()) j["non_finite"] = non_finite;
    return j;
}

sweep_row sweep_row_from_json(const nlohmann::json & j) {
    sweep_row r;
    r.key = j.at("key").get<std::string>();
    r.method = j.at("method").get<std::string>();
    r.method_name = j.at("method_name").get<std::string>();
    r.score = j.value("score", std::string("softmax"));
    r.density_set = metric_at(j, "density_set");
    r.ctx = j.at("ctx").get<int>();
    r.model_id = j.value("model_id", std::string());
    r.model_sha256 = j.at("model_sha256").get<std::string>();
    r.text_spec = j.value("text", std::string());
    r.text_sha256 = j.at("text_sha256").get<std::string>();
    r.tokens = j.at("tokens").get<int64_t>();
    r.windows = j.at("windows").get<int>();
    r.ppl_dense = metric_at(j, "ppl_dense");
    r.ppl = metric_at(j, "ppl");
    r.delta_ppl = metric_at(j, "delta_ppl");
    r.delta_ppl_rel = metric_at(j, "delta_ppl_rel");
    r.top1_agreement = metric_at(j, "top1_agreement");
    r.token_density = metric_at(j, "token_density");
    r.block_density = metric_at(j, "block_density");
    r.predictor_s = metric_at(j, "predictor_s");
    r.kernel_s = metric_at(j, "kernel_s");
    r.dense_kernel_s = metric_at(j, "dense_kernel_s");
    r.predictor_flop_share = metric_at(j, "predictor_flop_share");
    r.mass_recall = metric_at(j, "mass_recall");
    r.passkey_accuracy = metric_at(j, "passkey_accuracy");
    r.passkey_trials = j.at("passkey_trials").get<int>();
    r.seconds = metric_at(j, "seconds");
    r.layer_token_density = metrics_at(j, "layer_token_density");
    r.layer_block_density = metrics_at(j, "layer_block_density");
    // absent in rows written before trained methods were swept
    r.params_file = j.value("params_file", std::string());
    r.params_sha256 = j.value("params_sha256", std::string());
    r.calib_text_sha256 = j.value("calib_text_sha256", std::string());
    // absent in rows written before the GPU sweep
    r.device = j.value("device", std::string("cpu"));
    r.device_name = j.value("device_name", std::string());
    r.device_bytes_peak = j.value("device_bytes_peak", int64_t(-1));
    r.dense_device_bytes_peak = j.value("dense_device_bytes_peak", int64_t(-1));
    r.selection_bytes = j.value("selection_bytes", int64_t(-1));
    return r;
}

// ---- files ----

static std::string jsonl_path(const std::string & dir) { return dir + "/results.jsonl"; }
static std::string csv_path(const std::string & dir) { return dir + "/results.csv"; }

static std::string read_file_text(const std::string & path, bool * exists) {
    std::ifstream f(path, std::ios::binary);
    *exists = bool(f);
    if (!f) return "";
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// One write() of the whole line, then fsync: a crash leaves either the full
// line or a prefix of it (which sweep_load_rows cuts off).
static void append_synced(const std::string & path, const std::string & text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) throw input_error(path, "file", "cannot open for appending");
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n <= 0) {
            ::close(fd);
            throw input_error(path, "file", "write failed");
        }
        off += size_t(n);
    }
    ::fsync(fd);
    ::close(fd);
}


std::vector<sweep_row> sweep_load_rows(const std::string & dir) {
    bool exists = false;
    const std::string path = jsonl_path(dir);
    std::string text = read_file_text(path, &exists);
    std::vector<sweep_row> rows;
    if (!exists || text.empty()) return rows;
    // An unterminated last line is the trace of a crash mid-append: drop it.
    const size_t last_nl = text.rfind('\n');
    const size_t keep = last_nl == std::string::npos ? 0 : last_nl + 1;
    if (keep < text.size()) {
        if (::truncate(path.c_str(), off_t(keep)) != 0) throw input_error(path, "file", "cannot cut a partial last line");
        text.resize(keep);
    }
    size_t b = 0;
    int line_no = 0;
    while (b < text.size()) {
        size_t e = text.find('\n', b);
        std::string line = text.substr(b, e - b);
        b = e + 1;
        line_no++;
        if (line.empty()) continue;
        try {
            rows.push_back(sweep_row_from_json(json_parse(path, "line " + std::to_string(line_no), line)));
        } catch (const std::exception & ex) {
            throw input_error(path, "line " + std::to_string(line_no), std::string("not a sweep row: ") + ex.what());
        }
    }
    return rows;
}

void sweep_append_row(const std::string & dir, const sweep_row & r) {
    append_synced(jsonl_path(dir), sweep_row_to_json(r).dump() + "\n");
    bool exists = false;
    read_file_text(csv_path(dir), &exists);
    std::string line = sweep_csv_line(r) + "\n";
    if (!exists) line = sweep_csv_header() + "\n" + line;
    append_synced(csv_path(dir), line);
}

void sweep_rewrite_csv(const std::string & dir, const std::vector<sweep_row> & rows) {
    std::string text = sweep_csv_header() + "\n";
    for (const auto & r : rows) text += sweep_csv_line(r) + "\n";
    write_file_atomic(csv_path(dir), text);
}

sweep_outcome sweep_execute(const std::vector<sweep_task> & tasks, const std::string & dir,
                            const sweep_row_runner & runner, job_progress * progress) {
    // One writer: a second sweep on the directory is refused, naming the first.
    const dir_lock lock(dir, dir_lock::directory, "out");
    std::vector<sweep_row> old = sweep_load_rows(dir);
    std::map<std::string, size_t> by_key;
    for (size_t i = 0; i < old.size(); ++i) by_key[old[i].key] = i;
    // The CSV follows the JSONL exactly (a crash between the two appends
    // would otherwise leave it a row ahead or behind).
    sweep_rewrite_csv(dir, old);

    sweep_outcome out;
    std::vector<const sweep_task *> todo;
    for (const auto & t : tasks) {
        if (!by_key.count(t.key)) todo.push_back(&t);
    }
    const int n_total = int(tasks.size());
    const int n_before = n_total - int(todo.size());
    int done = n_before;
    for (const sweep_task * t : todo) {
        sweep_task tt = *t;
        tt.progress_lo = double(done) / n_total;
        tt.progress_hi = double(done + 1) / n_total;
        job_step(progress, tt.progress_lo, tt.method + " ctx " + std::to_string(tt.ctx));
        const auto t0 = std::chrono::steady_clock::now();
        sweep_row r = runner(tt, progress);
        r.key = tt.key;
        r.method = tt.method;
        r.method_name = tt.method_name;
        r.density_set = tt.density_set;
        r.ctx = tt.ctx;
        r.params_file = tt.params_file;
        r.params_sha256 = tt.params_sha256;
        r.calib_text_sha256 = tt.calib_text_sha256;
        if (r.seconds <= 0.0) r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        sweep_append_row(dir, r);
        by_key[r.key] = old.size();
        old.push_back(r);
        out.ran++;
        done++;
    }
    job_step(progress, 1.0, "done");
    for (const auto & t : tasks) out.rows.push_back(old[by_key.at(t.key)]);
    out.reused = n_before;
    return out;
}

// ---- sharding and merging ----

static void shard_check(int index, int count) {
    if (count < 1) throw input_error("--shard", "shard", "the shard count must be at least 1, got " + std::to_string(count));
    if (index < 0 || index >= count) {
        throw input_error("--shard", "shard", "the shard index must be within 0.." + std::to_string(count - 1) + ", got " +
                                                  std::to_string(index));
    }
}

sweep_shard_spec sweep_shard_parse(const std::string & text) {
    const size_t slash = text.find('/');
    const auto whole = [&](const std::string & s, int * v) {
        if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
        *v = std::atoi(s.c_str());
        return true;
    };
    sweep_shard_spec r;
    if (slash == std::string::npos || !whole(text.substr(0, slash), &r.index) || !whole(text.substr(slash + 1), &r.count)) {
        throw input_error("--shard", "shard", "'" + text + "' is not I/N (0-based shard I of N, e.g. 0/4)");
    }
    shard_check(r.index, r.count);
    return r;
}

std::vector<sweep_task> sweep_shard(const std::vector<sweep_task> & tasks, int index, int count) {
    shard_check(index, count);
    std::vector<sweep_task> out;
    for (size_t i = size_t(index); i < tasks.size(); i += size_t(count)) out.push_back(tasks[i]);
    return out;
}

// The first key whose values differ between two rows' JSON ("" when equal).
static std::string first_difference(const nlohmann::json & a, const nlohmann::json & b) {
    for (auto it = a.begin(); it != a.end(); ++it) {
        if (!b.contains(it.key()) || b.at(it.key()) != it.value()) return it.key();
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
        if (!a.contains(it.key())) return it.key();
    }
    return "";
}

sweep_merge_result sweep_merge(const std::vector<std::string> & shard_dirs, const std::string & dir) {
    if (shard_dirs.empty()) throw input_error("merge", "shards", "no shard directories given");
    const dir_lock lock(dir, dir_lock::directory, "out");   // one writer
    sweep_merge_result res;
    std::vector<nlohmann::json> kept_json;
    std::vector<std::string> kept_file;            // where each kept row came from
    std::map<std::string, size_t> by_key;
    const auto add_rows = [&](const std::string & file, const std::vector<sweep_row> & rows) {
        res.inputs.push_back(file);
        res.input_rows.push_back(int(rows.size()));
        for (const sweep_row & r : rows) {
            // One model and one text across everything merged (the first row sets them).
            if (!res.rows.empty()) {
                const sweep_row & f = res.rows.front();
                if (r.model_sha256 != f.model_sha256) {
                    throw input_error(file, "model_sha256", "row '" + r.method + "' ctx " + std::to_string(r.ctx) + " is of model " +
                                                                r.model_sha256 + ", " + kept_file.front() + " of model " + f.model_sha256);
                }
                if (r.text_sha256 != f.text_sha256) {
                    throw input_error(file, "text_sha256", "row '" + r.method + "' ctx " + std::to_string(r.ctx) + " is of text " +
                                                               r.text_sha256 + ", " + kept_file.front() + " of text " + f.text_sha256);
                }
            }
            nlohmann::json j = sweep_row_to_json(r);
            auto it = by_key.find(r.key);
            if (it != by_key.end()) {
                const std::string field = first_difference(kept_json[it->second], j);
                if (!field.empty()) {
                    throw input_error(file, field, "row '" + r.method + "' ctx " + std::to_string(r.ctx) + " differs from the row of the same key in " +
                                                       kept_file[it->second]);
                }
                res.duplicates++;
                continue;
            }
            by_key[r.key] = res.rows.size();
            res.rows.push_back(r);
            kept_json.push_back(std::move(j));
            kept_file.push_back(file);
        }
    };
    // Everything is read and checked before anything is written.
    const std::vector<sweep_row> own = sweep_load_rows(dir);
    if (!own.empty()) add_rows(jsonl_path(dir), own);
    for (const std::string & d : shard_dirs) {
        struct stat st;
        const std::string path = jsonl_path(d);
        if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) throw input_error(path, "file", "no such file (not a sweep directory?)");
        add_rows(path, sweep_load_rows(d));
    }
    std::string text;
    for (const auto & j : kept_json) text += j.dump() + "\n";
    write_file_atomic(jsonl_path(dir), text);
    sweep_rewrite_csv(dir, res.rows);
    return res;
}

std::vector<int> pareto_front(const std::vector<double> & x, const std::vector<double> & y) {
    const int n = int(std::min(x.size(), y.size()));
    std::vector<int> idx;
    for (int i = 0; i < n; ++i) {
        if (std::isfinite(x[i]) && std::isfinite(y[i])) idx.push_back(i);
    }
    // Sort by x then y; sweep keeping points strictly below the best y so far.
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return x[a] < x[b] || (x[a] == x[b] && (y[a] < y[b] || (y[a] == y[b] && a < b))); });
    std::vector<int> front;
    double best = HUGE_VAL;
    for (size_t k = 0; k < idx.size(); ++k) {
        const int i = idx[k];
        if (y[i] < best) {
            front.push_back(i);
            best = y[i];
        } else if (!front.empty() && x[front.back()] == x[i] && y[front.back()] == y[i]) {
            front.push_back(i);  // exact duplicates: neither dominates the other
        }
    }
    return front;
}

// ---- evaluation rule ----

void sweep_require_evaluation(const text_source & text, const std::string & what) {
    if (text.part == text_part::calibration) text_require_part(text, text_part::evaluation, what);
    // The whole KJV holds the calibration part too.
    if (text.part == text_part::whole && (text.spec == "kjv" || text.spec.rfind("kjv:", 0) == 0)) {
        text_require_part(text, text_part::evaluation, what);
    }
}

// ---- mass recall ----

double layer_mass_recall(const attention_layer_io & io, const sparse_method & method) {
    const std::vector<double> per_head = layer_mass_recall_heads(io, method);
    double m = 0.0;
    for (double r : per_head) m += r;
    return per_head.empty() ? 0.0 : m / double(per_head.size());
}

std::vector<double> layer_mass_recall_heads(const attention_layer_io & io, const sparse_method & method) {
    using mat_f = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using stride_map = Eigen::Map<const mat_f, 0, Eigen::OuterStride<>>;
    const int L = io.n_tokens, d = io.head_dim;
    if (L <= 0 || io.n_head <= 0) return {};
    std::vector<double> per_head(io.n_head, 0.0);
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < io.n_head; ++h) {
        const head_inputs in = head_inputs_of(io, h);
        const selection sel = method.select(in);
        const stride_map q(in.q, L, d, Eigen::OuterStride<>(in.q_stride));
        const stride_map k(in.k, L, d, Eigen::OuterStride<>(in.k_stride));
        constexpr int chunk = 64;
        std::vector<int32_t> keys;
        mat_f s;
        double sum = 0.0;
        for (int r0 = 0; r0 < L; r0 += chunk) {
            const int nr = std::min(chunk, L - r0);
            const int n_cols = in.causal ? r0 + nr : L;
            s.noalias() = (q.middleRows(r0, nr) * in.scale) * k.topRows(n_cols).transpose();
            for (int rr = 0; rr < nr; ++rr) {
                const int i = r0 + rr;
                const int n = in.causal ? i + 1 : L;
                const float * row = s.row(rr).data();
                float mx = row[0];
                for (int j = 1; j < n; ++j) mx = std::max(mx, row[j]);
                double z = 0.0;
                for (int j = 0; j < n; ++j) z += std::exp(double(row[j] - mx));
                selection_row_keys(sel, i, keys);
                double kept = 0.0;
                for (int32_t j : keys) kept += std::exp(double(row[j] - mx));
                sum += kept / z;
            }
        }
        per_head[h] = sum / L;
    }
    return per_head;
}

// ---- the model runner ----

namespace {

// Checks the cancel flag at every layer (a window at ctx 8192 takes long),
// optionally copies the layers' Q/K/V, and hands attention to `inner`.
class relay_hook : public attention_hook {
public:
    relay_hook(attention_hook * inner, job_progress * progress, qkv_capture * cap)
        : inner_(inner), progress_(progress), cap_(cap) {}
    void on_qkv(const attention_layer_io & io) override {
        if (progress_ && progress_->cancelled()) throw job_cancelled();
        if (cap_) {
            layer_qkv l;
            l.layer = io.layer;
            const size_t nq = size_t(io.n_tokens) * io.n_head * io.head_dim;
            const size_t nkv = size_t(io.n_tokens) * io.n_head_kv * io.head_dim;
            l.q.assign(io.q, io.q + nq);
            l.k.assign(io.k, io.k + nkv);
            l.v.assign(io.v, io.v + nkv);
            cap_->layers.push_back(std::move(l));
            cap_->info.layers.push_back(io.layer);
        }
        if (inner_) inner_->on_qkv(io);
    }
    bool attend(const attention_layer_io & io) override { return inner_ ? inner_->attend(io) : false; }

private:
    attention_hook * inner_;
    job_progress * progress_;
    qkv_capture * cap_;
};

struct dense_ref {
    std::vector<double> nll;        // per predicted position, all windows
    std::vector<int32_t> argmax;
    double nll_sum = 0.0;
    int64_t n_tokens = 0;
    int windows = 0;
    double kernel_s = 0.0;
    int64_t device_bytes_peak = -1; // GPU only
    qkv_capture cap;                // window 0, for mass recall
};

// A GPU's observer for the length of one call (set_observer(nullptr) after,
// also when the call throws).
struct gpu_observer_scope {
    llama_gpu * g;
    gpu_observer_scope(llama_gpu * g_, attention_hook * h) : g(g_) {
        if (g) g->set_observer(h);
    }
    ~gpu_observer_scope() {
        if (g) g->set_observer(nullptr);
    }
};

} // namespace

struct sweep_model_runner::impl {
    const llama_model & m;
    const bpe_tokenizer * tok;
    text_source text;
    std::vector<int32_t> tokens;
    sweep_model_options opt;
    score_fn score;
    int ref_ctx = -1;
    dense_ref ref;

    impl(const llama_model & m_, const bpe_tokenizer * t_) : m(m_), tok(t_) {}

    std::vector<std::pair<int64_t, int64_t>> windows(int ctx) const {
        std::vector<std::pair<int64_t, int64_t>> w;
        const int64_t n = int64_t(tokens.size());
        for (int64_t b = 0; b < n; b += ctx) {
            const int64_t e = std::min<int64_t>(b + ctx, n);
            if (e - b >= 2) w.push_back({b, e});
        }
        return w;
    }

    // Dense reference of every window at ctx (kept while rows share the ctx).
    void ensure_ref(int ctx, const sweep_task & t, job_progress * progress, double lo, double hi) {
        if (ref_ctx == ctx) return;
        ref = dense_ref();
        ref_ctx = -1;
        auto dense = std::shared_ptr<const sparse_method>(method_create("dense"));
        sparse_attention_hook timing(dense);   // dense flash kernel, timed per layer
        const auto w = windows(ctx);
        for (size_t i = 0; i < w.size(); ++i) {
            job_step(progress, lo + (hi - lo) * double(i) / double(w.size()), "dense reference ctx " + std::to_string(ctx));
            std::vector<int32_t> win(tokens.begin() + w[i].first, tokens.begin() + w[i].second);
            if (opt.gpu) {
                ref_window_gpu(win, progress, i == 0 && opt.mass_recall);
                continue;
            }
            relay_hook relay(&timing, progress, i == 0 && opt.mass_recall ? &ref.cap : nullptr);
            forward_options fo;
            fo.hook = &relay;
            matrix_rm logits = llama_forward(m, win, fo);
            for (int64_t p = 0; p + 1 < int64_t(win.size()); ++p) {
                const float * row = logits.row(p).data();
                const double nll = logits_row_nll(row, logits.cols(), win[p + 1]);
                ref.nll.push_back(nll);
                ref.nll_sum += nll;
                ref.argmax.push_back(int32_t(logits_row_argmax(row, logits.cols())));
            }
            ref.n_tokens += int64_t(win.size());
            ref.windows++;
        }
        for (const auto & rec : timing.records()) ref.kernel_s += rec.kernel_s;
        if (opt.mass_recall) {
            ref.cap.info.n_layer = m.cfg.n_layer;
            ref.cap.info.n_head = m.cfg.n_head;
            ref.cap.info.n_head_kv = m.cfg.n_head_kv;
            ref.cap.info.head_dim = m.cfg.head_dim;
            ref.cap.info.token_ids.assign(tokens.begin() + w[0].first, tokens.begin() + w[0].second);
        }
        ref_ctx = ctx;
        (void) t;
    }

    // One dense window on the GPU (the capture, when asked, through its observer).
    void ref_window_gpu(const std::vector<int32_t> & win, job_progress * progress, bool capture) {
        if (progress && progress->cancelled()) throw job_cancelled();
        relay_hook relay(nullptr, progress, capture ? &ref.cap : nullptr);
        gpu_observer_scope obs(opt.gpu, capture ? &relay : nullptr);
        const llama_gpu_scores sc = opt.gpu->score(win, nullptr);
        for (size_t p = 0; p < sc.nll.size(); ++p) {
            ref.nll.push_back(sc.nll[p]);
            ref.nll_sum += sc.nll[p];
            ref.argmax.push_back(sc.argmax[p]);
        }
        const llama_gpu_stats & st = opt.gpu->last_stats();
        ref.kernel_s += st.attention_s;
        ref.device_bytes_peak = std::max(ref.device_bytes_peak, st.device_bytes_peak);
        ref.n_tokens += int64_t(win.size());
        ref.windows++;
    }

    // The method in every layer on the GPU, window by window: perplexity,
    // agreement with the dense reference, densities, times and memory.
    void sparse_windows_gpu(const sparse_method & method, sweep_row & r, job_progress * progress, double lo, double hi,
                            double & nll_sum, int64_t & agree, int64_t & pos) {
        const auto w = windows(r.ctx);
        double td = 0.0, bd = 0.0;
        for (size_t i = 0; i < w.size(); ++i) {
            job_step(progress, lo + (hi - lo) * double(i) / double(w.size()),
                     r.method + " window " + std::to_string(i + 1) + "/" + std::to_string(w.size()) + " (GPU)");
            if (progress && progress->cancelled()) throw job_cancelled();
            std::vector<int32_t> win(tokens.begin() + w[i].first, tokens.begin() + w[i].second);
            const llama_gpu_scores sc = opt.gpu->score(win, &method, score);
            for (size_t p = 0; p < sc.nll.size(); ++p, ++pos) {
                nll_sum += sc.nll[p];
                agree += sc.argmax[p] == ref.argmax[size_t(pos)];
            }
            const llama_gpu_stats & st = opt.gpu->last_stats();
            r.predictor_s += st.gate_s;
            r.kernel_s += st.attention_s;
            td += st.token_density;
            bd += st.block_density;
            r.device_bytes_peak = std::max(r.device_bytes_peak, st.device_bytes_peak);
            r.selection_bytes = std::max(r.selection_bytes, st.selection_bytes);
        }
        r.token_density = td / double(w.size());
        r.block_density = bd / double(w.size());
        r.device = "cuda";
        r.device_name = opt.gpu->device_name();
        r.dense_device_bytes_peak = ref.device_bytes_peak;
    }
};

sweep_model_runner::sweep_model_runner(const llama_model & m, const bpe_tokenizer * tok, const text_source & text,
                                       std::vector<int32_t> tokens, sweep_model_options opt)
    : p_(new impl(m, tok)) {
    sweep_require_evaluation(text, "the sweep's metrics");
    if (tokens.size() < 2) throw input_error(text.spec, "tokens", "the sweep needs at least 2 tokens of text");
    p_->text = text;
    p_->tokens = std::move(tokens);
    p_->opt = std::move(opt);
    p_->score = score_create(p_->opt.score_spec.empty() ? "softmax" : p_->opt.score_spec);
    if (!p_->opt.passkey_depths.empty() && !tok) {
        throw input_error(text.spec, "passkey", "the passkey test needs the model's tokenizer");
    }
}

sweep_model_runner::~sweep_model_runner() = default;

sweep_row sweep_model_runner::operator()(const sweep_task & t, job_progress * progress) {
    impl & P = *p_;
    const llama_model & m = P.m;
    llama_check_ctx(m, t.ctx);
    const auto t_start = std::chrono::steady_clock::now();
    const double lo = t.progress_lo, span = t.progress_hi - t.progress_lo;
    // Shares of a row's progress: dense reference (when not cached), sparse
    // windows, mass recall, passkey.
    const bool need_ref = P.ref_ctx != t.ctx;
    const double f_ref = need_ref ? 0.45 : 0.0;
    const double f_pk = P.opt.passkey_depths.empty() ? 0.0 : 0.3;
    const double f_rec = P.opt.mass_recall ? 0.1 : 0.0;
    const double f_sp = 1.0 - f_ref - f_pk - f_rec;
    P.ensure_ref(t.ctx, t, progress, lo, lo + span * f_ref);

    auto method = std::shared_ptr<const sparse_method>(method_create(t.method));
    sweep_row r;
    r.key = t.key;
    r.method = method->spec();
    r.method_name = method->name();
    r.score = P.opt.score_spec.empty() ? "softmax" : P.opt.score_spec;
    r.density_set = t.density_set;
    r.ctx = t.ctx;
    r.model_id = m.model_id;
    r.model_sha256 = m.source_sha256;
    r.text_spec = P.text.spec;
    r.text_sha256 = P.text.sha256;
    r.tokens = P.ref.n_tokens;
    r.windows = P.ref.windows;
    r.dense_kernel_s = P.ref.kernel_s;

    // End to end: the method in every layer, against the cached dense run.
    sparse_attention_hook hook(method, P.score);
    const auto w = P.windows(t.ctx);
    double nll_sum = 0.0;
    int64_t agree = 0, pos = 0;
    if (P.opt.gpu) P.sparse_windows_gpu(*method, r, progress, lo + span * f_ref, lo + span * (f_ref + f_sp), nll_sum, agree, pos);
    for (size_t i = 0; i < w.size() && !P.opt.gpu; ++i) {
        job_step(progress, lo + span * (f_ref + f_sp * double(i) / double(w.size())),
                 r.method + " window " + std::to_string(i + 1) + "/" + std::to_string(w.size()));
        std::vector<int32_t> win(P.tokens.begin() + w[i].first, P.tokens.begin() + w[i].second);
        relay_hook relay(&hook, progress, nullptr);
        forward_options fo;
        fo.hook = &relay;
        matrix_rm logits = llama_forward(m, win, fo);
        for (int64_t p = 0; p + 1 < int64_t(win.size()); ++p, ++pos) {
            const float * row = logits.row(p).data();
            nll_sum += logits_row_nll(row, logits.cols(), win[p + 1]);
            agree += logits_row_argmax(row, logits.cols()) == P.ref.argmax[size_t(pos)];
        }
    }
    r.ppl_dense = std::exp(P.ref.nll_sum / double(pos));
    r.ppl = std::exp(nll_sum / double(pos));
    r.delta_ppl = r.ppl - r.ppl_dense;
    r.delta_ppl_rel = r.delta_ppl / r.ppl_dense;
    r.top1_agreement = double(agree) / double(pos);

    // Per-layer densities and times from the hook's records (CPU; the GPU's
    // stats give means over layers only).
    const int nl = P.opt.gpu ? 0 : m.cfg.n_layer;
    std::vector<double> lt(nl, 0.0), lb(nl, 0.0);
    std::vector<int> ln(nl, 0);
    for (const auto & rec : hook.records()) {
        r.predictor_s += rec.predictor_s;
        r.kernel_s += rec.kernel_s;
        if (rec.layer >= 0 && rec.layer < nl) {
            lt[rec.layer] += rec.token_density;
            lb[rec.layer] += rec.block_density;
            ln[rec.layer]++;
        }
    }
    int n_used = 0;
    for (int l = 0; l < nl; ++l) {
        if (ln[l] == 0) continue;
        lt[l] /= ln[l];
        lb[l] /= ln[l];
        r.token_density += lt[l];
        r.block_density += lb[l];
        n_used++;
    }
    if (n_used > 0) {
        r.token_density /= n_used;
        r.block_density /= n_used;
    }
    if (!P.opt.gpu) {
        r.layer_token_density = lt;
        r.layer_block_density = lb;
    }
    const int L0 = int(w[0].second - w[0].first);
    const double dense_fl = attention_flops(L0, m.cfg.head_dim, true);
    r.predictor_flop_share = dense_fl > 0 ? method->predictor_flops(L0, m.cfg.head_dim, true) / dense_fl : 0.0;

    // Mass recall on the capture of the first window (softmax reference).
    if (P.opt.mass_recall) {
        job_step(progress, lo + span * (f_ref + f_sp), r.method + " mass recall");
        double s = 0.0;
        for (size_t i = 0; i < P.ref.cap.layers.size(); ++i) {
            if (progress && progress->cancelled()) throw job_cancelled();
            s += layer_mass_recall(capture_layer_io(P.ref.cap, i), *method);
        }
        r.mass_recall = P.ref.cap.layers.empty() ? -1.0 : s / double(P.ref.cap.layers.size());
    }

    // Passkey at the row's ctx, one trial per depth and seed.
    if (!P.opt.passkey_depths.empty()) {
        int ok = 0, n = 0;
        const int n_trials = std::max(1, P.opt.passkey_trials);
        const int total = int(P.opt.passkey_depths.size()) * n_trials;
        for (double d : P.opt.passkey_depths) {
            for (int s = 0; s < n_trials; ++s) {
                job_step(progress, lo + span * (f_ref + f_sp + f_rec + f_pk * double(n) / total), r.method + " passkey");
                passkey_options o;
                o.ctx = t.ctx;
                o.depth = d;
                o.seed = uint64_t(1 + s);
                o.gpu = P.opt.gpu;
                o.method = method.get();
                o.score = P.score;
                hook.clear_records();
                relay_hook relay(P.opt.gpu ? nullptr : &hook, progress, nullptr);
                passkey_trial tr = passkey_run(m, *P.tok, P.text.text, o, &relay);
                ok += tr.retrieved;
                n++;
            }
        }
        r.passkey_accuracy = double(ok) / double(n);
        r.passkey_trials = n;
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return r;
}

} // namespace attnlab
