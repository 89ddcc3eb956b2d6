// Scenario kind `sim_regimes` (SIMULATED): the regime map of lab/regime_map.h,
// the driver of `attnlab-cli sim --regimes`.
#include <cmath>

#include "lab/figures.h"
#include "lab/regime_map.h"
#include "lab/scenario/common.h"
#include "lab/units.h"

namespace attnlab {

using nlohmann::json;

namespace {

void report(scenario_out & R, const model_preset & m, const hw_preset & h, const sim_options & o, const regime_map_result & res) {
    const regime_table & t = res.table;
    R.md << "**SIMULATED** regime map (core/sim): " << m.name << " on " << h.name << ", " << sim_phase_name(o.phase)
         << "; the least density each method needs comes from the table `" << t.file << "` (" << t.source << ").\n\n| L |";
    for (const auto & rm : t.methods) R.md << " " << rm.name << " |";
    R.md << " cheapest | seed's rule | |\n|---|";
    for (size_t i = 0; i < t.methods.size(); ++i) R.md << "---|";
    R.md << "---|---|---|\n";
    for (const auto & r : res.rows) {
        R.md << "| " << r.ctx << " |";
        for (const auto & cell : r.cells) R.md << " " << fmt_num("%.4g s", cell.time_s) << (cell.fits ? "" : "*") << " |";
        R.md << " " << r.cheapest << " | " << r.seed_rule << " | " << (r.agrees ? "agrees" : "differs") << " |\n";
    }
    R.md << "\n" << res.agreement << " of " << res.rows.size() << " context lengths agree with the seed's rule; * = does not fit in "
         << fmt_num("%g", h.mem_gb) << " GB.\n\n";
}

void figures(scenario_out & R, const model_preset & m, const hw_preset & h, const sim_options & o, const regime_map_result & res) {
    plot_spec p;
    p.title = "SIMULATED: time per method vs context";
    p.note = m.name + " on " + h.name + ", " + sim_phase_name(o.phase);
    p.x_label = "context length L";
    p.y_label = "seconds";
    p.y_log = true;
    p.x_format = pow2_label;
    for (size_t k = 0; k < res.table.methods.size(); ++k) {
        plot_series se;
        se.label = res.table.methods[k].name;
        se.color = plot_palette(int(k));
        for (const auto & r : res.rows) {
            se.x.push_back(std::log2(double(r.ctx)));
            se.y.push_back(std::max(1e-30, r.cells[k].time_s));
        }
        p.series.push_back(se);
    }
    plot_write_png(R.fig("regime_time.png"), p);
    R.figure_link("time per method vs L", "figures/regime_time.png");
    plot_spec q;
    q.title = "SIMULATED: speed-up of the cheapest method over dense";
    q.x_label = "context length L";
    q.y_label = "dense time / cheapest time";
    q.x_format = pow2_label;
    plot_series se;
    se.label = "cheapest / dense";
    se.color = plot_palette(0);
    for (const auto & r : res.rows) {
        se.x.push_back(std::log2(double(r.ctx)));
        se.y.push_back(r.speedup_vs_dense);
    }
    q.series = {se};
    plot_write_png(R.fig("regime_speedup.png"), q);
    R.figure_link("speed-up of the cheapest method", "figures/regime_speedup.png");
}

void run(const scenario & s, scenario_out & R, job_progress * progress) {
    const json & c = s.cfg;
    const model_preset m = model_preset_load(c["source"].get<std::string>());
    const hw_preset h = hw_preset_load(c["hw"].get<std::string>());
    regime_map_options opt;
    opt.table = c["table"].get<std::string>();
    opt.sim.phase = c["phase"].get<std::string>() == "decode" ? sim_phase::decode : sim_phase::prefill;
    opt.contexts.clear();
    for (int x : c["ctx"].get<std::vector<int>>()) opt.contexts.push_back(x);
    const regime_map_result res = regime_map_run(m, h, opt, progress);
    const regime_table & t = res.table;
    R.inputs["model_preset"] = {{"name", m.name}, {"file", m.file}};
    R.inputs["hw_preset"] = {{"name", h.name}, {"file", h.file}};
    R.inputs["regime_table"] = {{"name", t.name}, {"file", t.file}, {"source", t.source}};
    for (const auto & rm : t.methods) R.methods.push_back(sim_method_spec(rm.method));
    R.csv_columns = {"ctx", "cheapest", "cheapest_family", "seed_rule", "agrees", "speedup_vs_dense"};
    for (const auto & rm : t.methods) R.csv_columns.push_back(rm.name + "_time_s");
    for (const auto & r : res.rows) {
        json csv = {{"ctx", r.ctx}, {"cheapest", r.cheapest}, {"cheapest_family", r.cheapest_family}, {"seed_rule", r.seed_rule},
                    {"agrees", r.agrees}, {"speedup_vs_dense", r.speedup_vs_dense}};
        for (const auto & cell : r.cells) csv[cell.name + "_time_s"] = cell.time_s;
        R.csv_rows.push_back(csv);
    }
    R.metrics["label"] = "simulated";
    R.metrics["seed_rule"] = k_seed_regime_rule;
    R.metrics["agreement"] = res.agreement;
    R.metrics["rows"] = regime_rows_json(res.rows, false);
    report(R, m, h, opt.sim, res);
    if (R.figures && !res.rows.empty()) figures(R, m, h, opt.sim, res);
}

} // namespace

scenario_kind scenario_kind_sim_regimes() {
    std::vector<int> ctxs;
    for (int64_t c : regime_default_contexts()) ctxs.push_back(int(c));
    const std::vector<scenario_key> own = {key_of("table", key_type::str, "default"),
                                           key_non_empty(key_of("ctx", key_type::int_list, ctxs, 1, k_scenario_max_sim_ctx)),
                                           key_choice("phase", key_type::str, "prefill", {"prefill", "decode"})};
    return {"sim_regimes", sim_kind_keys("llama-3-8b", own), {"quadratic", "tradeoffs"}, run, nullptr, /*needs_model*/ false};
}

} // namespace attnlab
