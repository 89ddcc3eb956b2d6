// attnlab-cli sim: the cost simulator (simulated numbers, labelled so):
// one configuration, the regime map (--regimes: lab/regime_map.h, the driver
// the sim_regimes scenario kind runs), or the seed claims (--claims).
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "base/data_path.h"
#include "base/error.h"
#include "lab/claims_measure.h"
#include "lab/regime_map.h"
#include "lab/units.h"
#include "sim/calibration.h"
#include "sim/claims.h"
#include "sim/cost.h"
#include "sim/presets.h"
#include "sim/regimes.h"

namespace attnlab_cli {

using nlohmann::json;

namespace {

struct sim_args : common_opts {
    std::string hw, phase = "prefill", impl = "flash", table = "default", bench, dense_kernel, sparse_kernel;
    std::string budget_from;
    int64_t ctx_len = 8192;   // --ctx (a long: simulated contexts reach 1M and more)
    double max_ppl_increase = 0.05;
    double density = 0.0, overhead = 0.02, price = 0.0, eff_compute = 1.0, eff_memory = 1.0;
    int block = 64, batch = 1, gpus = 1;
    bool calibrated = false, regimes = false, claims = false, logits_all = false;
    CLI::Option * density_opt = nullptr;   // whether --density was given (any value)
};

json component_json(const attnlab::sim_component & c) {
    return {{"name", c.name},       {"flops", c.flops},         {"bytes", c.bytes},
            {"intensity", c.intensity}, {"time_s", c.time_s},   {"compute_s", c.compute_s},
            {"memory_s", c.memory_s}, {"bound", c.memory_bound ? "memory" : "compute"},
            {"peak_used_tflops", c.peak_used_tflops}};
}

json result_json(const attnlab::sim_result & r) {
    json j;
    j["label"] = r.label;
    j["method"] = r.method_spec;
    j["phase"] = attnlab::sim_phase_name(r.opt.phase);
    j["impl"] = attnlab::attn_impl_name(r.opt.impl);
    j["ctx"] = r.opt.ctx;
    j["batch"] = r.opt.batch;
    j["n_gpu"] = r.opt.n_gpu;
    j["calibrated"] = r.calibrated;
    j["attention_plan"] = {{"causal_blocks", r.plan.causal_blocks}, {"kept_blocks", r.plan.kept_blocks},
                           {"block_density", r.plan.block_density}, {"pairs_per_head", r.plan.pairs},
                           {"keys_read_per_head", r.plan.keys_read}};
    json comps = json::array();
    for (const auto & c : r.layer) comps.push_back(component_json(c));
    j["layer"] = {{"components", comps}, {"flops", r.layer_flops}, {"bytes", r.layer_bytes},
                  {"intensity", r.layer_intensity}, {"time_s", r.layer_time_s},
                  {"bound", r.layer_memory_bound ? "memory" : "compute"}};
    j["lm_head"] = component_json(r.head);
    j["total"] = {{"flops", r.flops}, {"bytes", r.bytes}, {"time_s", r.time_s}, {"tokens", r.tokens},
                  {"tokens_per_s", r.tokens_per_s}, {"price_per_hour", r.opt.price_per_hour},
                  {"cost_per_mtok", r.cost_per_mtok}};
    j["memory"] = {{"weights", r.mem_weights}, {"kv_cache", r.mem_kv_cache}, {"activations", r.mem_activations},
                   {"scores", r.mem_scores}, {"total", r.mem_total}, {"fits", r.fits},
                   {"score_naive_head", r.score_bytes_naive_head}, {"score_naive_layer", r.score_bytes_naive_layer},
                   {"score_flash_layer", r.score_bytes_flash_layer}};
    j["notes"] = r.notes;
    return j;
}

std::string si(double x, const char * unit) { return attnlab::si_text(x, unit); }

std::string secs(double s) {
    char buf[64];
    if (s < 1e-3) std::snprintf(buf, sizeof(buf), "%.3g us", s * 1e6);
    else if (s < 1.0) std::snprintf(buf, sizeof(buf), "%.3g ms", s * 1e3);
    else std::snprintf(buf, sizeof(buf), "%.3g s", s);
    return buf;
}

void print_result(const attnlab::sim_result & r, const attnlab::model_preset & m, const attnlab::hw_preset & h) {
    std::printf("SIMULATED  %s on %s x%d, %s at L=%lld, batch %d, %s attention, method %s\n", m.name.c_str(), h.name.c_str(),
                r.opt.n_gpu, attnlab::sim_phase_name(r.opt.phase), (long long) r.opt.ctx, r.opt.batch,
                attnlab::attn_impl_name(r.opt.impl), r.method_spec.c_str());
    std::printf("hardware   %.4g TFLOP/s dense, %.4g GB/s, %.4g GB, ridge %.1f FLOP/B%s\n", h.dense_tflops, h.mem_bw_gbs, h.mem_gb,
                h.ridge_flop_per_byte(), h.measured ? (" (measured " + h.measured_date + ")").c_str() : " (datasheet)");
    std::printf("attention  block density %.4f (%lld of %lld blocks)\n", r.plan.block_density, (long long) r.plan.kept_blocks,
                (long long) r.plan.causal_blocks);
    std::printf("per layer  %-10s %12s %12s %10s %8s %12s\n", "component", "FLOPs", "bytes", "FLOP/B", "bound", "time");
    auto row = [](const attnlab::sim_component & c) {
        std::printf("           %-10s %12s %12s %10.1f %8s %12s\n", c.name.c_str(), si(c.flops, "").c_str(), si(c.bytes, "B").c_str(),
                    c.intensity, c.memory_bound ? "memory" : "compute", secs(c.time_s).c_str());
    };
    for (const auto & c : r.layer) row(c);
    std::printf("           %-10s %12s %12s %10.1f %8s %12s\n", "layer", si(r.layer_flops, "").c_str(), si(r.layer_bytes, "B").c_str(),
                r.layer_intensity, r.layer_memory_bound ? "memory" : "compute", secs(r.layer_time_s).c_str());
    row(r.head);
    std::printf("model      %s FLOPs, %s moved, %s, %.4g tokens/s", si(r.flops, "").c_str(), si(r.bytes, "B").c_str(),
                secs(r.time_s).c_str(), r.tokens_per_s);
    if (r.cost_per_mtok > 0.0) std::printf(", $%.4g per million tokens at $%.2f/GPU-hour", r.cost_per_mtok, r.opt.price_per_hour);
    std::printf("\nmemory     weights %s, KV cache %s, activations %s, scores %s, total %s per GPU (%s)\n", si(r.mem_weights, "B").c_str(),
                si(r.mem_kv_cache, "B").c_str(), si(r.mem_activations, "B").c_str(), si(r.mem_scores, "B").c_str(),
                si(r.mem_total, "B").c_str(), r.fits ? "fits" : "does NOT fit");
    std::printf("scores     naive: %s per head, %s per layer; flash-style: %s per layer (tiles stay on chip)\n",
                si(r.score_bytes_naive_head, "B").c_str(), si(r.score_bytes_naive_layer, "B").c_str(), si(r.score_bytes_flash_layer, "B").c_str());
    for (const auto & n : r.notes) std::printf("note       %s\n", n.c_str());
}

int run_sim_claims(const sim_args & a) {
    using namespace attnlab;
    std::vector<claim_row> rows = seed_claims_check();
    if (a.json) {
        json arr = json::array();
        for (const auto & r : rows) {
            json j = claim_row_json(r);
            j["relation"] = r.relation;
            j["note"] = r.note;
            arr.push_back(j);
        }
        print_json({{"label", "exact arithmetic; rows of kind simulated are simulated"}, {"claims", arr}});
        return 0;
    }
    for (const auto & r : rows) {
        std::printf("[%s] %s\n      %s: claimed %.4g %s, %s %.4g %s -> %s\n", r.seed.c_str(), r.claim.c_str(), r.quantity.c_str(), r.claimed,
                    r.unit.c_str(), r.kind.c_str(), r.exact, r.unit.c_str(), r.verdict.c_str());
        if (!r.note.empty()) std::printf("      %s\n", r.note.c_str());
    }
    return 0;
}

attnlab::sim_options sim_options_of(const sim_args & a) {
    using namespace attnlab;
    sim_options o;
    o.ctx = a.ctx_len;
    if (a.phase == "prefill") o.phase = sim_phase::prefill;
    else if (a.phase == "decode") o.phase = sim_phase::decode;
    else throw input_error("--phase", "phase", "'" + a.phase + "' is not prefill or decode");
    if (a.impl == "flash") o.impl = attn_impl::flash;
    else if (a.impl == "naive") o.impl = attn_impl::naive;
    else throw input_error("--impl", "impl", "'" + a.impl + "' is not flash or naive");
    o.batch = a.batch;
    o.n_gpu = a.gpus;
    o.price_per_hour = a.price;
    o.eff_compute = a.eff_compute;
    o.eff_memory = a.eff_memory;
    o.logits_all = a.logits_all;
    return o;
}

void print_regimes(const sim_args & a, const attnlab::model_preset & m, const attnlab::hw_preset & h, const attnlab::sim_options & o,
                   const attnlab::regime_map_result & res) {
    using namespace attnlab;
    const regime_table & t = res.table;
    std::printf("SIMULATED regime map: %s on %s, %s, table %s\n", m.name.c_str(), h.name.c_str(), sim_phase_name(o.phase), t.file.c_str());
    if (!a.budget_from.empty()) {
        std::printf("accuracy budget: %s\n", t.source.c_str());
        for (const auto & e : res.budget) {
            if (e.density < 0.0) {
                std::printf("  %-14s no measured density of %s within the budget: left out\n", e.table_name.c_str(), e.sweep_method.c_str());
            } else {
                std::printf("  %-14s block density %.3f (%s%s)\n", e.table_name.c_str(), e.density, e.sweep_method.c_str(),
                            e.interpolated ? ", interpolated" : "");
            }
        }
        for (const auto & rm : t.methods) {
            if (rm.source.rfind("not measured", 0) == 0) std::printf("  %-14s %s\n", rm.name.c_str(), rm.source.c_str());
        }
    }
    std::printf("%9s", "ctx");
    for (const auto & rm : t.methods) std::printf(" %14s", rm.name.c_str());
    std::printf("  %-14s %-13s %s\n", "cheapest", "seed rule", "");
    for (const auto & r : res.rows) {
        std::printf("%9lld", (long long) r.ctx);
        for (const auto & c : r.cells) std::printf(" %13s%s", secs(c.time_s).c_str(), c.fits ? " " : "*");
        std::printf("  %-14s %-13s %s\n", r.cheapest.c_str(), r.seed_rule.c_str(), r.agrees ? "agrees" : "differs");
    }
    std::printf("%d of %zu context lengths agree with the seed's rule; * = does not fit in %.0f GB\n", res.agreement, res.rows.size(), h.mem_gb);
}

int run_sim_regimes(const sim_args & a, const attnlab::model_preset & m, const attnlab::hw_preset & h, const attnlab::sim_options & o) {
    using namespace attnlab;
    regime_map_options opt;
    opt.table = a.table;
    opt.budget_from = a.budget_from;
    opt.max_ppl_increase = a.max_ppl_increase;
    opt.sim = o;
    const regime_map_result res = regime_map_run(m, h, opt);
    if (!a.json) {
        print_regimes(a, m, h, o, res);
        return 0;
    }
    print_json({{"label", "simulated"}, {"model", m.name}, {"hw", h.name}, {"phase", sim_phase_name(o.phase)},
                {"table", res.table.file}, {"table_source", res.table.source}, {"calibrated", a.calibrated},
                {"seed_rule", k_seed_regime_rule}, {"agreement", res.agreement}, {"rows", regime_rows_json(res.rows, true)},
                {"measured_budget", regime_budget_json(res.budget)},
                {"max_ppl_increase", a.budget_from.empty() ? json(nullptr) : json(a.max_ppl_increase)}});
    return 0;
}

// Bench rows read for --calibrated, the fit, and its check against them.
struct sim_calibrated {
    std::vector<attnlab::bench_row> bench;
    attnlab::sim_calibration calib;
    int skipped = 0;
};

json calibration_json(const sim_calibrated & c, const std::vector<attnlab::calib_point> & pts) {
    json points = json::array();
    for (const attnlab::kernel_rate_point & p : c.calib.points) {
        points.push_back({{"density", p.density}, {"efficiency", p.efficiency}, {"overhead_ms", p.overhead_ms}, {"rows", p.rows},
                          {"lengths", p.lengths}});
    }
    json check = json::array();
    int within = 0;
    for (const auto & p : pts) {
        check.push_back({{"file", p.row.file}, {"device", p.row.device}, {"kernel", p.row.kernel}, {"L", p.row.L},
                         {"head_dim", p.row.head_dim}, {"causal", p.row.causal}, {"density", p.row.density},
                         {"measured_ms", p.row.ms}, {"predicted_ms", p.predicted_ms}, {"error", p.error},
                         {"datasheet_ms", p.datasheet_ms}, {"datasheet_error", p.datasheet_error},
                         {"leave_one_out", p.leave_one_out}});
        within += std::fabs(p.error) <= 0.15;
    }
    return {{"source", c.calib.source}, {"head_dim", c.calib.head_dim}, {"dense_kernel", c.calib.dense_kernel},
            {"sparse_kernel", c.calib.sparse_kernel}, {"points", points}, {"check", check},
            {"within_15pct", within}, {"measured_points", pts.size()}, {"skipped_rows", c.skipped}};
}

void print_calibration(const sim_calibrated & c, const std::vector<attnlab::calib_point> & pts, const json & cal) {
    std::printf("calibration from %s (head_dim %d; dense: %s, sparse: %s; %d rows without a density skipped):\n", c.calib.source.c_str(),
                c.calib.head_dim, c.calib.dense_kernel.empty() ? "-" : c.calib.dense_kernel.c_str(),
                c.calib.sparse_kernel.empty() ? "-" : c.calib.sparse_kernel.c_str(), c.skipped);
    for (const attnlab::kernel_rate_point & p : c.calib.points) {
        std::printf("  density %.4f: %.1f%% of the dense peak + %.3g ms per launch (%d rows, %d lengths)\n", p.density, 100 * p.efficiency,
                    p.overhead_ms, p.rows, p.lengths);
    }
    std::printf("  prediction vs measurement, each kernel from its own fit (time = overhead + work / rate) on the other lengths:\n");
    std::printf("  %-30s %4s %6s %8s %8s %11s %11s %8s %11s\n", "kernel", "D", "causal", "L", "density", "measured", "predicted", "error",
                "datasheet");
    for (const auto & p : pts) {
        std::printf("  %-30s %4d %6s %8lld %8.4f %8.4g ms %8.4g ms %+7.1f%% %+10.1f%%%s\n", p.row.kernel.c_str(), p.row.head_dim,
                    p.row.causal ? "yes" : "no", (long long) p.row.L, p.row.density, p.row.ms, p.predicted_ms, 100 * p.error,
                    100 * p.datasheet_error, p.leave_one_out ? "" : " (in-sample)");
    }
    std::printf("  %d of %zu points within 15%%\n", cal["within_15pct"].get<int>(), pts.size());
}

int run_sim_single(const sim_args & a, const attnlab::model_preset & m, const attnlab::hw_preset & h, const attnlab::sim_options & o,
                   const sim_calibrated & cal) {
    using namespace attnlab;
    sim_method meth;
    // Given at all, not "> 0": 0, -1 and nan are refused, not read as "dense".
    const bool density_given = a.density_opt && a.density_opt->count() > 0;
    if (density_given && !(a.density > 0.0 && a.density <= 1.0)) {
        throw input_error("--density", "density", "must be within (0, 1], got " + a.density_opt->as<std::string>());
    }
    if (!a.method.empty()) {
        if (density_given) throw input_error("--density", "density", "give either --method or --density, not both");
        meth = sim_method_parse(a.method);
    } else if (density_given) {
        char spec[160];
        std::snprintf(spec, sizeof(spec), "density:rho=%.17g,B=%d,overhead=%.17g", a.density, a.block, a.overhead);
        meth = sim_method_parse(spec);
    }
    sim_result r = sim_run(m, h, meth, o);
    json j = result_json(r);
    j["model"] = {{"name", m.name}, {"file", m.file}, {"params", m.total_params()}, {"context", m.context}};
    j["hw"] = {{"name", h.name}, {"file", h.file}, {"dense_tflops", h.dense_tflops}, {"mem_bw_gbs", h.mem_bw_gbs},
               {"mem_gb", h.mem_gb}, {"ridge_flop_per_byte", h.ridge_flop_per_byte()}, {"measured", h.measured}};
    if (meth.kind != sim_method_kind::dense) {
        sim_result d = sim_run(m, h, sim_method(), o);
        j["dense_baseline"] = {{"time_s", d.time_s}, {"speedup", d.time_s / r.time_s}, {"cost_per_mtok", d.cost_per_mtok},
                               {"memory_total", d.mem_total}};
    }
    std::vector<calib_point> pts;
    if (a.calibrated) {
        pts = calibration_check(cal.bench, h, o.eff_compute);
        j["calibration"] = calibration_json(cal, pts);
    }
    if (a.json) {
        print_json(j);
        return 0;
    }
    print_result(r, m, h);
    if (j.contains("dense_baseline")) {
        std::printf("vs dense   %s -> %.3gx\n", secs(j["dense_baseline"]["time_s"].get<double>()).c_str(),
                    j["dense_baseline"]["speedup"].get<double>());
    }
    if (a.calibrated) print_calibration(cal, pts, j["calibration"]);
    return 0;
}

int run_sim(const sim_args & a) {
    using namespace attnlab;
    if (a.claims) return run_sim_claims(a);
    if (a.model.empty()) throw input_error("--model", "model", "required (a preset name or JSON path)");
    if (a.hw.empty()) throw input_error("--hw", "hw", "required (a preset name or JSON path)");
    const model_preset m = model_preset_load(a.model);
    const hw_preset h = hw_preset_load(a.hw);
    sim_options o = sim_options_of(a);
    sim_calibrated cal;
    if (a.calibrated) {
        cal.bench = bench_rows_read(a.bench.empty() ? attnlab::data_path("bench/results") : a.bench, &cal.skipped);
        cal.calib = calibration_fit(cal.bench, h, m.head_dim, true, a.dense_kernel, a.sparse_kernel);
        o.calib = &cal.calib;
    }
    if (a.regimes) return run_sim_regimes(a, m, h, o);
    return run_sim_single(a, m, h, o, cal);
}

} // namespace

void add_cmd_sim(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<sim_args>();
    CLI::App * sub = app.add_subcommand("sim", "Cost simulator (simulated): FLOPs, bytes, roofline, memory, cost; --regimes; --claims");
    sub->add_option("--model", a->model, "model preset name (assets/presets/models) or JSON path");
    sub->add_option("--hw", a->hw, "hardware preset name (assets/presets/hardware) or JSON path");
    sub->add_option("--ctx,-c", a->ctx_len, "context length L (prefill: L tokens; decode: one token at position L)")->capture_default_str();
    a->density_opt = sub->add_option("--density", a->density, "block density rho of a sparse method (block_topk-style)");
    sub->add_option("--overhead", a->overhead, "predictor FLOPs as a share of dense attention FLOPs, with --density")->capture_default_str();
    sub->add_option("--block", a->block, "block size B, with --density")->capture_default_str();
    a->add_method(sub, "method spec (a method the simulator prices; others are refused, saying so) or density:rho=R[,B=..]; sim-only keys: overhead, eff, fixed_us");
    sub->add_option("--phase", a->phase, "prefill or decode")->capture_default_str();
    sub->add_option("--impl", a->impl, "flash (tiles only) or naive (materialised L x L scores)")->capture_default_str();
    sub->add_option("--batch", a->batch, "sequences per batch")->capture_default_str();
    sub->add_option("--gpus", a->gpus, "GPUs, ideal tensor parallelism (no communication cost)")->capture_default_str();
    sub->add_option("--price", a->price, "$ per GPU-hour for the cost per million tokens (0: no cost)");
    sub->add_option("--eff-compute", a->eff_compute, "attained share of the dense peak (1: pure roofline)")->capture_default_str();
    sub->add_option("--eff-memory", a->eff_memory, "attained share of the memory bandwidth")->capture_default_str();
    sub->add_flag("--logits-all", a->logits_all, "prefill computes logits for every position (as perplexity does)");
    sub->add_flag("--calibrated", a->calibrated, "use measured kernel efficiency from bench results; report prediction vs measurement");
    sub->add_option("--bench", a->bench, "bench results file or folder (default: bench/results)");
    sub->add_option("--dense-kernel", a->dense_kernel, "calibrate dense attention from the kernel whose name contains this (default: the fastest dense)");
    sub->add_option("--sparse-kernel", a->sparse_kernel, "calibrate sparse methods from the kernel whose name contains this (default: the fastest sparse)");
    sub->add_flag("--regimes", a->regimes, "cheapest method per context length 1k..1M vs the seed's rule");
    sub->add_option("--table", a->table, "regime accuracy-budget table (assets/presets/regimes) or JSON path")->capture_default_str();
    sub->add_option("--budget-from", a->budget_from,
                    "with --regimes: take each method's density from a sweep directory (the least block density within --max-ppl-increase)");
    sub->add_option("--max-ppl-increase", a->max_ppl_increase, "accuracy budget for --budget-from: relative perplexity increase")
        ->capture_default_str();
    sub->add_flag("--claims", a->claims, "the seed claims against exact arithmetic");
    a->add_json(sub);
    command_add(cmds, sub, *a, [a]() { return run_sim(*a); });
}

} // namespace attnlab_cli
