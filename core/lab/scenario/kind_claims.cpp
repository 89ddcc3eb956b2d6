// Scenario kind `claims`: the seed claims measured on the scenario's model
// (lab/claims_measure.h, the driver of `attnlab-cli claims`).
#include <algorithm>

#include "lab/claims_measure.h"
#include "lab/figures.h"
#include "lab/scenario/common.h"

namespace attnlab {

using nlohmann::json;

namespace {

// The claim rows' text embeds measured times: kept in the report and in
// timings, not in the metrics. The numbers behind them (minus times) are.
json data_without_times(json data) {
    if (!data.contains("end_to_end")) return data;
    json e2e = json::array();
    for (auto r : data["end_to_end"]) {
        if (r.is_object()) {
            for (const char * k : {"predictor_s", "kernel_s", "dense_kernel_s", "seconds"}) r.erase(k);
        }
        e2e.push_back(r);
    }
    data["end_to_end"] = e2e;
    return data;
}

void report(scenario_out & R, const model_ctx & mc, const text_source & src, const claims_measure_options & o, const claims_report & rep) {
    R.md << "## Seed claims vs measured\n\nOn " << mc.m.model_id << ", " << src.spec << ", ctx " << o.ctx << ", " << o.windows
         << " perplexity window(s), B=" << o.block << ".\n\n| seed | claim | measured here | status |\n|---|---|---|---|\n";
    const auto cell = [](std::string x) {
        for (auto & ch : x) ch = ch == '|' ? '/' : ch == '\n' ? ' ' : ch;
        return x.empty() ? std::string("-") : x;
    };
    for (const auto & r : rep.rows) {
        R.md << "| " << r.seed << " | " << cell(r.claim) << " | " << cell(r.measured) << " | "
             << cell(r.status + (r.how.empty() ? "" : ": " + r.how)) << " |\n";
    }
    R.md << "\n## Exact arithmetic (sim/claims)\n\n| seed | quantity | claimed | exact | verdict |\n|---|---|---|---|---|\n";
    for (const auto & e : rep.exact) {
        R.md << "| " << e.seed << " | " << cell(e.quantity) << " | " << fmt_num("%.4g", e.claimed) << " " << e.unit << " | " << e.kind
             << " " << fmt_num("%.4g", e.exact) << " " << e.unit << " | " << cell(e.verdict) << " |\n";
    }
    R.md << "\n";
}

void figures(scenario_out & R, const std::string & note, const json & data) {
    plot_spec p;
    p.title = "block_topk mass recall vs density";
    p.note = note;
    p.x_label = "rho (block density set)";
    p.y_label = "recall";
    p.y_min = 0;
    p.y_max = 1.02;
    plot_series a;
    a.label = "mean mass recall";
    a.x = data["rho_grid"].get<std::vector<double>>();
    a.y = data["block_topk_mean_recall"].get<std::vector<double>>();
    a.color = plot_palette(0);
    plot_series b = a;
    b.label = "share of heads with recall >= 0.95";
    b.y = data["block_topk_share_heads_recall_ge_095"].get<std::vector<double>>();
    b.color = plot_palette(1);
    p.series = {a, b};
    plot_write_png(R.fig("recall_curve.png"), p);
    R.figure_link("recall curve", "figures/recall_curve.png");
    plot_spec q;
    q.title = "Density for 95% mass recall, per layer (seed: early 40-50%, deep 10-15%)";
    q.x_label = "layer";
    q.y_label = "smallest grid rho with mean recall >= 0.95";
    plot_series l;
    l.label = "measured";
    const std::vector<double> lr = data["layer_rho_for_095"].get<std::vector<double>>();
    for (size_t i = 0; i < lr.size(); ++i) {
        l.x.push_back(double(i));
        l.y.push_back(lr[i]);
    }
    l.color = plot_palette(0);
    plot_series seed;
    seed.label = "seed schedule (0.45 -> 0.125)";
    seed.x = {0.0, double(std::max<size_t>(1, lr.size()) - 1)};
    seed.y = {0.45, 0.125};
    seed.dashed = true;
    seed.marker = plot_marker::none;
    seed.color = 0x888888;
    q.series = {l, seed};
    plot_write_png(R.fig("layer_profile.png"), q);
    R.figure_link("density for 95% recall per layer", "figures/layer_profile.png");
}

void run(const scenario & s, scenario_out & R, job_progress * progress) {
    const json & c = s.cfg;
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the claims' measurements", {}, mc, R, progress);
    claims_measure_options o;
    o.text = c["text"].get<std::string>();
    o.ctx = c["ctx"].get<int>();
    o.windows = c["windows"].get<int>();
    o.block = c["block"].get<int>();
    o.rho_grid = c["grid"].get<std::vector<double>>();
    o.ppl_rhos = c["densities"].get<std::vector<double>>();
    o.trained_specs = c["methods"].get<std::vector<std::string>>();
    o.progress = progress;
    const auto t0 = scenario_clock::now();
    const claims_report rep = claims_measure(mc.m, *mc.tok, o);
    R.timings["claims_s"] = secs_since(t0);
    const json data = data_without_times(rep.data);
    R.metrics["data"] = data;
    json status = json::array(), rows_text = json::array();
    for (const auto & r : rep.rows) {
        status.push_back({{"seed", r.seed}, {"claim", r.claim}, {"status", r.status}});
        rows_text.push_back({{"seed", r.seed}, {"claim", r.claim}, {"measured", r.measured}, {"how", r.how}});
        R.csv_rows.push_back(measured_claim_json(r));
    }
    R.metrics["exact"] = claims_exact_json(rep.exact);
    R.metrics["claim_status"] = status;
    R.timings["claim_rows"] = rows_text;
    for (const auto & sp : o.trained_specs) R.methods.push_back(sp);
    R.methods.push_back("block_topk:B=" + std::to_string(o.block));
    R.methods.push_back("oracle_topk:B=" + std::to_string(o.block));
    R.csv_columns = {"seed", "claim", "status", "measured", "how"};
    report(R, mc, src, o, rep);
    if (R.figures && data.contains("rho_grid")) figures(R, mc.m.model_id + ", " + src.spec + ", ctx " + std::to_string(o.ctx), data);
}

} // namespace

scenario_kind scenario_kind_claims() {
    const std::vector<scenario_key> own = {key_of("ctx", key_type::integer, 1024, 64, k_scenario_max_ctx),
                                           key_of("windows", key_type::integer, 2, 1, 64),
                                           key_block(),
                                           key_recall_grid(),
                                           key_densities({0.15, 0.2, 0.25}),
                                           key_of("methods", key_type::str_list, json::array())};
    return {"claims", model_kind_keys(own), {"tradeoffs", "layers_heads"}, run};
}

} // namespace attnlab
