// attnlab-cli train: fits the trained methods on calibration text only
// (learned_gate, asa_router, layer_adaptive) and writes their parameter file
// or table, ready for `--method` / `--methods` of ppl, head, export and sweep.
//   train gate            gate_train on calib_capture_windows -> gate_save
//   train router          router_train -> router_save
//   train layer_adaptive  layer_adaptive_calibrate + _build -> _save
// Evaluation text is refused (text_require_part) before the model is loaded.
#include <algorithm>
#include <cstdarg>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <sys/stat.h>

#include "cli_common.h"
#include "base/dir_lock.h"
#include "commands.h"
#include "attention/selection.h"
#include "base/error.h"
#include "data/capture.h"
#include "model/llama_gpu_api.h"
#include "data/corpus.h"
#include "methods/asa_router.h"
#include "methods/layer_adaptive.h"
#include "methods/learned_gate.h"
#include "methods/method.h"
#include "methods/train/calib.h"
#include "model/llama.h"

namespace attnlab_cli {

namespace {

enum class train_kind { gate, router, layer_adaptive };

struct train_args : common_opts {
    train_kind kind = train_kind::gate;
    std::string layers, out, grid = "0.05,0.1,0.15,0.2,0.25,0.3,0.4,0.5,0.6,0.8,1.0";
    int windows = 6, block = 64, d_g = 32, steps = 300, rank = 16, rows = 128;
    double lr = 1e-2, budget = 0.3;
    uint64_t seed = 0;
};

// What a kind's training wrote: its method spec and one line on its quality.
struct trained_file {
    std::string spec, quality;
};

using train_fn = trained_file (*)(const train_args & a, const std::vector<const attnlab::qkv_capture *> & calib,
                                  nlohmann::json & j);

// One train subcommand: its name, help, own options and training.
struct train_entry {
    train_kind kind;
    const char * name;      // subcommand, and the method it trains
    const char * method;
    const char * help;
    void (*add_options)(CLI::App * sub, train_args & a);
    train_fn train;
};

std::string format(const char * fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char * fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

// Option checks that need no model: a typo should not cost a load and a capture.
void check_args(const train_args & a) {
    using attnlab::input_error;
    if (a.ctx < 2) throw input_error("--ctx", "ctx", "must be at least 2");
    if (a.windows < 1 || a.windows > 10000) throw input_error("--windows", "windows", "must be within 1..10000");
    if (a.kind != train_kind::router && !attnlab::block_size_valid(a.block)) {
        throw input_error("--block", "block", "not one of 16, 32, 64, 128");
    }
    if (a.kind == train_kind::gate && (a.d_g < 1 || a.d_g > 1024)) throw input_error("--dg", "dg", "must be within 1..1024");
    if (a.kind == train_kind::router && (a.rank < 1 || a.rank > 1024)) throw input_error("--rank", "rank", "must be within 1..1024");
    if (a.kind == train_kind::router && a.rows < 1) throw input_error("--rows", "rows", "must be at least 1");
    if (a.kind != train_kind::layer_adaptive) {
        if (a.steps < 1) throw input_error("--steps", "steps", "must be at least 1");
        if (!(a.lr > 0.0 && std::isfinite(a.lr))) throw input_error("--lr", "lr", "must be a positive number");
    } else if (!(a.budget > 0.0 && a.budget <= 1.0)) {
        throw input_error("--budget", "budget", "the mean block density must lie in (0, 1]");
    }
    // The output folder must exist before minutes of capture and training.
    require_output_folder(a.out);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int64_t file_bytes(const std::string & path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : -1;
}

// Gate and router both fit by Adam under a progress bar: the same three
// options in, the same record of the fit out.
template <class Options, class Train>
auto fit_adam(const train_args & a, Options o, Train train) {
    o.steps = a.steps;
    o.lr = a.lr;
    o.seed = a.seed;
    return run_job(a.quiet, [&](attnlab::job_progress * job) {
        o.progress = job;
        return train(o);
    });
}

template <class Params>
void put_adam(nlohmann::json & j, const Params & p) {
    j.update({{"steps", p.steps}, {"lr", p.lr}, {"seed", p.seed}, {"initial_loss", p.mean_initial_loss()},
              {"final_loss", p.mean_final_loss()}});
}

trained_file train_gate(const train_args & a, const std::vector<const attnlab::qkv_capture *> & calib, nlohmann::json & j) {
    using namespace attnlab;
    gate_train_options o;
    o.block = a.block;
    o.d_g = a.d_g;
    const gate_params p = fit_adam(a, o, [&](const gate_train_options & x) { return gate_train(calib, x); });
    gate_save(a.out, p);
    put_adam(j, p);
    j.update({{"block", p.block}, {"d_g", p.d_g}, {"val_windows", p.val_windows},
              {"val_loss", p.val_windows > 0 ? nlohmann::json(p.mean_val_loss()) : nlohmann::json(nullptr)}});
    trained_file t;
    t.quality = format("KL(true block mass || gate), mean over heads: %.4f -> %.4f on the training windows",
                       p.mean_initial_loss(), p.mean_final_loss());
    if (p.val_windows > 0) {
        t.quality += format(", %.4f on %d held-out window%s", p.mean_val_loss(), p.val_windows, p.val_windows > 1 ? "s" : "");
    }
    t.spec = "learned_gate:rho=0.2,B=" + std::to_string(p.block) + ",params=" + a.out;
    return t;
}

trained_file train_router(const train_args & a, const std::vector<const attnlab::qkv_capture *> & calib, nlohmann::json & j) {
    using namespace attnlab;
    router_train_options o;
    o.rank = a.rank;
    o.rows = a.rows;
    const router_params p = fit_adam(a, o, [&](const router_train_options & x) { return router_train(calib, x); });
    router_save(a.out, p);
    put_adam(j, p);
    j.update({{"rank", p.rank}, {"rows", p.rows}});
    trained_file t;
    t.quality = format("KL(attention row || router), mean over heads: %.4f -> %.4f on the sampled rows",
                       p.mean_initial_loss(), p.mean_final_loss());
    t.spec = "asa_router:rho=0.2,params=" + a.out;
    return t;
}

std::vector<double> parse_grid(const std::string & s) {
    const std::vector<double> grid = parse_number_list<double>(s, "grid");
    for (double g : grid) {
        if (!(g > 0.0 && g <= 1.0)) throw attnlab::input_error("--grid", "grid", "densities must lie in (0, 1]");
    }
    return grid;
}

trained_file train_layer_adaptive(const train_args & a, const std::vector<const attnlab::qkv_capture *> & calib,
                                  nlohmann::json & j) {
    using namespace attnlab;
    const std::vector<double> grid = parse_grid(a.grid);
    const recall_curves c = run_job(a.quiet, [&](job_progress * job) { return layer_adaptive_calibrate(calib, grid, a.block, job); });
    const layer_adaptive_table t = layer_adaptive_build(c, a.budget);
    layer_adaptive_save(a.out, t);
    j.update({{"block", t.block}, {"budget", t.rho}, {"grid", c.grid}});
    const auto alloc = [](const head_allocation & h) {
        return nlohmann::json{{"mean_recall", h.mean_recall}, {"mean_density", h.mean_density}};
    };
    j["greedy"] = alloc(t.greedy);
    j["uniform"] = alloc(t.uniform);
    j["uniform"]["rho"] = t.uniform.rho.empty() ? 0.0 : t.uniform.rho[0];
    j["seed_schedule_scaled"] = alloc(t.seed_scaled);
    trained_file f;
    f.quality = format("mass recall on the calibration windows at budget %.3g: greedy %.4f (block density %.4f), "
                       "uniform %.4f (%.4f), seed schedule scaled %.4f (%.4f)",
                       t.rho, t.greedy.mean_recall, t.greedy.mean_density, t.uniform.mean_recall, t.uniform.mean_density,
                       t.seed_scaled.mean_recall, t.seed_scaled.mean_density);
    // The diagonal and block 0 are always kept: at short ctx the lowest grid
    // point can already be above the budget.
    j["budget_met"] = t.greedy.mean_density <= t.rho + 1e-9;
    if (t.greedy.mean_density > t.rho + 1e-9) {
        f.quality += format("; budget NOT met: %.4f is the lowest mean density reachable on this grid at ctx %d, B=%d",
                            t.greedy.mean_density, a.ctx, t.block);
    }
    f.spec = format("layer_adaptive:rho=%.17g,table=", t.rho) + a.out + ",B=" + std::to_string(t.block);
    return f;
}

// What fit_adam takes.
void add_adam_options(CLI::App * sub, train_args & a, const char * seed_help) {
    sub->add_option("--steps", a.steps, "Adam steps per head")->capture_default_str();
    sub->add_option("--lr", a.lr, "Adam learning rate")->capture_default_str();
    sub->add_option("--seed", a.seed, seed_help)->capture_default_str();
}

void add_gate_options(CLI::App * sub, train_args & a) {
    a.steps = attnlab::gate_train_options().steps;
    sub->add_option("--block,-B", a.block, "block size (16, 32, 64, 128); the method's B must match")->capture_default_str();
    sub->add_option("--dg", a.d_g, "gate projection width d_g")->capture_default_str();
    add_adam_options(sub, a, "initialisation seed");
}

void add_router_options(CLI::App * sub, train_args & a) {
    a.steps = attnlab::router_train_options().steps;
    a.rows = attnlab::router_train_options().rows;
    a.rank = attnlab::router_train_options().rank;
    sub->add_option("--rank", a.rank, "rank r of the query/key maps")->capture_default_str();
    sub->add_option("--rows", a.rows, "sampled query rows per window")->capture_default_str();
    add_adam_options(sub, a, "initialisation and row-sampling seed");
}

void add_layer_adaptive_options(CLI::App * sub, train_args & a) {
    sub->add_option("--budget", a.budget, "global budget: mean block density over heads (the method's rho)")->capture_default_str();
    sub->add_option("--block,-B", a.block, "block size (16, 32, 64, 128)")->capture_default_str();
    sub->add_option("--grid", a.grid, "block_topk densities of the recall curves")->capture_default_str();
}

const train_entry k_train_entries[] = {
    {train_kind::gate, "gate", "learned_gate",
     "learned_gate: per-head gate on pooled blocks, distilled from the true block mass (safetensors; use as "
     "learned_gate:params=FILE)",
     add_gate_options, train_gate},
    {train_kind::router, "router", "asa_router",
     "asa_router: token-level router (rank-r maps, positional prior, sink), distilled on calibration rows "
     "(safetensors; use as asa_router:params=FILE)",
     add_router_options, train_router},
    {train_kind::layer_adaptive, "layer_adaptive", "layer_adaptive",
     "layer_adaptive: per-head block_topk budgets from calibrated recall curves (JSON table; use as "
     "layer_adaptive:rho=BUDGET,table=FILE)",
     add_layer_adaptive_options, train_layer_adaptive},
};

void print_train(const train_args & a, const train_entry & e, const attnlab::llama_model & m, const attnlab::text_source & src,
                 int n_layers, const trained_file & t, const nlohmann::json & j) {
    std::printf("trained    %s: %d layers x %d heads on %d window%s of %d tokens\n", e.method, n_layers, m.cfg.n_head,
                a.windows, a.windows == 1 ? "" : "s", a.ctx);
    std::printf("model      %s (sha256 %s)\n", m.model_id.c_str(), m.source_sha256.c_str());
    std::printf("text       %s (%s part, sha256 %s)\n", src.spec.c_str(), attnlab::text_part_name(src.part), src.sha256.c_str());
    std::printf("quality    %s\n", t.quality.c_str());
    std::printf("time       capture %.1f s, training %.1f s, total %.1f s\n", j["capture_seconds"].get<double>(),
                j["train_seconds"].get<double>(), j["wall_seconds"].get<double>());
    std::printf("wrote      %s (%lld bytes)\nuse as     %s\n", a.out.c_str(), (long long) j["bytes"].get<int64_t>(),
                j["method_spec"].get<std::string>().c_str());
}

int run_train(const train_args & a, const train_entry & e) {
    using namespace attnlab;
    const auto t_start = std::chrono::steady_clock::now();
    check_args(a);
    const dir_lock lock(a.out, dir_lock::file, "out");   // one writer per output
    if (a.kind == train_kind::layer_adaptive) parse_grid(a.grid);
    text_source src = text_load(a.text);
    text_require_part(src, text_part::calibration, std::string("training ") + e.method);
    const cli_model cm = cli_model_load(a.model, a.quiet, {a.ctx});
    const llama_model & m = cm.m;
    std::vector<int> layers;
    if (!a.layers.empty()) layers = parse_layer_list(a.layers, m.cfg.n_layer, "--layers");

    // Calibration windows: ctx tokens each, consecutive, from the start of the part.
    const auto t_cap = std::chrono::steady_clock::now();
    std::unique_ptr<llama_gpu> gpu;
    if (a.device == "cuda") {
        const std::string why = llama_gpu::unavailable_reason();
        if (!why.empty()) throw input_error("--device", "device", "cuda: " + why);
        gpu = llama_gpu::create(m);
    }
    const std::vector<qkv_capture> caps = run_job(a.quiet, [&](job_progress * job) {
        return calib_capture_windows(m, cm.tok, src, a.ctx, a.windows, layers, job, gpu.get());
    });
    const double capture_s = seconds_since(t_cap);
    std::vector<const qkv_capture *> ptrs;
    for (const auto & c : caps) ptrs.push_back(&c);
    const std::vector<int> & captured = caps.front().info.layers;

    nlohmann::json j = {{"kind", e.method}, {"model", a.model}, {"model_id", m.model_id}, {"model_sha256", m.source_sha256},
                        {"text", src.spec}, {"text_part", text_part_name(src.part)}, {"text_sha256", src.sha256},
                        {"ctx", a.ctx}, {"windows", a.windows}, {"layers", captured},
                        {"heads", int(captured.size()) * m.cfg.n_head}, {"out", a.out}, {"device", a.device}};

    const auto t_train = std::chrono::steady_clock::now();
    const trained_file t = e.train(a, ptrs, j);
    const double train_s = seconds_since(t_train);
    // Read the file back through the registry: what was written is usable as a method.
    const std::unique_ptr<sparse_method> check = method_create(t.spec);
    j.update({{"method_spec", check->spec()}, {"bytes", file_bytes(a.out)}, {"capture_seconds", capture_s},
              {"train_seconds", train_s}, {"wall_seconds", seconds_since(t_start)}});
    if (a.json) print_json(j);
    else print_train(a, e, m, src, int(captured.size()), t, j);
    return 0;
}

} // namespace

void add_cmd_train(CLI::App & app, std::vector<command> & cmds) {
    CLI::App * train = app.add_subcommand("train", "Fit the trained methods on calibration text: gate (learned_gate), "
                                                   "router (asa_router), layer_adaptive (per-head budgets)");
    train->require_subcommand(1);
    for (const train_entry & e : k_train_entries) {
        auto a = std::make_shared<train_args>();
        a->kind = e.kind;
        a->text = "kjv:calib";
        CLI::App * sub = train->add_subcommand(e.name, e.help);
        // Options every kind takes, then the kind's own.
        a->add_model(sub);
        a->add_text(sub, "calibration text (kjv:calib; evaluation text is refused)");
        a->add_ctx(sub, "tokens per calibration window");
        sub->add_option("--windows", a->windows, "calibration windows (consecutive, from the start of the text)")->capture_default_str();
        sub->add_option("--layers", a->layers, "layers to fit, e.g. 0,10-12 (default: all)");
        sub->add_option("--out,-o", a->out, "output file")->required();
        a->add_device(sub, "cpu (default) or cuda: the calibration captures on the GPU (bf16 weights, fp32 "
                           "accumulation); the fitting runs on the CPU");
        a->add_output_flags(sub);
        e.add_options(sub, *a);
        command_add(cmds, sub, *a, [a, &e]() { return run_train(*a, e); });
    }
}

} // namespace attnlab_cli
