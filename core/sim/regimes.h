#pragma once
// Regime map: for a model, a GPU and an accuracy budget (the least block
// density each method needs to stay accurate enough: a table for now, later
// measured recall curves), which method is cheapest at each context length,
// set against the seed's rule (dense < 8k, window 8k-32k, block-sparse
// 32k-128k, learnable > 128k). Simulated.
//
// Table file (assets/presets/regimes/NAME.json):
//   {"kind": "regimes", "name": ..., "source": ...,
//    "methods": [{"name": "block_topk", "method": "block_topk:rho=0.25,overhead=0.03,eff=0.85,fixed_us=20",
//                 "min_density_by_ctx": [[4096, 0.4], [131072, 0.2]], "source": "..."}, ...]}
// "method" is a sim_method spec; "min_density_by_ctx" (optional) overrides rho
// per context (log-linear in ctx, clamped at the ends). For a window method it
// sets w so that the window's block density is about that value (w = rho*L/2).
#include <string>
#include <utility>
#include <vector>

#include "sim/cost.h"

namespace attnlab {

struct regime_method {
    std::string name;
    sim_method method;
    std::vector<std::pair<double, double>> min_density_by_ctx;
    std::string source;
};

struct regime_table {
    std::string name, file, source;
    std::vector<regime_method> methods;
};

regime_table regime_table_parse(const std::string & text, const std::string & file);
// By path or by name under <dir>/regimes.
regime_table regime_table_load(const std::string & name_or_path, const std::string & dir = "");

struct regime_cell {
    std::string name, family, spec;
    double block_density = 0.0;
    double time_s = 0.0;
    double cost_per_mtok = 0.0;
    bool fits = true;
};

struct regime_row {
    int64_t ctx = 0;
    std::vector<regime_cell> cells;
    std::string cheapest;         // method name
    std::string cheapest_family;
    std::string seed_rule;        // family the seed's rule picks
    bool agrees = false;
    double speedup_vs_dense = 1.0;
};

// The seed's rule: dense < 8192 <= window <= 32768 < block_sparse <= 131072 < learned.
std::string seed_rule_family(int64_t ctx);

// Contexts 1k, 2k, ..., 1M (powers of two).
std::vector<int64_t> regime_default_contexts();

// Density the table gives a method at ctx (the spec's rho without a by-ctx list).
double regime_density_at(const regime_method & m, int64_t ctx);

std::vector<regime_row> regimes_compute(const model_preset & model, const hw_preset & hw, const regime_table & table,
                                        const sim_options & base, const std::vector<int64_t> & contexts);

} // namespace attnlab
