// Scenario kind `layer_adaptive`: greedy vs uniform vs the seed schedule at
// each budget, calibrated on calibration text, measured on evaluation text.
#include "lab/figures.h"
#include "lab/scenario/common.h"
#include "methods/layer_adaptive.h"

namespace attnlab {

using nlohmann::json;

namespace {

// The three allocations measured at each budget, in the order of their specs.
const char * const k_roles[] = {"greedy", "uniform", "seed_scaled"};

recall_curves calibrate(const json & c, model_ctx & mc, scenario_out & R, job_progress * progress) {
    std::vector<qkv_capture> caps = calibration_captures(c, mc, R, progress);
    const std::vector<const qkv_capture *> ptrs = capture_ptrs(caps);
    const auto t0 = scenario_clock::now();
    stage_progress st(progress, 0.2, 0.3);
    recall_curves curves = layer_adaptive_calibrate(ptrs, c["grid"].get<std::vector<double>>(), c["block"].get<int>(), st.get());
    R.timings["calibration_s"] = secs_since(t0);
    return curves;
}

// One budget: the greedy table and the seed's schedule rescaled to it (both
// saved under trained/), the three specs to measure, and the calibration
// numbers for the metrics.
layer_adaptive_table build_budget(double b, int B, const recall_curves & curves, scenario_out & R, std::vector<std::string> & specs,
                                  json & per_budget) {
    layer_adaptive_table t = layer_adaptive_build(curves, b);
    const std::string tag = fmt_num("%g", b);
    const std::string rel = "trained/layer_adaptive_rho" + tag + ".json";
    layer_adaptive_save(R.dir + "/" + rel, t);
    record_trained(R, "layer_adaptive rho=" + tag, rel, t.prov.calib_text_sha256);
    layer_adaptive_table seed = t;
    seed.head_rho = t.seed_scaled.rho;
    const std::string rel_seed = "trained/seed_schedule_rho" + tag + ".json";
    layer_adaptive_save(R.dir + "/" + rel_seed, seed);
    record_trained(R, "seed schedule rho=" + tag, rel_seed, t.prov.calib_text_sha256);
    const double uniform_rho = t.uniform.rho.empty() ? b : t.uniform.rho[0];
    const std::string bs = fmt_num("%.17g", b) + ",B=" + std::to_string(B);
    specs.push_back("layer_adaptive:rho=" + bs + ",table=" + R.dir + "/" + rel);
    specs.push_back("block_topk:rho=" + fmt_num("%.17g", uniform_rho) + ",B=" + std::to_string(B));
    specs.push_back("layer_adaptive:rho=" + bs + ",table=" + R.dir + "/" + rel_seed);
    const auto alloc = [](const head_allocation & a) { return json{{"mean_recall", a.mean_recall}, {"mean_density", a.mean_density}}; };
    // At small ctx the diagonal and block 0 alone can exceed the budget.
    const bool reachable = t.greedy.mean_density <= b + 1e-9;
    per_budget.push_back({{"budget", b},
                          {"reachable", reachable},
                          {"calibration", {{"greedy", alloc(t.greedy)}, {"uniform", alloc(t.uniform)}, {"seed", alloc(t.seed)},
                                           {"seed_scaled", alloc(t.seed_scaled)}}},
                          {"uniform_rho", uniform_rho}});
    return t;
}

void report_table(scenario_out & R, const json & per_budget) {
    R.md << "| budget | allocation | predicted recall | predicted density | measured recall | measured block density | Δppl | top-1 agr. |\n"
         << "|---|---|---|---|---|---|---|---|\n";
    for (const auto & pb : per_budget) {
        const std::string budget = fmt_num("%g", pb["budget"].get<double>());
        for (const char * role : k_roles) {
            const json & cal = pb["calibration"][role];
            const json & ev = pb["evaluation"][role];
            R.md << "| " << budget << " | " << role << " | " << fmt_num("%.4f", cal["mean_recall"].get<double>()) << " | "
                 << fmt_num("%.4f", cal["mean_density"].get<double>()) << " | " << fmt_num("%.4f", ev["mass_recall"].get<double>())
                 << " | " << fmt_num("%.4f", ev["block_density"].get<double>()) << " | "
                 << fmt_num("%+.2f%%", 100 * ev["delta_ppl_rel"].get<double>()) << " | "
                 << fmt_num("%.3f", ev["top1_agreement"].get<double>()) << " |\n";
        }
        if (!pb["reachable"].get<bool>()) {
            R.md << "| " << budget << " | (budget below the least block density block_topk reaches "
                 << "at this ctx and B: the diagonal and block 0 are always kept) | | | | | | |\n";
        }
        const json & sd = pb["calibration"]["seed"];
        R.md << "| " << budget << " | seed (as given) | " << fmt_num("%.4f", sd["mean_recall"].get<double>()) << " | "
             << fmt_num("%.4f", sd["mean_density"].get<double>()) << " | - | - | - | - |\n";
    }
    R.md << "\n";
}

void figures(scenario_out & R, const std::string & note, const json & per_budget, const recall_curves & curves,
             const std::vector<layer_adaptive_table> & tables) {
    plot_spec p;
    p.title = "Measured mass recall at each budget";
    p.note = note;
    p.x_label = "budget (mean block density)";
    p.y_label = "mean per-head mass recall (evaluation)";
    for (int k = 0; k < 3; ++k) {
        plot_series se;
        se.label = k_roles[k];
        se.color = plot_palette(k);
        for (const auto & pb : per_budget) {
            se.x.push_back(pb["budget"].get<double>());
            se.y.push_back(pb["evaluation"][k_roles[k]]["mass_recall"].get<double>());
        }
        p.series.push_back(se);
    }
    plot_write_png(R.fig("recall_vs_budget.png"), p);
    R.figure_link("measured recall vs budget", "figures/recall_vs_budget.png");
    for (const layer_adaptive_table & t : tables) {
        plot_spec q;
        q.title = "Allotted block density per layer, budget " + fmt_num("%g", t.rho);
        q.x_label = "layer";
        q.y_label = "mean block density over the layer's heads (calibration)";
        const head_allocation * al[] = {&t.greedy, &t.uniform, &t.seed_scaled};
        for (int k = 0; k < 3; ++k) {
            plot_series se;
            se.label = k_roles[k];
            se.color = plot_palette(k);
            for (size_t li = 0; li < curves.layers.size(); ++li) {
                double d = 0;
                for (int h = 0; h < curves.n_head; ++h) d += al[k]->density[li * curves.n_head + h] / curves.n_head;
                se.x.push_back(curves.layers[li]);
                se.y.push_back(d);
            }
            q.series.push_back(se);
        }
        const std::string name = "layer_density_budget" + fmt_num("%g", t.rho) + ".png";
        plot_write_png(R.fig(name), q);
        R.figure_link(q.title, "figures/" + name);
    }
}

void run(const scenario & s, scenario_out & R, job_progress * progress) {
    const json & c = s.cfg;
    const int ctx = c["ctx"].get<int>(), B = c["block"].get<int>();
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the comparison", {ctx}, mc, R, progress);
    const recall_curves curves = calibrate(c, mc, R, progress);
    make_dirs(R.dir + "/trained");
    json per_budget = json::array();
    std::vector<std::string> specs;
    std::vector<layer_adaptive_table> tables;
    for (double b : c["densities"].get<std::vector<double>>()) tables.push_back(build_budget(b, B, curves, R, specs, per_budget));
    const std::vector<sweep_row> rows = eval_rows(specs, ctx, c["eval_windows"].get<int>(), mc, src, progress, 0.3, 1.0);
    for (size_t i = 0; i < rows.size(); ++i) {
        R.methods.push_back(relative_spec(rows[i].method, R.dir));
        per_budget[i / 3]["evaluation"][k_roles[i % 3]] = {{"method", relative_spec(rows[i].method, R.dir)},
                                                           {"mass_recall", rows[i].mass_recall},
                                                           {"block_density", rows[i].block_density},
                                                           {"delta_ppl_rel", rows[i].delta_ppl_rel},
                                                           {"top1_agreement", rows[i].top1_agreement}};
    }
    const json mrows = add_rows(R, rows);
    R.metrics["budgets"] = per_budget;
    R.metrics["rows"] = mrows;
    R.metrics["calibrated_heads"] = curves.heads.size();
    R.metrics["grid"] = curves.grid;

    R.md << "## Method\n\nPer-head recall curves of block_topk (B=" << B << ") on " << c["calib_windows"] << " window(s) of " << ctx
         << " tokens of " << c["calib_text"].get<std::string>() << "; at each budget (mean block density over heads) three "
         << "allocations: greedy (best recall gain per unit density), uniform (one rho for every head) and the seed's schedule "
         << "(rho linear in depth from 0.45 to 0.125, rescaled to the budget). Predicted on the calibration curves, then measured "
         << "on " << src.spec << " with each allocation patched into every layer.\n\n";
    report_table(R, per_budget);
    if (R.figures) figures(R, mc.m.model_id + ", " + src.spec + ", ctx " + std::to_string(ctx), per_budget, curves, tables);
}

} // namespace

scenario_kind scenario_kind_layer_adaptive() {
    const std::vector<scenario_key> own = {key_recall_grid(), key_densities({0.2, 0.3}),
                                           key_of("eval_windows", key_type::integer, 1, 1, 64)};
    return {"layer_adaptive", calibrated_kind_keys(own), {"layers_heads", "tradeoffs"}, run, check_calibrated};
}

} // namespace attnlab
