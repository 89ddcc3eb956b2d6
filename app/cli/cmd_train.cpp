// attnlab-cli train: fits the trained methods on calibration text only
// (learned_gate, asa_router, layer_adaptive) and writes their parameter file
// or table, ready for `--method` / `--methods` of ppl, head, export and sweep.
//   train gate            gate_train on calib_capture_windows -> gate_save
//   train router          router_train -> router_save
//   train layer_adaptive  layer_adaptive_calibrate + _build -> _save
// Evaluation text is refused (text_require_part) before the model is loaded.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <sys/stat.h>

#include "cli_common.h"
#include "commands.h"
#include "attention/selection.h"
#include "base/error.h"
#include "data/capture.h"
#include "data/corpus.h"
#include "methods/asa_router.h"
#include "methods/layer_adaptive.h"
#include "methods/learned_gate.h"
#include "methods/method.h"
#include "methods/train/calib.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"

namespace attnlab_cli {

namespace {

enum class train_kind { gate, router, layer_adaptive };

struct train_args {
    train_kind kind = train_kind::gate;
    std::string model, text = "kjv:calib", layers, out, grid = "0.05,0.1,0.15,0.2,0.25,0.3,0.4,0.5,0.6,0.8,1.0";
    int ctx = 1024, windows = 6, block = 64, d_g = 32, steps = 300, rank = 16, rows = 128;
    double lr = 1e-2, budget = 0.3;
    uint64_t seed = 0;
    bool json = false, quiet = false;
};

const char * kind_name(train_kind k) {
    return k == train_kind::gate ? "learned_gate" : k == train_kind::router ? "asa_router" : "layer_adaptive";
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
    const size_t slash = a.out.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : a.out.substr(0, std::max<size_t>(slash, 1));
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw input_error(a.out, "out", "folder " + dir + " does not exist");
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int64_t file_bytes(const std::string & path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : -1;
}

int run_train(const train_args & a) {
    using namespace attnlab;
    const auto t_start = std::chrono::steady_clock::now();
    check_args(a);
    std::vector<double> grid;
    if (a.kind == train_kind::layer_adaptive) {
        grid = parse_number_list<double>(a.grid, "grid");
        for (double g : grid) {
            if (!(g > 0.0 && g <= 1.0)) throw input_error("--grid", "grid", "densities must lie in (0, 1]");
        }
    }
    const std::string what = std::string("training ") + kind_name(a.kind);
    text_source src = text_load(a.text);
    text_require_part(src, text_part::calibration, what);

    job_progress load;
    llama_model m;
    {
        progress_bar bar(load, a.quiet);
        m = llama_model_load(a.model, &load);
        bar.finish();
    }
    llama_check_ctx(m, a.ctx, 2, a.model);
    bpe_tokenizer tok = tokenizer_load(a.model);
    tokenizer_check_model(tok, m, a.model);
    std::vector<int> layers;
    if (!a.layers.empty()) layers = parse_layer_list(a.layers, m.cfg.n_layer, "--layers");

    // Calibration windows: ctx tokens each, consecutive, from the start of the part.
    const auto t_cap = std::chrono::steady_clock::now();
    std::vector<qkv_capture> caps;
    {
        job_progress job;
        progress_bar bar(job, a.quiet);
        caps = calib_capture_windows(m, tok, src, a.ctx, a.windows, layers, &job);
        bar.finish();
    }
    const double capture_s = seconds_since(t_cap);
    std::vector<const qkv_capture *> ptrs;
    for (const auto & c : caps) ptrs.push_back(&c);
    const std::vector<int> & captured = caps.front().info.layers;

    nlohmann::json j;
    j["kind"] = kind_name(a.kind);
    j["model"] = a.model;
    j["model_id"] = m.model_id;
    j["model_sha256"] = m.source_sha256;
    j["text"] = src.spec;
    j["text_part"] = text_part_name(src.part);
    j["text_sha256"] = src.sha256;
    j["ctx"] = a.ctx;
    j["windows"] = a.windows;
    j["layers"] = captured;
    j["heads"] = int(captured.size()) * m.cfg.n_head;
    j["out"] = a.out;

    const auto t_train = std::chrono::steady_clock::now();
    std::string spec;       // how the result is used as a method
    std::string quality;    // one line for the text output
    job_progress job;
    {
        progress_bar bar(job, a.quiet);
        if (a.kind == train_kind::gate) {
            gate_train_options o;
            o.block = a.block;
            o.d_g = a.d_g;
            o.steps = a.steps;
            o.lr = a.lr;
            o.seed = a.seed;
            o.progress = &job;
            const gate_params p = gate_train(ptrs, o);
            bar.finish();
            gate_save(a.out, p);
            j["block"] = p.block;
            j["d_g"] = p.d_g;
            j["steps"] = p.steps;
            j["lr"] = p.lr;
            j["seed"] = p.seed;
            j["val_windows"] = p.val_windows;
            j["initial_loss"] = p.mean_initial_loss();
            j["final_loss"] = p.mean_final_loss();
            j["val_loss"] = p.val_windows > 0 ? nlohmann::json(p.mean_val_loss()) : nlohmann::json(nullptr);
            char buf[256];
            std::snprintf(buf, sizeof buf, "KL(true block mass || gate), mean over heads: %.4f -> %.4f on the training windows",
                          p.mean_initial_loss(), p.mean_final_loss());
            quality = buf;
            if (p.val_windows > 0) {
                std::snprintf(buf, sizeof buf, ", %.4f on %d held-out window%s", p.mean_val_loss(), p.val_windows,
                              p.val_windows > 1 ? "s" : "");
                quality += buf;
            }
            spec = "learned_gate:rho=0.2,B=" + std::to_string(p.block) + ",params=" + a.out;
        } else if (a.kind == train_kind::router) {
            router_train_options o;
            o.rank = a.rank;
            o.steps = a.steps;
            o.rows = a.rows;
            o.lr = a.lr;
            o.seed = a.seed;
            o.progress = &job;
            const router_params p = router_train(ptrs, o);
            bar.finish();
            router_save(a.out, p);
            j["rank"] = p.rank;
            j["steps"] = p.steps;
            j["rows"] = p.rows;
            j["lr"] = p.lr;
            j["seed"] = p.seed;
            j["initial_loss"] = p.mean_initial_loss();
            j["final_loss"] = p.mean_final_loss();
            char buf[256];
            std::snprintf(buf, sizeof buf, "KL(attention row || router), mean over heads: %.4f -> %.4f on the sampled rows",
                          p.mean_initial_loss(), p.mean_final_loss());
            quality = buf;
            spec = "asa_router:rho=0.2,params=" + a.out;
        } else {
            const recall_curves c = layer_adaptive_calibrate(ptrs, grid, a.block, &job);
            bar.finish();
            const layer_adaptive_table t = layer_adaptive_build(c, a.budget);
            layer_adaptive_save(a.out, t);
            j["block"] = t.block;
            j["budget"] = t.rho;
            j["grid"] = c.grid;
            const auto alloc = [](const head_allocation & h) {
                return nlohmann::json{{"mean_recall", h.mean_recall}, {"mean_density", h.mean_density}};
            };
            j["greedy"] = alloc(t.greedy);
            j["uniform"] = alloc(t.uniform);
            j["uniform"]["rho"] = t.uniform.rho.empty() ? 0.0 : t.uniform.rho[0];
            j["seed_schedule_scaled"] = alloc(t.seed_scaled);
            char buf[320];
            std::snprintf(buf, sizeof buf,
                          "mass recall on the calibration windows at budget %.3g: greedy %.4f (block density %.4f), "
                          "uniform %.4f (%.4f), seed schedule scaled %.4f (%.4f)",
                          t.rho, t.greedy.mean_recall, t.greedy.mean_density, t.uniform.mean_recall, t.uniform.mean_density,
                          t.seed_scaled.mean_recall, t.seed_scaled.mean_density);
            quality = buf;
            // The diagonal and block 0 are always kept: at short ctx the
            // lowest grid point can already be above the budget.
            j["budget_met"] = t.greedy.mean_density <= t.rho + 1e-9;
            if (t.greedy.mean_density > t.rho + 1e-9) {
                std::snprintf(buf, sizeof buf, "; budget NOT met: %.4f is the lowest mean density reachable on this grid at ctx %d, B=%d",
                              t.greedy.mean_density, a.ctx, t.block);
                quality += buf;
            }
            char rho[32];
            std::snprintf(rho, sizeof rho, "%.17g", t.rho);
            spec = std::string("layer_adaptive:rho=") + rho + ",table=" + a.out + ",B=" + std::to_string(t.block);
        }
    }
    const double train_s = seconds_since(t_train);
    // Read the file back through the registry: what was written is usable as a method.
    const std::unique_ptr<sparse_method> check = method_create(spec);
    j["method_spec"] = check->spec();
    j["bytes"] = file_bytes(a.out);
    j["capture_seconds"] = capture_s;
    j["train_seconds"] = train_s;
    j["wall_seconds"] = seconds_since(t_start);
    if (a.json) {
        print_json(j);
        return 0;
    }
    std::printf("trained    %s: %d layers x %d heads on %d window%s of %d tokens\n", kind_name(a.kind), int(captured.size()),
                m.cfg.n_head, a.windows, a.windows == 1 ? "" : "s", a.ctx);
    std::printf("model      %s (sha256 %s)\n", m.model_id.c_str(), m.source_sha256.c_str());
    std::printf("text       %s (%s part, sha256 %s)\n", src.spec.c_str(), text_part_name(src.part), src.sha256.c_str());
    std::printf("quality    %s\n", quality.c_str());
    std::printf("time       capture %.1f s, training %.1f s, total %.1f s\n", capture_s, train_s, j["wall_seconds"].get<double>());
    std::printf("wrote      %s (%lld bytes)\nuse as     %s\n", a.out.c_str(), (long long) j["bytes"].get<int64_t>(),
                check->spec().c_str());
    return 0;
}

// Options every kind takes.
void add_common(CLI::App * sub, train_args & a) {
    sub->add_option("--model,-m", a.model, "GGUF file or HF checkpoint directory")->required();
    sub->add_option("--text,-t", a.text, "calibration text (kjv:calib; evaluation text is refused)")->capture_default_str();
    sub->add_option("--ctx,-c", a.ctx, "tokens per calibration window")->capture_default_str();
    sub->add_option("--windows", a.windows, "calibration windows (consecutive, from the start of the text)")->capture_default_str();
    sub->add_option("--layers", a.layers, "layers to fit, e.g. 0,10-12 (default: all)");
    sub->add_option("--out,-o", a.out, "output file")->required();
    sub->add_flag("--json", a.json, "JSON output");
    sub->add_flag("--quiet,-q", a.quiet, "no progress bar");
}

} // namespace

void add_cmd_train(CLI::App & app, std::vector<command> & cmds) {
    CLI::App * train = app.add_subcommand("train", "Fit the trained methods on calibration text: gate (learned_gate), "
                                                   "router (asa_router), layer_adaptive (per-head budgets)");
    train->require_subcommand(1);
    for (train_kind k : {train_kind::gate, train_kind::router, train_kind::layer_adaptive}) {
        auto a = std::make_shared<train_args>();
        a->kind = k;
        CLI::App * sub = nullptr;
        if (k == train_kind::gate) {
            sub = train->add_subcommand("gate", "learned_gate: per-head gate on pooled blocks, distilled from the true block "
                                                "mass (safetensors; use as learned_gate:params=FILE)");
            add_common(sub, *a);
            a->steps = attnlab::gate_train_options().steps;
            sub->add_option("--block,-B", a->block, "block size (16, 32, 64, 128); the method's B must match")->capture_default_str();
            sub->add_option("--dg", a->d_g, "gate projection width d_g")->capture_default_str();
            sub->add_option("--steps", a->steps, "Adam steps per head")->capture_default_str();
            sub->add_option("--lr", a->lr, "Adam learning rate")->capture_default_str();
            sub->add_option("--seed", a->seed, "initialisation seed")->capture_default_str();
        } else if (k == train_kind::router) {
            sub = train->add_subcommand("router", "asa_router: token-level router (rank-r maps, positional prior, sink), "
                                                  "distilled on calibration rows (safetensors; use as asa_router:params=FILE)");
            add_common(sub, *a);
            a->steps = attnlab::router_train_options().steps;
            a->rows = attnlab::router_train_options().rows;
            a->rank = attnlab::router_train_options().rank;
            sub->add_option("--rank", a->rank, "rank r of the query/key maps")->capture_default_str();
            sub->add_option("--rows", a->rows, "sampled query rows per window")->capture_default_str();
            sub->add_option("--steps", a->steps, "Adam steps per head")->capture_default_str();
            sub->add_option("--lr", a->lr, "Adam learning rate")->capture_default_str();
            sub->add_option("--seed", a->seed, "initialisation and row-sampling seed")->capture_default_str();
        } else {
            sub = train->add_subcommand("layer_adaptive", "layer_adaptive: per-head block_topk budgets from calibrated recall "
                                                          "curves (JSON table; use as layer_adaptive:rho=BUDGET,table=FILE)");
            add_common(sub, *a);
            sub->add_option("--budget", a->budget, "global budget: mean block density over heads (the method's rho)")
                ->capture_default_str();
            sub->add_option("--block,-B", a->block, "block size (16, 32, 64, 128)")->capture_default_str();
            sub->add_option("--grid", a->grid, "block_topk densities of the recall curves")->capture_default_str();
        }
        command c;
        c.sub = sub;
        c.json = &a->json;
        c.run = [a]() { return run_train(*a); };
        cmds.push_back(c);
    }
}

} // namespace attnlab_cli
