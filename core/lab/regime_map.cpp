// The regime map driver (see regime_map.h).
#include "lab/regime_map.h"

#include "base/job.h"
#include "lab/sweep.h"

namespace attnlab {

using nlohmann::json;

const char * const k_seed_regime_rule = "dense < 8k, window 8k-32k, block-sparse 32k-128k, learnable > 128k";

regime_map_result regime_map_run(const model_preset & m, const hw_preset & h, const regime_map_options & opt, job_progress * progress) {
    job_step(progress, 0.0, "regimes");
    regime_map_result r;
    r.table = regime_table_load(opt.table);
    if (!opt.budget_from.empty()) {
        r.table = regime_table_from_sweep(r.table, sweep_load_rows(opt.budget_from), opt.max_ppl_increase, opt.budget_from, &r.budget);
    }
    r.rows = regimes_compute(m, h, r.table, opt.sim, opt.contexts);
    for (const auto & row : r.rows) r.agreement += row.agrees;
    return r;
}

json regime_rows_json(const std::vector<regime_row> & rows, bool with_cost) {
    json arr = json::array();
    for (const auto & r : rows) {
        json cells = json::array();
        for (const auto & c : r.cells) {
            json cell = {{"method", c.name}, {"family", c.family}, {"spec", c.spec}, {"block_density", c.block_density},
                         {"time_s", c.time_s}, {"fits", c.fits}};
            if (with_cost) cell["cost_per_mtok"] = c.cost_per_mtok;
            cells.push_back(cell);
        }
        arr.push_back({{"ctx", r.ctx}, {"cheapest", r.cheapest}, {"cheapest_family", r.cheapest_family}, {"seed_rule", r.seed_rule},
                       {"agrees", r.agrees}, {"speedup_vs_dense", r.speedup_vs_dense}, {"methods", cells}});
    }
    return arr;
}

json regime_budget_json(const std::vector<regime_budget_entry> & budget) {
    json arr = json::array();
    for (const auto & e : budget) {
        arr.push_back({{"method", e.table_name}, {"measured_with", e.sweep_method}, {"ctx", e.ctx}, {"rows", e.rows},
                       {"block_density", e.density < 0.0 ? json(nullptr) : json(e.density)}, {"interpolated", e.interpolated}});
    }
    return arr;
}

} // namespace attnlab
