// Scenario kind `sim_quadratic` (SIMULATED): score memory, KV cache and
// prefill time over the context length, from sim/cost.h.
#include <cmath>

#include "lab/figures.h"
#include "lab/scenario/common.h"
#include "lab/units.h"
#include "sim/cost.h"
#include "sim/presets.h"

namespace attnlab {

using nlohmann::json;

namespace {

std::string time_key(double d) { return "time_rho" + fmt_num("%g", d) + "_s"; }

// One context length: the naive and flash dense runs and the sparse times.
json quadratic_row(const model_preset & m, const hw_preset & h, int ctx, int batch, const std::vector<double> & dens) {
    sim_options o;
    o.ctx = ctx;
    o.batch = batch;
    o.impl = attn_impl::naive;
    const sim_result rn = sim_run(m, h, sim_method(), o);
    o.impl = attn_impl::flash;
    const sim_result rf = sim_run(m, h, sim_method(), o);
    double attn = 0;
    for (const auto & comp : rf.layer) attn += comp.name == "attention" ? comp.flops : 0.0;
    json row = {{"ctx", ctx},
                {"score_bytes_naive_head", rn.score_bytes_naive_head},
                {"score_bytes_naive_layer", rn.score_bytes_naive_layer},
                {"score_bytes_flash_layer", rf.score_bytes_flash_layer},
                {"kv_cache_bytes", rf.mem_kv_cache},
                {"mem_total_naive", rn.mem_total},
                {"mem_total_flash", rf.mem_total},
                {"fits_naive", rn.fits},
                {"fits_flash", rf.fits},
                {"attention_flop_share", rf.layer_flops > 0 ? attn / rf.layer_flops : 0.0},
                {"time_dense_s", rf.time_s}};
    for (double d : dens) row[time_key(d)] = sim_run(m, h, sim_method_parse("density:rho=" + fmt_num("%.17g", d)), o).time_s;
    return row;
}

void report(scenario_out & R, const model_preset & m, const hw_preset & h, const json & c, const json & rows) {
    R.md << "**SIMULATED** (core/sim roofline model; no measurement). " << m.name << " on " << h.name << " (" << h.precision
         << "), prefill of L tokens, batch " << c["batch"] << ". A naive (eager) implementation materialises the L x L score matrix "
         << "of every head (" << h.precision_bytes() << " bytes per element); flash-style attention keeps tiles on chip.\n\n";
    R.md << "| L | scores, one head (naive) | scores, one layer (naive) | flash, one layer | KV cache | total naive | total flash | attention share of layer FLOPs | dense prefill time |\n"
         << "|---|---|---|---|---|---|---|---|---|\n";
    const auto bytes = [](const json & r, const char * k) { return si_text(r[k].get<double>(), "B"); };
    for (const auto & r : rows) {
        R.md << "| " << r["ctx"] << " | " << bytes(r, "score_bytes_naive_head") << " | " << bytes(r, "score_bytes_naive_layer") << " | "
             << bytes(r, "score_bytes_flash_layer") << " | " << bytes(r, "kv_cache_bytes") << " | " << bytes(r, "mem_total_naive")
             << (r["fits_naive"].get<bool>() ? "" : " (does not fit)") << " | " << bytes(r, "mem_total_flash")
             << (r["fits_flash"].get<bool>() ? "" : " (does not fit)") << " | "
             << fmt_num("%.1f%%", 100 * r["attention_flop_share"].get<double>()) << " | "
             << fmt_num("%.4g s", r["time_dense_s"].get<double>()) << " |\n";
    }
    R.md << "\nDoubling L doubles the KV cache but quadruples the naive score matrix: the quadratic wall.\n\n";
}

void figures(scenario_out & R, const model_preset & m, const hw_preset & h, const std::vector<int> & ctxs,
             const std::vector<double> & dens, const json & rows) {
    std::vector<double> lx;
    for (int L : ctxs) lx.push_back(std::log2(double(L)));
    const auto series = [&](const std::string & label, const std::string & key, int color) {
        plot_series se;
        se.label = label;
        se.x = lx;
        for (const auto & r : rows) se.y.push_back(std::max(1e-30, r[key].get<double>()));
        se.color = plot_palette(color);
        return se;
    };
    plot_spec p;
    p.title = "SIMULATED: memory of the attention scores vs context";
    p.note = m.name + " on " + h.name + "; hardware memory " + fmt_num("%g GB", h.mem_gb);
    p.x_label = "context length L";
    p.y_label = "bytes";
    p.y_log = true;
    p.x_format = pow2_label;
    p.series = {series("naive scores, one head (L^2)", "score_bytes_naive_head", 0),
                series("naive scores, one layer", "score_bytes_naive_layer", 1),
                series("flash, one layer (row stats)", "score_bytes_flash_layer", 2),
                series("KV cache (all layers)", "kv_cache_bytes", 3)};
    plot_series hbm;
    hbm.label = "GPU memory";
    hbm.x = {lx.front(), lx.back()};
    hbm.y = {h.mem_gb * 1e9, h.mem_gb * 1e9};
    hbm.dashed = true;
    hbm.marker = plot_marker::none;
    hbm.color = 0x888888;
    p.series.push_back(hbm);
    plot_write_png(R.fig("score_memory.png"), p);
    R.figure_link("score memory vs L", "figures/score_memory.png");
    plot_spec t;
    t.title = "SIMULATED: prefill time vs context";
    t.note = m.name + " on " + h.name + ", flash-style attention";
    t.x_label = "context length L";
    t.y_label = "seconds";
    t.y_log = true;
    t.x_format = pow2_label;
    t.series = {series("dense", "time_dense_s", 0)};
    for (size_t k = 0; k < dens.size(); ++k) t.series.push_back(series("block density " + fmt_num("%g", dens[k]), time_key(dens[k]), int(k) + 1));
    plot_write_png(R.fig("prefill_time.png"), t);
    R.figure_link("prefill time vs L", "figures/prefill_time.png");
    plot_spec a;
    a.title = "SIMULATED: attention's share of a layer's FLOPs";
    a.x_label = "context length L";
    a.y_label = "share";
    a.x_format = pow2_label;
    a.y_min = 0;
    a.y_max = 1;
    a.series = {series("attention / layer", "attention_flop_share", 0)};
    plot_write_png(R.fig("attention_share.png"), a);
    R.figure_link("attention share of FLOPs", "figures/attention_share.png");
}

void run(const scenario & s, scenario_out & R, job_progress * progress) {
    const json & c = s.cfg;
    const model_preset m = model_preset_load(c["source"].get<std::string>());
    const hw_preset h = hw_preset_load(c["hw"].get<std::string>());
    R.inputs["model_preset"] = {{"name", m.name}, {"file", m.file}};
    R.inputs["hw_preset"] = {{"name", h.name}, {"file", h.file}};
    const std::vector<int> ctxs = c["ctx"].get<std::vector<int>>();
    const std::vector<double> dens = c["densities"].get<std::vector<double>>();
    R.methods.push_back("dense");
    for (double d : dens) R.methods.push_back("density:rho=" + fmt_num("%g", d));
    R.csv_columns = {"ctx", "score_bytes_naive_head", "score_bytes_naive_layer", "score_bytes_flash_layer", "kv_cache_bytes",
                     "mem_total_naive", "mem_total_flash", "fits_naive", "fits_flash", "attention_flop_share", "time_dense_s"};
    for (double d : dens) R.csv_columns.push_back(time_key(d));
    json rows = json::array();
    for (size_t i = 0; i < ctxs.size(); ++i) {
        job_step(progress, double(i) / ctxs.size(), "ctx " + std::to_string(ctxs[i]));
        const json row = quadratic_row(m, h, ctxs[i], c["batch"].get<int>(), dens);
        rows.push_back(row);
        R.csv_rows.push_back(row);
    }
    R.metrics["label"] = "simulated";
    R.metrics["score_bytes_per_element"] = h.precision_bytes();
    R.metrics["rows"] = rows;
    report(R, m, h, c, rows);
    if (R.figures && !ctxs.empty()) figures(R, m, h, ctxs, dens, rows);
}

} // namespace

scenario_kind scenario_kind_sim_quadratic() {
    std::vector<int> ctxs;
    for (int x = 1024; x <= 131072; x *= 2) ctxs.push_back(x);
    const std::vector<scenario_key> own = {key_non_empty(key_of("ctx", key_type::int_list, ctxs, 1, k_scenario_max_sim_ctx)),
                                           key_of("densities", key_type::real_list, {0.1, 0.2}, 0, 1, true),
                                           key_of("batch", key_type::integer, 1, 1, 4096)};
    return {"sim_quadratic", sim_kind_keys("smollm2-135m", own), {"quadratic"}, run, nullptr, /*needs_model*/ false};
}

} // namespace attnlab
