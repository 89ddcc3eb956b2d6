// Scenario kind `passkey`: the passkey grid (lab/passkey_grid.h, the loop of
// `attnlab-cli passkey`) for each method x density x ctx, each method patched
// into every layer.
#include <algorithm>
#include <map>

#include "lab/figures.h"
#include "lab/passkey_grid.h"
#include "lab/scenario/common.h"
#include "methods/method.h"

namespace attnlab {

using nlohmann::json;

namespace {

using accuracy_map = std::map<std::pair<std::string, int>, std::vector<double>>;   // (method, ctx) -> accuracy per depth

void report_table(scenario_out & R, const json & summary, const std::vector<double> & depths) {
    R.md << "| method | ctx | block density | accuracy |";
    for (double d : depths) R.md << " d=" << fmt_num("%g", d) << " |";
    R.md << "\n|---|---|---|---|";
    for (size_t i = 0; i < depths.size(); ++i) R.md << "---|";
    R.md << "\n";
    for (const auto & sm : summary) {
        R.md << "| `" << sm["method"].get<std::string>() << "` | " << sm["ctx"] << " | " << fmt_num("%.3f", sm["block_density"].get<double>())
             << " | " << fmt_num("%.2f", sm["accuracy"].get<double>()) << " |";
        for (const auto & a : sm["accuracy_by_depth"]) R.md << " " << fmt_num("%.2f", a.get<double>()) << " |";
        R.md << "\n";
    }
    R.md << "\n";
}

void figures(scenario_out & R, const std::string & note, const std::vector<int> & ctxs, const std::vector<std::string> & specs,
             const std::vector<double> & depths, const accuracy_map & acc_by) {
    for (int ctx : ctxs) {
        plot_spec p;
        p.title = "Passkey retrieval at ctx " + std::to_string(ctx);
        p.note = note;
        p.x_label = "needle depth (fraction of the filler)";
        p.y_label = "retrieval accuracy";
        p.y_min = -0.05;
        p.y_max = 1.05;
        int i = 0;
        for (const auto & sp : specs) {
            auto it = acc_by.find({sp, ctx});
            if (it == acc_by.end()) continue;
            plot_series se;
            se.label = sp;
            se.x = depths;
            se.y = it->second;
            se.color = plot_palette(i++);
            p.series.push_back(se);
        }
        const std::string name = "passkey_ctx" + std::to_string(ctx) + ".png";
        plot_write_png(R.fig(name), p);
        R.figure_link("passkey accuracy by depth, ctx " + std::to_string(ctx), "figures/" + name);
    }
}

void run(const scenario & s, scenario_out & R, job_progress * progress) {
    const json & c = s.cfg;
    const std::vector<int> ctxs = c["ctx"].get<std::vector<int>>();
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the passkey test", ctxs, mc, R, progress);
    const std::vector<double> depths = c["depths"].get<std::vector<double>>();
    const int trials = c["trials"].get<int>();
    const uint64_t seed = c["seed"].get<uint64_t>();
    R.seeds["passkey_seeds"] = {{"first", seed}, {"count", trials}};
    // sweep_plan expands methods x densities x ctx and canonicalises the specs.
    const std::vector<sweep_task> tasks = sweep_plan(c["methods"].get<std::vector<std::string>>(),
                                                     c["densities"].get<std::vector<double>>(), ctxs, src.sha256,
                                                     mc.m.source_sha256, 0);
    std::vector<std::string> specs;
    for (const auto & t : tasks) {
        if (std::find(specs.begin(), specs.end(), t.method) == specs.end()) specs.push_back(t.method);
    }
    for (const auto & sp : specs) R.methods.push_back(sp);
    json rows = json::array(), summary = json::array();
    R.csv_columns = {"method", "ctx", "depth", "seed", "key", "needle_position", "digits_correct", "n_digits", "retrieved"};
    const auto t0 = scenario_clock::now();
    accuracy_map acc_by;
    for (size_t ti = 0; ti < tasks.size(); ++ti) {
        const sweep_task & t = tasks[ti];
        sparse_attention_hook hook(std::shared_ptr<const sparse_method>(method_create(t.method)));
        passkey_grid_options o;
        o.ctxs = {t.ctx};
        o.depths = depths;
        o.trials = trials;
        o.seed = seed;
        o.label = t.method_name;
        o.progress_lo = double(ti) / tasks.size();
        o.progress_hi = double(ti + 1) / tasks.size();
        const std::vector<passkey_trial> res = passkey_grid_run(mc.m, *mc.tok, src.text, o, &hook, progress);
        int ok_all = 0;
        for (const auto & r : res) {
            json row = passkey_trial_json(r);
            row["method"] = t.method;
            rows.push_back(row);
            R.csv_rows.push_back(row);
            ok_all += r.retrieved;
        }
        const std::vector<double> acc = passkey_accuracy_by_depth(res, depths);
        acc_by[{t.method, t.ctx}] = acc;
        // block density of the method's mask on this ctx, for the report
        double dens = 0;
        for (const auto & rec : hook.records()) dens += rec.block_density / double(hook.records().size());
        summary.push_back({{"method", t.method}, {"ctx", t.ctx}, {"accuracy", double(ok_all) / (trials * double(depths.size()))},
                           {"accuracy_by_depth", acc}, {"block_density", dens}});
    }
    R.timings["trials_s"] = secs_since(t0);
    R.metrics["trials"] = rows;
    R.metrics["summary"] = summary;
    R.metrics["depths"] = depths;

    R.md << "## Results\n\nA five-digit key hidden at each depth of " << src.spec << " filler, asked for at the end; retrieved = the greedy "
         << "answer has every digit right. " << trials << " trial(s) per depth; each method patched into every layer of "
         << mc.m.model_id << ". Block density is the mean over layers and heads of the method's mask on the prompts.\n\n";
    report_table(R, summary, depths);
    if (R.figures) {
        figures(R, mc.m.model_id + ", " + src.spec + ", " + std::to_string(trials) + " trial(s) per depth", ctxs, specs, depths, acc_by);
    }
}

} // namespace

scenario_kind scenario_kind_passkey() {
    const std::vector<scenario_key> own = {key_non_empty(key_of("ctx", key_type::int_list, {2048}, 16, k_scenario_max_ctx)),
                                           key_non_empty(key_of("methods", key_type::str_list, {"dense"})),
                                           key_densities({0.2}),
                                           key_non_empty(key_of("depths", key_type::real_list, {0.1, 0.3, 0.5, 0.7, 0.9}, 0, 1)),
                                           key_of("trials", key_type::integer, 1, 1, 100)};
    return {"passkey", model_kind_keys(own), {"source", "attention_map", "masks"}, run, check_method_specs};
}

} // namespace attnlab
