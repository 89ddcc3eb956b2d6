#pragma once
// The trade-off sweep: one row per (method, density, ctx), measured end to end
// on a real model and on evaluation text only.
//
// The sweep is split so its bookkeeping is testable without a model:
//   sweep_plan      expands method specs x densities x ctxs into tasks, each
//                   with its resume key (method spec + ctx + text sha + model
//                   sha + token cap)
//   sweep_execute   runs the tasks not yet in DIR/results.jsonl through a
//                   row runner, appending every finished row to
//                   DIR/results.jsonl and DIR/results.csv (line written, then
//                   fsync) before starting the next one
//   sweep_model_runner
//                   the real runner: perplexity vs dense and top-1 agreement
//                   with the method patched into every layer, densities and
//                   times from the hook's per-layer records, mean per-head
//                   mass recall on a capture of the same text, passkey
//
// results.jsonl is the record of truth; results.csv is rewritten from it when
// a sweep (re)starts, so a crash between the two appends cannot duplicate a row.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/score.h"
#include "attention/attention.h"
#include "io/trace.h"
#include "data/corpus.h"

namespace attnlab {

struct llama_model;
class llama_gpu;
class bpe_tokenizer;
class job_progress;
class sparse_method;

struct sweep_task {
    std::string method;          // canonical spec, density key filled in
    std::string method_name;
    double density_set = -1.0;   // the density asked for; -1 for methods without a density key
    int ctx = 0;
    std::string key;             // resume key
    // Share of the whole sweep's progress this task covers (set by
    // sweep_execute; a runner reports job_step(p, lo + f * (hi - lo), ...)).
    double progress_lo = 0.0, progress_hi = 1.0;
    // Provenance of a trained method (empty for methods that fit nothing):
    // its parameter file or table, that file's sha256, the calibration text's.
    std::string params_file, params_sha256, calib_text_sha256;
};

struct sweep_row {
    // identity
    std::string key, method, method_name, score = "softmax";
    double density_set = -1.0;
    int ctx = 0;
    std::string model_id, model_sha256, text_spec, text_sha256;
    int64_t tokens = 0;          // tokens evaluated (after --max-tokens)
    int windows = 0;
    // end to end
    double ppl_dense = 0.0, ppl = 0.0, delta_ppl = 0.0, delta_ppl_rel = 0.0, top1_agreement = 0.0;
    // densities, means over layers (and heads) of the patched run
    double token_density = 0.0, block_density = 0.0;
    // seconds, summed over all layers and windows of the patched run
    double predictor_s = 0.0, kernel_s = 0.0, dense_kernel_s = 0.0;
    double predictor_flop_share = 0.0;  // predictor FLOPs / dense attention FLOPs
    // mean per-head attention-mass recall on a capture of the first ctx tokens
    double mass_recall = -1.0;          // -1: not measured
    double passkey_accuracy = -1.0;     // -1: not measured
    int passkey_trials = 0;
    double seconds = 0.0;               // wall time of the row
    std::vector<double> layer_token_density, layer_block_density;
    // provenance of a trained method, copied from its task ("" otherwise)
    std::string params_file, params_sha256, calib_text_sha256;
    // where it ran: "cpu" or "cuda" (then the GPU's name, and device memory
    // measured by the forward pass: the most held at once in the sparse and
    // the dense pass, and the selection's arrays of one layer; -1: not measured)
    std::string device = "cpu", device_name;
    int64_t device_bytes_peak = -1, dense_device_bytes_peak = -1, selection_bytes = -1;
};

// The key of a method that takes a density, or "" (fixed patterns).
std::string sweep_density_key(const std::string & method_name);

// Resume key: everything that changes what a row measures (a trained
// method's parameter file by content: retraining to the same path is a new row).
std::string sweep_row_key(const std::string & method_spec, int ctx, const std::string & text_sha256,
                          const std::string & model_sha256, int64_t max_tokens, const std::string & score_spec,
                          const std::string & params_sha256 = "", const std::string & device = "cpu");

// Method specs may be given with or without their density key; methods with
// one get one task per density (the given value is replaced), methods without
// one get a single task. Specs are checked and canonicalised (input_error on a
// bad spec, an empty list or a density outside (0, 1]).
std::vector<sweep_task> sweep_plan(const std::vector<std::string> & methods, const std::vector<double> & densities,
                                   const std::vector<int> & ctxs, const std::string & text_sha256,
                                   const std::string & model_sha256, int64_t max_tokens,
                                   const std::string & score_spec = "softmax", const std::string & device = "cpu");

// Row formats. The CSV columns and JSON keys are stable; the JSON holds the
// per-layer densities too.
std::string sweep_csv_header();
std::string sweep_csv_line(const sweep_row & r);
nlohmann::json sweep_row_to_json(const sweep_row & r);
sweep_row sweep_row_from_json(const nlohmann::json & j);

// Rows of DIR/results.jsonl (none when it is absent). A last line cut short by
// a crash is dropped (and cut from the file, so the next append starts on a
// fresh line); a bad line elsewhere is an input_error naming the file and line.
std::vector<sweep_row> sweep_load_rows(const std::string & dir);
// Appends one row to DIR/results.jsonl, then DIR/results.csv, each written
// with one write() and fsync'd.
void sweep_append_row(const std::string & dir, const sweep_row & r);
// Rewrites DIR/results.csv from rows (temporary file, fsync, rename).
void sweep_rewrite_csv(const std::string & dir, const std::vector<sweep_row> & rows);

using sweep_row_runner = std::function<sweep_row(const sweep_task &, job_progress *)>;

struct sweep_outcome {
    std::vector<sweep_row> rows;   // every row of the plan, in plan order (old and new)
    int reused = 0;                // found in results.jsonl
    int ran = 0;
};

// Creates DIR if needed. Progress: fraction of the plan's rows done; the
// runner may call job_step itself with its own fraction (it is rescaled).
// job_cancelled propagates after the rows finished so far are on disk.
sweep_outcome sweep_execute(const std::vector<sweep_task> & tasks, const std::string & dir,
                            const sweep_row_runner & runner, job_progress * progress = nullptr);

// ---- sharding and merging (one plan over several machines) ----

struct sweep_shard_spec {
    int index = 0, count = 1;
};
// "i/n" with n >= 1 and 0 <= i < n; input_error("--shard", "shard", ...) otherwise.
sweep_shard_spec sweep_shard_parse(const std::string & text);
// The tasks with plan index % count == index, in plan order (the same
// input_error as sweep_shard_parse for a bad index or count).
std::vector<sweep_task> sweep_shard(const std::vector<sweep_task> & tasks, int index, int count);

struct sweep_merge_result {
    std::vector<sweep_row> rows;       // written, in first-seen order
    std::vector<std::string> inputs;   // the results.jsonl files read, in order
    std::vector<int> input_rows;       // rows read from each
    int duplicates = 0;                // exact duplicates dropped
};
// Merges the results.jsonl of every shard directory (and the rows DIR
// already has, read first) into DIR/results.jsonl and DIR/results.csv, each
// written atomically. input_error naming the file for a missing results.jsonl,
// two rows of one key with different values, or rows of another model or
// text (by sha256). Exact duplicates are dropped.
sweep_merge_result sweep_merge(const std::vector<std::string> & shard_dirs, const std::string & dir);

// Indices of the Pareto-optimal points when both x and y are minimised
// (a point is dropped when another is <= in both and < in one), sorted by x.
std::vector<int> pareto_front(const std::vector<double> & x, const std::vector<double> & y);

// ---- the real runner ----

struct sweep_model_options {
    std::vector<double> passkey_depths;   // empty: no passkey
    int passkey_trials = 1;
    bool mass_recall = true;              // capture + per-head recall
    std::string score_spec = "softmax";
    // Run the forward passes on this GPU (model/llama_gpu_api.h; softmax
    // only): perplexity, agreement and passkey from its score(), the capture
    // for mass recall through its observer (the recall itself on the CPU),
    // times and densities from its stats. The plan must use device "cuda".
    llama_gpu * gpu = nullptr;
};

// Holds the model, the evaluation tokens and per-ctx caches (the dense
// reference of every window, the capture used for mass recall), so rows at
// the same ctx share them. The text must be evaluation text: text_require_part
// is called on it (kjv:calib is refused) unless it is a plain file.
class sweep_model_runner {
public:
    sweep_model_runner(const llama_model & m, const bpe_tokenizer * tok, const text_source & text,
                       std::vector<int32_t> tokens, sweep_model_options opt);
    ~sweep_model_runner();
    sweep_row operator()(const sweep_task & t, job_progress * progress);

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

// Refuses calibration text for a reported metric (input_error).
void sweep_require_evaluation(const text_source & text, const std::string & what);

// Mean over heads of the attention-mass recall of `method` on one captured
// layer (softmax dense reference; float logits, double sums).
double layer_mass_recall(const attention_layer_io & io, const sparse_method & method);
// The same per query head (n_head values).
std::vector<double> layer_mass_recall_heads(const attention_layer_io & io, const sparse_method & method);

} // namespace attnlab
