// attnlab-cli sweep: the trade-off table. One row per (method, density, ctx),
// measured with the method patched into every layer, on evaluation text only;
// rows are appended as they finish and a rerun resumes where it stopped.
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <omp.h>
#include <set>
#include <sstream>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "data/corpus.h"
#include "lab/figures.h"
#include "lab/sweep.h"
#include "methods/method.h"
#include "model/llama.h"
#include "model/llama_gpu_api.h"

namespace attnlab_cli {

namespace {
struct sweep_args : common_opts {
    std::string ctxs = "2048", methods, densities = "0.1,0.2,0.4,0.6", out;
    std::string passkey_depths, shard;
    int passkey_trials = 1;
    int64_t max_tokens = 4096;
    bool no_recall = false, no_figures = false;
};

// "dense,window:w=256,B=64,block_topk" -> dense | window:w=256,B=64 | block_topk:
// a comma-separated key=value item continues the previous spec.
// "all" expands to every registered method.
std::vector<std::string> split_method_list(const std::string & s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        const size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
        item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
        if (item.empty()) continue;
        // "key=value" continues the spec before it, also when the value is
        // itself a spec ("inner=block_topk:rho=0.2|B=64"): '=' before any ':'.
        const size_t eq = item.find('='), colon = item.find(':');
        const bool continues = eq != std::string::npos && (colon == std::string::npos || eq < colon);
        if (continues && !out.empty()) {
            out.back() += "," + item;
        } else if (item == "all") {
            for (const auto & n : attnlab::method_names()) out.push_back(n);
        } else {
            out.push_back(item);
        }
    }
    return out;
}

// Everything that can be checked without the model.
struct sweep_inputs {
    std::vector<int> ctxs;
    std::vector<double> densities, depths;
    std::vector<std::string> methods;
    attnlab::sweep_shard_spec shard;
    attnlab::text_source src;
};

sweep_inputs sweep_check(const sweep_args & a) {
    using namespace attnlab;
    sweep_inputs in;
    in.ctxs = parse_number_list<int>(a.ctxs, "ctx", true);
    in.densities = parse_number_list<double>(a.densities, "densities", true);
    in.depths = parse_number_list<double>(a.passkey_depths, "passkey-depths", true);
    for (double d : in.depths) {
        if (!(d >= 0.0 && d <= 1.0)) throw input_error("--passkey-depths", "passkey-depths", "depths must be within 0..1");
    }
    if (a.passkey_trials < 1 || a.passkey_trials > 100) throw input_error("--passkey-trials", "passkey-trials", "must be within 1..100");
    if (a.max_tokens < 0) throw input_error("--max-tokens", "max_tokens", "must be >= 0");
    if (!a.shard.empty()) in.shard = sweep_shard_parse(a.shard);
    in.methods = split_method_list(a.methods);
    score_create(a.score);
    sweep_plan(in.methods, in.densities, in.ctxs, "", "", a.max_tokens, a.score, a.device);
    if (a.device == "cuda") {
        const std::string why = llama_gpu::unavailable_reason();
        if (!why.empty()) throw input_error("--device", "device", "cuda: " + why);
    }
    in.src = text_load(a.text);
    sweep_require_evaluation(in.src, "the sweep");
    require_model_file(a.model, "the sweep");
    return in;
}

void print_sweep(const sweep_args & a, const sweep_inputs & in, const std::string & model_id, size_t n_tokens,
                 const attnlab::sweep_outcome & res, size_t n_tasks, size_t n_plan, double wall,
                 const std::vector<std::string> & figs) {
    std::printf("model %s, text %s (%lld tokens), %d rows (%d reused, %d run), %.1f s\n", model_id.c_str(),
                in.src.spec.c_str(), (long long) n_tokens, int(res.rows.size()), res.reused, res.ran, wall);
    if (in.shard.count > 1) {
        std::printf("shard %d/%d: %d of the plan's %d rows\n", in.shard.index, in.shard.count, int(n_tasks), int(n_plan));
    }
    std::printf("%-44s %5s %6s %6s %8s %8s %6s %6s %7s %7s %s\n", "method", "ctx", "blk_d", "tok_d", "ppl", "dppl%",
                "top1", "recall", "pred_s", "kern_s", "passkey");
    for (const auto & r : res.rows) {
        char pk[16] = "-";
        if (r.passkey_accuracy >= 0) std::snprintf(pk, sizeof pk, "%.2f", r.passkey_accuracy);
        std::printf("%-44s %5d %6.3f %6.3f %8.3f %+8.2f %6.3f %6.3f %7.2f %7.2f %s\n", r.method.substr(0, 44).c_str(),
                    r.ctx, r.block_density, r.token_density, r.ppl, 100 * r.delta_ppl_rel, r.top1_agreement,
                    r.mass_recall, r.predictor_s, r.kernel_s, pk);
    }
    std::set<std::string> shown;   // provenance once per parameter file
    for (const auto & r : res.rows) {
        if (r.params_file.empty() || !shown.insert(r.params_file).second) continue;
        std::printf("trained %s: params %s (sha256 %s), calibration text sha256 %s\n", r.method_name.c_str(),
                    r.params_file.c_str(), r.params_sha256.c_str(), r.calib_text_sha256.c_str());
    }
    for (const auto & f : figs) std::printf("figure %s\n", f.c_str());
}

int run_sweep(const sweep_args & a) {
    using namespace attnlab;
    const auto t_start = std::chrono::steady_clock::now();
    const sweep_inputs in = sweep_check(a);
    const cli_model cm = cli_model_load(a.model, a.quiet, in.ctxs);
    const llama_model & m = cm.m;
    std::vector<int32_t> ids = cm.tok.encode(in.src.text);
    if (a.max_tokens > 0 && int64_t(ids.size()) > a.max_tokens) ids.resize(size_t(a.max_tokens));

    const std::vector<sweep_task> plan =
        sweep_plan(in.methods, in.densities, in.ctxs, in.src.sha256, m.source_sha256, a.max_tokens, a.score, a.device);
    const std::vector<sweep_task> tasks = sweep_shard(plan, in.shard.index, in.shard.count);
    sweep_model_options opt;
    opt.passkey_depths = in.depths;
    opt.passkey_trials = a.passkey_trials;
    opt.mass_recall = !a.no_recall;
    opt.score_spec = a.score;
    std::unique_ptr<llama_gpu> gpu;
    if (a.device == "cuda") {
        gpu = llama_gpu::create(m);
        opt.gpu = gpu.get();
    }
    auto runner = std::make_shared<sweep_model_runner>(m, &cm.tok, in.src, ids, opt);
    const sweep_outcome res = run_job(a.quiet, [&](job_progress * job) {
        return sweep_execute(tasks, a.out, [runner](const sweep_task & t, job_progress * p) { return (*runner)(t, p); }, job);
    });
    std::vector<std::string> figs;
    if (!a.no_figures) {
        // Figures from every row in the directory (earlier sweeps too).
        figs = sweep_write_figures(a.out, sweep_load_rows(a.out));
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (!a.json) {
        print_sweep(a, in, m.model_id, ids.size(), res, tasks.size(), plan.size(), wall, figs);
        return 0;
    }
    nlohmann::json j = {{"model", a.model}, {"model_sha256", m.source_sha256}, {"text", in.src.spec},
                        {"text_sha256", in.src.sha256}, {"out", a.out}, {"rows_reused", res.reused}, {"rows_run", res.ran},
                        {"plan_rows", plan.size()},
                        {"shard", std::to_string(in.shard.index) + "/" + std::to_string(in.shard.count)},
                        {"wall_seconds", wall}, {"threads", omp_get_max_threads()}, {"figures", figs},
                        {"rows", nlohmann::json::array()}};
    for (const auto & r : res.rows) j["rows"].push_back(sweep_row_to_json(r));
    print_json(j);
    return 0;
}

} // namespace

void add_cmd_sweep(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<sweep_args>();
    CLI::App * sub = app.add_subcommand("sweep", "Trade-off sweep: perplexity, agreement, density, time and recall per method, "
                                                 "density and ctx; resumable; draws PNG figures");
    a->add_model(sub);
    a->add_text(sub, "evaluation text (kjv:eval; kjv:calib is refused)");
    sub->add_option("--ctx,-c", a->ctxs, "context lengths, e.g. 1024,2048")->capture_default_str();
    sub->add_option("--methods", a->methods,
                    "method SPECs, comma-separated (a key=value item continues the previous spec), or 'all'")
        ->required();
    sub->add_option("--densities", a->densities, "densities for methods with a density key (rho)")->capture_default_str();
    sub->add_option("--out,-o", a->out, "output directory (results.csv, results.jsonl, figures)")->required();
    sub->add_option("--max-tokens,-n", a->max_tokens, "evaluate the first K tokens of the text (0: all)")->capture_default_str();
    sub->add_option("--passkey-depths", a->passkey_depths, "passkey depths, e.g. 0.1,0.5,0.9 (default: no passkey)");
    sub->add_option("--passkey-trials", a->passkey_trials, "passkey trials per depth")->capture_default_str();
    a->add_score(sub, "score function SPEC for every row");
    a->add_device(sub, "cpu (default) or cuda: every forward pass on the GPU (bf16 weights, fp32 accumulation; every "
                       "method: GPU gates for block_topk/learned_gate, select() on the host for the others, timed); "
                       "rows record the device and its peak memory, and cuda rows have keys of their own");
    sub->add_option("--shard", a->shard, "run only plan rows with index % N == I (I/N, 0-based); merge the shard "
                                         "directories with `attnlab-cli merge`");
    sub->add_flag("--no-recall", a->no_recall, "skip the per-head mass recall (saves a capture)");
    sub->add_flag("--no-figures", a->no_figures, "do not draw the PNG figures");
    a->add_output_flags(sub);
    command_add(cmds, sub, *a, [a]() { return run_sweep(*a); });
}

} // namespace attnlab_cli
