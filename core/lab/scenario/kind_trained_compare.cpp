// Scenario kind `trained_compare`: learned_gate trained on calibration
// captures vs block_topk vs oracle_topk at equal rho, on evaluation text.
#include <functional>

#include "lab/figures.h"
#include "lab/scenario/common.h"
#include "methods/learned_gate.h"

namespace attnlab {

using nlohmann::json;

namespace {

// The trained method (first) and the two it is compared with.
const std::vector<std::string> k_methods = {"learned_gate", "block_topk", "oracle_topk"};
const char * const k_gate_file = "trained/learned_gate.safetensors";

gate_params train_gate(const json & c, model_ctx & mc, scenario_out & R, job_progress * progress) {
    std::vector<qkv_capture> caps = calibration_captures(c, mc, R, progress);
    const std::vector<const qkv_capture *> ptrs = capture_ptrs(caps);
    gate_train_options o;
    o.block = c["block"].get<int>();
    o.d_g = c["d_g"].get<int>();
    o.steps = c["steps"].get<int>();
    o.lr = c["lr"].get<double>();
    o.seed = c["seed"].get<uint64_t>();
    o.layers = c["layers"].get<std::vector<int>>();
    stage_progress st(progress, 0.2, 0.3);
    o.progress = st.get();
    const auto t0 = scenario_clock::now();
    gate_params p = gate_train(ptrs, o);
    R.timings["training_s"] = secs_since(t0);
    return p;
}

json training_metrics(const gate_params & p) {
    json per_layer = json::array();
    for (size_t li = 0; li < p.layers.size(); ++li) {
        double a = 0, b = 0, v = 0;
        for (int h = 0; h < p.n_head; ++h) {
            a += p.initial_loss[li * p.n_head + h] / p.n_head;
            b += p.final_loss[li * p.n_head + h] / p.n_head;
            v += p.val_loss[li * p.n_head + h] / p.n_head;
        }
        per_layer.push_back({{"layer", p.layers[li]}, {"initial_kl", a}, {"final_kl", b}, {"val_kl", v}});
    }
    return {{"heads", int(p.layers.size()) * p.n_head}, {"initial_kl", p.mean_initial_loss()}, {"final_kl", p.mean_final_loss()},
            {"val_kl", p.mean_val_loss()}, {"val_windows", p.val_windows}, {"per_layer", per_layer}};
}

void figures(scenario_out & R, const std::string & note, const std::vector<std::string> & names, const std::vector<sweep_row> & rows,
             const gate_params & p, const json & per_layer) {
    const auto chart = [&](const std::string & name, const std::string & title, const std::string & ylab,
                           const std::function<double(const sweep_row &)> & y) {
        plot_spec ps;
        ps.title = title;
        ps.note = note;
        ps.x_label = "rho (set)";
        ps.y_label = ylab;
        for (size_t k = 0; k < names.size(); ++k) {
            plot_series se;
            se.label = names[k];
            se.color = plot_palette(int(k));
            for (const auto & r : rows) {
                if (r.method_name != names[k]) continue;
                se.x.push_back(r.density_set);
                se.y.push_back(y(r));
            }
            ps.series.push_back(se);
        }
        plot_write_png(R.fig(name), ps);
        R.figure_link(title, "figures/" + name);
    };
    chart("recall_vs_rho.png", "Attention-mass recall at equal rho", "mean per-head mass recall",
          [](const sweep_row & r) { return r.mass_recall; });
    chart("ppl_vs_rho.png", "Perplexity change at equal rho", "delta ppl (relative)", [](const sweep_row & r) { return r.delta_ppl_rel; });
    chart("block_density_vs_rho.png", "Realised block density", "block density", [](const sweep_row & r) { return r.block_density; });
    plot_spec pl;
    pl.title = "Gate training: block-mass KL per layer";
    pl.x_label = "layer";
    pl.y_label = "KL(target || gate), mean over heads";
    const char * lab[] = {"initial", "final (train)", "held out"};
    const char * key[] = {"initial_kl", "final_kl", "val_kl"};
    for (int k = 0; k < (p.val_windows > 0 ? 3 : 2); ++k) {
        plot_series se;
        se.label = lab[k];
        se.color = plot_palette(k);
        for (const auto & x : per_layer) {
            se.x.push_back(x["layer"].get<double>());
            se.y.push_back(x[key[k]].get<double>());
        }
        pl.series.push_back(se);
    }
    plot_write_png(R.fig("gate_training_kl.png"), pl);
    R.figure_link("gate training KL per layer", "figures/gate_training_kl.png");
}

void report(scenario_out & R, const json & c, const model_ctx & mc, const text_source & src, const gate_params & p,
            const std::vector<sweep_row> & rows) {
    const int ctx = c["ctx"].get<int>(), B = c["block"].get<int>();
    const std::string rel = k_gate_file;
    R.md << "## Training\n\nlearned_gate (B=" << B << ", d_g=" << p.d_g << ", " << p.steps << " Adam steps, lr " << p.lr << ") on "
         << c["calib_windows"] << " window(s) of " << ctx << " tokens of " << c["calib_text"].get<std::string>() << " ("
         << p.val_windows << " held out), " << p.layers.size() << " layers x " << p.n_head << " heads: block-mass KL "
         << fmt_num("%.4f", p.mean_initial_loss()) << " -> " << fmt_num("%.4f", p.mean_final_loss()) << " (held out "
         << fmt_num("%.4f", p.mean_val_loss()) << "). Parameters: [" << rel << "](" << rel << ").\n\n";
    R.md << "## Evaluation on " << src.spec << "\n\nEach method at the same rho (share of each query block's causal blocks kept; "
         << "block_topk and learned_gate always add the diagonal and block 0, oracle_topk keeps exact top keys per row), patched "
         << "into every layer" << (p.layers.size() < size_t(mc.m.cfg.n_layer) ? " (layers without a gate run block_topk)" : "")
         << "; " << c["eval_windows"] << " window(s) of " << ctx << " tokens.\n\n";
    md_rows_table(R.md, rows, R.dir);
}

void run(const scenario & s, scenario_out & R, job_progress * progress) {
    const json & c = s.cfg;
    const int ctx = c["ctx"].get<int>(), B = c["block"].get<int>();
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the comparison", {ctx}, mc, R, progress);
    const gate_params p = train_gate(c, mc, R, progress);
    R.seeds["gate_init"] = c["seed"];
    make_dirs(R.dir + "/trained");
    const std::string rel = k_gate_file;
    gate_save(R.dir + "/" + rel, p);
    record_trained(R, "learned_gate", rel, p.prov.calib_text_sha256);

    std::vector<std::string> specs;
    const std::vector<std::string> names = c["methods"].get<std::vector<std::string>>();
    for (double rho : c["densities"].get<std::vector<double>>()) {
        for (const auto & n : names) {
            std::string sp = n + ":rho=" + fmt_num("%.17g", rho) + ",B=" + std::to_string(B);
            if (n == k_methods[0]) sp += ",params=" + R.dir + "/" + rel;   // the gate this run trained
            specs.push_back(sp);
        }
    }
    const std::vector<sweep_row> rows = eval_rows(specs, ctx, c["eval_windows"].get<int>(), mc, src, progress, 0.3, 1.0);
    for (const auto & r : rows) R.methods.push_back(relative_spec(r.method, R.dir));
    const json mrows = add_rows(R, rows);
    R.metrics["training"] = training_metrics(p);
    R.metrics["rows"] = mrows;
    report(R, c, mc, src, p, rows);
    if (R.figures) {
        const std::string note = mc.m.model_id + ", " + src.spec + ", ctx " + std::to_string(ctx) + ", B=" + std::to_string(B);
        figures(R, note, names, rows, p, R.metrics["training"]["per_layer"]);
    }
}

} // namespace

scenario_kind scenario_kind_trained_compare() {
    const std::vector<scenario_key> own = {key_of("d_g", key_type::integer, 32, 1, 512),
                                           key_of("steps", key_type::integer, 300, 1, 100000),
                                           key_of("lr", key_type::real, 0.01, 0, 10, true),
                                           key_densities({0.1, 0.2, 0.3}),
                                           key_non_empty(key_choice("methods", key_type::str_list, k_methods, k_methods)),
                                           key_of("eval_windows", key_type::integer, 1, 1, 64)};
    return {"trained_compare", calibrated_kind_keys(own), {"masks", "tradeoffs"}, run, check_calibrated};
}

} // namespace attnlab
