#include "lab/regime_budget.h"

#include <algorithm>
#include <cstdio>

#include "base/error.h"

namespace attnlab {

double least_density_within(const std::vector<sweep_row> & rows, const std::string & method_name, int64_t ctx,
                            double max_delta_ppl_rel, bool * interpolated) {
    std::vector<const sweep_row *> r;
    for (const sweep_row & x : rows) {
        if (x.method_name == method_name && x.ctx == ctx) r.push_back(&x);
    }
    std::sort(r.begin(), r.end(), [](const sweep_row * a, const sweep_row * b) { return a->block_density < b->block_density; });
    if (interpolated) *interpolated = false;
    for (size_t k = 0; k < r.size(); k++) {
        if (r[k]->delta_ppl_rel > max_delta_ppl_rel) continue;
        if (k == 0) return r[k]->block_density;
        // the straight line from the failing row below to this passing one
        const sweep_row & lo = *r[k - 1];
        const sweep_row & hi = *r[k];
        const double span = lo.delta_ppl_rel - hi.delta_ppl_rel;
        if (span <= 0.0 || hi.block_density <= lo.block_density) return hi.block_density;
        const double t = (lo.delta_ppl_rel - max_delta_ppl_rel) / span;
        if (interpolated) *interpolated = true;
        return lo.block_density + t * (hi.block_density - lo.block_density);
    }
    return -1.0;
}

regime_table regime_table_from_sweep(const regime_table & base, const std::vector<sweep_row> & rows,
                                     double max_delta_ppl_rel, const std::string & sweep_dir,
                                     std::vector<regime_budget_entry> * report) {
    if (rows.empty()) throw input_error(sweep_dir, "results.jsonl", "no sweep rows to take accuracy budgets from");
    if (!(max_delta_ppl_rel > 0.0 && max_delta_ppl_rel <= 10.0)) {
        throw input_error("--max-ppl-increase", "budget", "must be in (0, 10] (a relative perplexity increase, 0.05 = 5%)");
    }
    // The longest context the sweep measured: budgets there are the ones
    // nearest to the regime map's lengths.
    int64_t ctx = 0;
    for (const sweep_row & x : rows) ctx = std::max<int64_t>(ctx, x.ctx);
    const sweep_row & any = rows.front();

    regime_table t;
    t.name = base.name + "+measured";
    t.file = sweep_dir;
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "Densities measured by the sweep in %s: least block density with perplexity increase <= %.3g%% on %s "
                  "(%s), ctx %lld, held constant at every context (an assumption). Costs from %s.",
                  sweep_dir.c_str(), 100.0 * max_delta_ppl_rel, any.model_id.c_str(), any.text_spec.c_str(), (long long) ctx,
                  base.file.c_str());
    t.source = buf;
    for (const regime_method & m : base.methods) {
        regime_budget_entry e;
        e.table_name = m.name;
        e.ctx = ctx;
        if (m.method.kind == sim_method_kind::dense) {
            t.methods.push_back(m);
            continue;
        }
        std::vector<std::string> candidates = {m.name};
        if (m.method.kind == sim_method_kind::window) candidates = {"window", "sinks_window"};
        bool any_rows = false;
        for (const std::string & c : candidates) {
            int n = 0;
            for (const sweep_row & x : rows) n += x.method_name == c && x.ctx == ctx;
            if (n == 0) continue;
            any_rows = true;
            bool interp = false;
            const double d = least_density_within(rows, c, ctx, max_delta_ppl_rel, &interp);
            if (d > 0.0 && (e.density < 0.0 || d < e.density)) {
                e.density = d;
                e.sweep_method = c;
                e.interpolated = interp;
                e.rows = n;
            } else if (e.sweep_method.empty()) {
                e.sweep_method = c;
                e.rows = n;
            }
        }
        regime_method out = m;
        if (!any_rows) {
            out.source = "not measured by this sweep: " + m.source;
            t.methods.push_back(out);
        } else if (e.density > 0.0) {
            out.min_density_by_ctx = {{double(ctx), std::min(1.0, e.density)}};
            std::snprintf(buf, sizeof(buf), "measured: %s reaches the budget at block density %.3f%s (ctx %lld, %d rows)",
                          e.sweep_method.c_str(), e.density, e.interpolated ? " (interpolated between rows)" : "",
                          (long long) ctx, e.rows);
            out.source = buf;
            t.methods.push_back(out);
        }
        if (report && any_rows) report->push_back(e);
    }
    return t;
}

} // namespace attnlab
