#pragma once
// The scenario-kind registry. A kind is one entry: its name, its own keys
// (the schema the generic validator in schema.cpp checks), the GUI views it
// opens by default, what it needs, and the function that runs it. Each kind
// lives in its own file (kind_<name>.cpp) and returns its entry; kinds.cpp is
// the one table listing them. Nothing outside that table looks at a kind's
// name: scenario_parse, scenario_run and the report writer ask the entry.
//
// Adding a kind: kind_<name>.cpp (keys, views, run), its declaration and
// table entry in kinds.cpp, a scenarios/<file>.json, its section in
// docs/scenarios.md and a check in tests/test_scenario.cpp.
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/scenario.h"

namespace attnlab {

class job_progress;

// ---- keys (the schema)

enum class key_type { str, boolean, integer, real, int_list, real_list, str_list };

struct scenario_key {
    std::string name;
    key_type type = key_type::str;
    nlohmann::json def;                   // null: required
    double lo = -1e300, hi = 1e300;       // numbers and list elements
    bool lo_open = false;                 // (lo, hi] instead of [lo, hi]
    std::vector<std::string> choices;     // strings and string-list elements ({} = any)
    bool non_empty = false;               // lists
    // An extra check of the value (after the type and range), returning the
    // error message or "" when it is fine (block: one of 16..128).
    std::string (*check)(const nlohmann::json & v) = nullptr;
};

scenario_key key_of(std::string name, key_type t, nlohmann::json def, double lo = -1e300, double hi = 1e300, bool lo_open = false);
scenario_key key_choice(std::string name, key_type t, nlohmann::json def, std::vector<std::string> choices);
scenario_key key_non_empty(scenario_key k);

// Keys several kinds share, with the same range and default.
constexpr double k_scenario_max_ctx = 1 << 20;
constexpr double k_scenario_max_sim_ctx = 1 << 24;
scenario_key key_block();           // 64, one of 16, 32, 64, 128
scenario_key key_densities(nlohmann::json def);   // (0, 1], non-empty
scenario_key key_recall_grid();     // block_topk rho of recall curves

// A kind's key list: the keys its family starts with, then its own.
//   model kinds       seed, source (a model file), text
//   calibrated kinds  the model keys, calib_text, ctx, calib_windows, layers, block
//   simulated kinds   seed, source (a model preset, default given), hw
std::vector<scenario_key> model_kind_keys(std::vector<scenario_key> own);
std::vector<scenario_key> calibrated_kind_keys(std::vector<scenario_key> own);
std::vector<scenario_key> sim_kind_keys(const char * model_preset, std::vector<scenario_key> own);

// ---- what a run collects; report.cpp turns it into the files

struct scenario_out {
    std::string dir;
    bool figures = true;
    nlohmann::json metrics = nlohmann::json::object();
    nlohmann::json inputs = nlohmann::json::object();
    nlohmann::json methods = nlohmann::json::array();
    nlohmann::json trained = nlohmann::json::array();
    nlohmann::json seeds = nlohmann::json::object();
    nlohmann::json timings = nlohmann::json::object();
    std::vector<std::string> csv_columns;
    nlohmann::json csv_rows = nlohmann::json::array();   // objects with csv_columns keys
    std::ostringstream md;                                // the report body after the header
    std::vector<std::string> figure_files;                // relative paths

    // The path of figure `name` (figures/ created), recorded for the report.
    std::string fig(const std::string & name);
    void figure_link(const std::string & caption, const std::string & rel) { md << "![" << caption << "](" << rel << ")\n\n"; }
};

// ---- the entry

struct scenario_kind {
    std::string name;
    std::vector<scenario_key> keys;          // the kind's own keys, in the order errors list them
    std::vector<std::string> views;          // default GUI views (the app's ids, as plain strings)
    void (*run)(const scenario & s, scenario_out & out, job_progress * progress) = nullptr;
    // Checks that need the merged scenario (defaults and "small" applied):
    // throws input_error(file, prefix + key, ...). May be null.
    void (*check)(const std::string & file, const std::string & prefix, const nlohmann::json & cfg) = nullptr;
    bool needs_model = true;                 // a model file and KJV text
    bool shards = false;                     // --shard i/n splits its rows
    bool writes_own_csv = false;             // results.csv written while it runs (not by the report writer)
    bool gpu = false;                        // runs its forward passes on a GPU with --device cuda
};

// The table (kinds.cpp), in the order docs/scenarios.md lists them.
const std::vector<scenario_kind> & scenario_kind_table();
// nullptr when no kind has that name.
const scenario_kind * scenario_kind_find(const std::string & name);

} // namespace attnlab
