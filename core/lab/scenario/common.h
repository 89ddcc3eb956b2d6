#pragma once
// What the kind drivers share: the model and text they open (recorded in the
// manifest's inputs), sweep rows as metrics and as a report table, the
// calibration captures of the trained kinds, a progress share per stage, and
// the merged-scenario checks two kinds have in common.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/job.h"
#include "data/capture.h"
#include "data/corpus.h"
#include "lab/scenario/kind.h"
#include "lab/sweep.h"
#include "model/llama.h"
#include "model/tokenizer.h"

namespace attnlab {

using scenario_clock = std::chrono::steady_clock;
double secs_since(scenario_clock::time_point t);

std::string fmt_num(const char * f, double x);   // snprintf of one number
void make_dirs(const std::string & dir);        // mkdir -p; input_error when it cannot

// One stage of a run reported as the share [lo, hi] of the whole, so the bar
// and its ETA move forward only: the stage's code reports 0..1 on get(), a
// watcher maps that into the parent and passes a cancel down.
class stage_progress {
public:
    stage_progress(job_progress * parent, double lo, double hi);
    ~stage_progress();
    job_progress * get() { return parent_ ? &sub_ : nullptr; }

private:
    void relay();
    job_progress * parent_;
    double lo_, hi_;
    job_progress sub_;
    std::atomic<bool> stop_{false};
    std::thread th_;
};

// The model a scenario names and its tokenizer.
struct model_ctx {
    llama_model m;
    std::unique_ptr<bpe_tokenizer> tok;
    std::string path;
};

// Where every model-backed kind starts: the scenario's text, refused unless
// it is evaluation text (`what` names the metrics in the message), and the
// model, both recorded in out.inputs (load time in out.timings); each of
// ctxs checked against the model's context (the error names the scenario).
text_source open_eval_and_model(const scenario & s, const char * what, const std::vector<int> & ctxs, model_ctx & mc,
                                scenario_out & out, job_progress * progress);

// The first n tokens of a text (all for n <= 0; no BOS, as the sweep does).
std::vector<int32_t> first_tokens(const bpe_tokenizer & tok, const std::string & text, int64_t n);

// Replaces an absolute staging path inside method specs by the path relative
// to the snapshot, so metrics compare across runs.
std::string relative_spec(std::string spec, const std::string & dir);

// Sweep rows: the report table, and the metrics/CSV rows (wall times go to
// out.timings["rows"]); returns the metrics rows.
void md_rows_table(std::ostringstream & md, const std::vector<sweep_row> & rows, const std::string & dir);
nlohmann::json add_rows(scenario_out & out, const std::vector<sweep_row> & rows);

// Rows of specs at one ctx through the sweep's model runner (dense reference
// cached, every layer patched, recall on the first window's capture), the
// progress running from lo to hi.
std::vector<sweep_row> eval_rows(const std::vector<std::string> & specs, int ctx, int windows, model_ctx & mc,
                                 const text_source & src, job_progress * progress, double lo, double hi);

// The trained kinds: captures of calib_text (ctx, calib_windows, layers) as
// the first 20% of the run, and each fitted file recorded with its hash.
std::vector<qkv_capture> calibration_captures(const nlohmann::json & cfg, model_ctx & mc, scenario_out & out, job_progress * progress);
std::vector<const qkv_capture *> capture_ptrs(std::vector<qkv_capture> & caps);
void record_trained(scenario_out & out, const std::string & role, const std::string & rel, const std::string & calib_sha);

// Checks of the merged scenario two kinds share.
void check_method_specs(const std::string & file, const std::string & prefix, const nlohmann::json & cfg);   // methods x densities x ctx plan
void check_calibrated(const std::string & file, const std::string & prefix, const nlohmann::json & cfg);     // layers once each, ctx >= 2 blocks

} // namespace attnlab
