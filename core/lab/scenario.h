#pragma once
// Scenarios: one JSON file (schema "attnlab.scenario/1", docs/scenarios.md)
// names an experiment (kind, source, text, ctx, methods, densities, views,
// outputs); `attnlab-cli run` executes it headless and the GUI opens the same
// file. Each kind is an entry of the registry in lab/scenario/kind.h (keys,
// default views, run function), one file per kind under lab/scenario/, each a
// thin driver over existing core code:
//   sweep            lab/sweep.h (plan, execute, model runner) + lab/figures.h
//   passkey          lab/passkey_grid.h (as `attnlab-cli passkey`), each
//                    method patched into every layer
//   trained_compare  learned_gate trained on calibration captures vs
//                    block_topk vs oracle_topk at equal rho, on evaluation text
//   layer_adaptive   greedy vs uniform vs the seed schedule at a budget,
//                    calibrated on calibration text, measured on evaluation text
//   sim_quadratic    sim/cost.h over ctx (SIMULATED)
//   sim_regimes      lab/regime_map.h (as `attnlab-cli sim --regimes`; SIMULATED)
//   claims           lab/claims_measure.h (as `attnlab-cli claims`)
// Parsing checks every key (unknown keys, types, ranges) and throws
// input_error(file, "json.path", msg); defaults are filled in, and the
// scenario's "small" object (CI size) is applied when asked. The GUI's view
// ids belong to the app (app/view_ids.h): the front ends pass them in, and
// "views" is checked against that list (an empty list accepts any names:
// a manifest re-run, where the views were checked when it was written).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnlab {

class job_progress;

constexpr const char * k_scenario_schema = "attnlab.scenario/1";

struct scenario {
    std::string file;          // where it was read from ("" for text)
    std::string kind, title, description;
    bool small = false;        // the "small" overrides were applied
    // The scenario as run: every key present, defaults filled in, "small"
    // applied (the "small" object itself kept for the record).
    nlohmann::json cfg;
    // --shard i/n (sweep kind only): run rows with index % n == i.
    int shard_index = 0, shard_count = 1;
    // --device: "cpu", or "cuda" for kinds that run on a GPU (the kind's
    // entry says; others refuse it). Recorded in report.json's inputs.
    std::string device = "cpu";
};

// The kinds the schema accepts (the registry's names, in its order).
const std::vector<std::string> & scenario_kinds();

// Parses and validates; input_error(file, field path, message) on anything
// wrong. view_ids: the views the front end has (app/view_ids.h); every
// caller passes them, so a scenario naming a view the app lacks is refused
// from any front end (std::invalid_argument for an empty list).
scenario scenario_parse(const std::string & text, const std::string & file, bool small,
                        const std::vector<std::string> & view_ids);
scenario scenario_load(const std::string & path, bool small, const std::vector<std::string> & view_ids);

// Does the kind need a model file (source) and KJV text?
bool scenario_needs_model(const scenario & s);

// A model path of a scenario: as given when it exists, else relative to the
// source tree (scenarios say "assets/models/...").
std::string scenario_resolve_path(const std::string & path);

// Runs the scenario, writing into out_dir (created if absent; normally a
// snapshot_writer's staging path):
//   report.md         title, description, settings, tables, links to figures
//   results.csv       one row per measured point
//   results.json      the rows and the metrics
//   report.json       {"scenario", "inputs", "methods", "trained", "seeds",
//                      "metrics", "timings"}: everything for a manifest
//   figures/*.png
//   trained/*         fitted parameter files (trained_compare, layer_adaptive)
// Returns the metrics: deterministic numbers only (no wall times; those are
// in report.json's "timings"). job_cancelled propagates.
nlohmann::json scenario_run(const scenario & s, const std::string & out_dir, job_progress * progress);

} // namespace attnlab

namespace attnlab {

// The scenario a snapshot manifest recorded ("scenario": the JSON as run,
// defaults filled and "small" already applied), parsed again.
scenario scenario_from_json(const nlohmann::json & cfg, const std::string & file, const std::vector<std::string> & view_ids);

// scenario_run into a snapshot (lab/snapshot.h): staged in a hidden sibling
// of out_dir and committed with a manifest ("scenario", "inputs", "methods",
// "trained", "seeds", "threads", "metrics", "timings") only when the run
// finished; a cancel or an error leaves no out_dir. Returns the manifest.
nlohmann::json scenario_run_snapshot(const scenario & s, const std::string & out_dir, bool overwrite, job_progress * progress);

} // namespace attnlab
