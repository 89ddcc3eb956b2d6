// What the kind drivers share (see common.h).
#include "lab/scenario/common.h"
#include "base/atomic_write.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>
#include <sstream>
#include <sys/stat.h>


#include "base/error.h"
#include "base/sha256.h"
#include "methods/train/calib.h"
#include "model/model_files.h"

namespace attnlab {

using nlohmann::json;

double secs_since(scenario_clock::time_point t) { return std::chrono::duration<double>(scenario_clock::now() - t).count(); }

std::string fmt_num(const char * f, double x) {
    char b[64];
    std::snprintf(b, sizeof b, f, x);
    return b;
}

void make_dirs(const std::string & dir) { dir_create_all(dir, "directory"); }

std::string scenario_out::fig(const std::string & name) {
    make_dirs(dir + "/figures");
    figure_files.push_back("figures/" + name);
    return dir + "/figures/" + name;
}

// ---- stage_progress

stage_progress::stage_progress(job_progress * parent, double lo, double hi) : parent_(parent), lo_(lo), hi_(hi) {
    if (!parent_) return;
    job_step(parent_, lo_, "");
    th_ = std::thread([this] {
        while (!stop_.load()) {
            relay();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
}

stage_progress::~stage_progress() {
    if (!parent_) return;
    stop_.store(true);
    th_.join();
    relay();
}

void stage_progress::relay() {
    if (parent_->cancelled()) sub_.cancel();
    parent_->report(lo_ + (hi_ - lo_) * std::min(1.0, std::max(0.0, sub_.fraction())), sub_.stage());
}

// ---- model and text

namespace {

void load_model(model_ctx & mc, const std::string & source, scenario_out & out, job_progress * progress) {
    job_step(progress, 0.0, "loading model");
    mc.path = scenario_resolve_path(source);
    if (file_kind_detect(mc.path) == file_kind::trace) {
        throw input_error(source, "source", "a scenario needs a model (GGUF or HF checkpoint), not a trace");
    }
    const auto t0 = scenario_clock::now();
    mc.m = llama_model_load(mc.path);
    mc.tok.reset(new bpe_tokenizer(tokenizer_load(mc.path)));
    tokenizer_check_model(*mc.tok, mc.m, mc.path);
    out.timings["model_load_s"] = secs_since(t0);
    out.inputs["model"] = {{"path", source}, {"id", mc.m.model_id}, {"sha256", mc.m.source_sha256}};
}

} // namespace

text_source open_eval_and_model(const scenario & s, const char * what, const std::vector<int> & ctxs, model_ctx & mc,
                                scenario_out & out, job_progress * progress) {
    const json & c = s.cfg;
    text_source src = text_load(c["text"].get<std::string>());
    sweep_require_evaluation(src, what);
    out.inputs["text"] = {{"spec", src.spec}, {"sha256", src.sha256}};
    load_model(mc, c["source"], out, progress);
    for (int x : ctxs) llama_check_ctx(mc.m, x, 2, s.file);
    return src;
}

std::vector<int32_t> first_tokens(const bpe_tokenizer & tok, const std::string & text, int64_t n) {
    std::vector<int32_t> ids = tok.encode(text);
    if (n > 0 && int64_t(ids.size()) > n) ids.resize(size_t(n));
    return ids;
}

std::string relative_spec(std::string spec, const std::string & dir) {
    const std::string pre = dir + "/";
    for (size_t p; (p = spec.find(pre)) != std::string::npos;) spec.erase(p, pre.size());
    return spec;
}

// ---- sweep rows

namespace {

const std::vector<std::string> k_row_columns = {"method", "method_name", "density_set", "ctx", "tokens", "windows",
                                                "ppl_dense", "ppl", "delta_ppl_rel", "top1_agreement", "token_density",
                                                "block_density", "predictor_flop_share", "mass_recall", "passkey_accuracy"};

// Sweep rows without wall times (those go to timings) or identity already in the inputs.
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

} // namespace

void md_rows_table(std::ostringstream & md, const std::vector<sweep_row> & rows, const std::string & dir) {
    md << "| method | ctx | block density | token density | ppl | Δppl | top-1 agr. | mass recall |";
    const bool pk = std::any_of(rows.begin(), rows.end(), [](const sweep_row & r) { return r.passkey_accuracy >= 0; });
    if (pk) md << " passkey |";
    md << "\n|---|---|---|---|---|---|---|---|" << (pk ? "---|" : "") << "\n";
    for (const auto & r : rows) {
        md << "| `" << relative_spec(r.method, dir) << "` | " << r.ctx << " | " << fmt_num("%.3f", r.block_density) << " | "
           << fmt_num("%.3f", r.token_density) << " | " << fmt_num("%.3f", r.ppl) << " | " << fmt_num("%+.2f%%", 100 * r.delta_ppl_rel)
           << " | " << fmt_num("%.3f", r.top1_agreement) << " | " << (r.mass_recall >= 0 ? fmt_num("%.3f", r.mass_recall) : "-") << " |";
        if (pk) md << " " << (r.passkey_accuracy >= 0 ? fmt_num("%.2f", r.passkey_accuracy) : "-") << " |";
        md << "\n";
    }
    md << "\n";
}

json add_rows(scenario_out & out, const std::vector<sweep_row> & rows) {
    out.csv_columns = k_row_columns;
    json mrows = json::array(), trows = json::array();
    for (const auto & r : rows) {
        json j = row_metrics(r);
        j["method"] = relative_spec(r.method, out.dir);
        mrows.push_back(j);
        out.csv_rows.push_back(j);
        json t = row_timings(r);
        t["method"] = j["method"];
        trows.push_back(t);
    }
    out.timings["rows"] = trows;
    return mrows;
}

std::vector<sweep_row> eval_rows(const std::vector<std::string> & specs, int ctx, int windows, model_ctx & mc,
                                 const text_source & src, job_progress * progress, double lo, double hi) {
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

// ---- the trained kinds

std::vector<qkv_capture> calibration_captures(const json & c, model_ctx & mc, scenario_out & out, job_progress * progress) {
    const text_source calib = text_load(c["calib_text"].get<std::string>());
    out.inputs["calib_text"] = {{"spec", calib.spec}, {"sha256", calib.sha256}};
    const auto t0 = scenario_clock::now();
    stage_progress st(progress, 0.0, 0.2);
    std::vector<qkv_capture> caps = calib_capture_windows(mc.m, *mc.tok, calib, c["ctx"].get<int>(), c["calib_windows"].get<int>(),
                                                          c["layers"].get<std::vector<int>>(), st.get());
    out.timings["calibration_capture_s"] = secs_since(t0);
    return caps;
}

std::vector<const qkv_capture *> capture_ptrs(std::vector<qkv_capture> & caps) {
    std::vector<const qkv_capture *> ptrs;
    for (auto & x : caps) ptrs.push_back(&x);
    return ptrs;
}

void record_trained(scenario_out & out, const std::string & role, const std::string & rel, const std::string & calib_sha) {
    out.trained.push_back({{"role", role}, {"file", rel}, {"sha256", sha256_file(out.dir + "/" + rel)}, {"calib_text_sha256", calib_sha}});
}

// ---- merged checks

void check_method_specs(const std::string & file, const std::string & prefix, const json & c) {
    const std::vector<double> dens = c["densities"].get<std::vector<double>>();
    const std::vector<int> ctx = c["ctx"].get<std::vector<int>>();
    const std::vector<std::string> ms = c["methods"].get<std::vector<std::string>>();
    for (size_t i = 0; i < ms.size(); ++i) {
        try {
            sweep_plan({ms[i]}, dens, ctx, "", "", 0);
        } catch (const input_error & e) {
            throw input_error(file, prefix + "methods[" + std::to_string(i) + "]", e.what());
        }
    }
}

void check_calibrated(const std::string & file, const std::string & prefix, const json & c) {
    const std::vector<int> layers = c["layers"].get<std::vector<int>>();
    if (std::set<int>(layers.begin(), layers.end()).size() != layers.size()) {
        throw input_error(file, prefix + "layers", "a layer is listed twice");
    }
    if (c["ctx"].get<int>() < 2 * c["block"].get<int>()) {
        throw input_error(file, prefix + "ctx", "must be at least two blocks (2 x block)");
    }
}

} // namespace attnlab
