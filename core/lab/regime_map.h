#pragma once
// The regime map as one driver, the loop both `attnlab-cli sim --regimes` and
// the `sim_regimes` scenario kind run (SIMULATED): a regime table, optionally
// with its densities measured by a sweep (lab/regime_budget.h), every method's
// time at each context length, the cheapest method against the seed's rule.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/regime_budget.h"
#include "sim/presets.h"
#include "sim/regimes.h"

namespace attnlab {

class job_progress;

// The seed's rule in words (the rule itself: seed_rule_family, sim/regimes.h).
extern const char * const k_seed_regime_rule;

struct regime_map_options {
    std::string table = "default";     // regime table name or JSON path
    std::string budget_from;           // sweep directory whose rows set the densities ("" = the table's)
    double max_ppl_increase = 0.05;    // accuracy budget for budget_from
    std::vector<int64_t> contexts = regime_default_contexts();
    sim_options sim;                   // phase, batch, calibration, ...
};

struct regime_map_result {
    regime_table table;                        // as used (after budget_from)
    std::vector<regime_budget_entry> budget;   // one per table method when budget_from is set
    std::vector<regime_row> rows;
    int agreement = 0;                         // rows whose cheapest family is the seed rule's
};

regime_map_result regime_map_run(const model_preset & m, const hw_preset & h, const regime_map_options & opt,
                                 job_progress * progress = nullptr);

// rows as JSON: {"ctx", "cheapest", "cheapest_family", "seed_rule", "agrees",
// "speedup_vs_dense", "methods": [{"method", "family", "spec",
// "block_density", "time_s", ["cost_per_mtok",] "fits"}]}
nlohmann::json regime_rows_json(const std::vector<regime_row> & rows, bool with_cost);

// [{"method", "measured_with", "ctx", "rows", "block_density" (null: none within budget), "interpolated"}]
nlohmann::json regime_budget_json(const std::vector<regime_budget_entry> & budget);

} // namespace attnlab
