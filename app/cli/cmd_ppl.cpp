// attnlab-cli ppl: perplexity of a model on a text over non-overlapping windows
// (core's perplexity_run: dense, or dense and a method side by side).
// --device cuda runs the forward pass on the GPU (model/llama_gpu_api.h).
#include <iostream>
#include <memory>
#include <omp.h>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "data/corpus.h"
#include "methods/method.h"
#include "metrics/perplexity.h"
#include "model/llama.h"
#include "model/llama_gpu_api.h"

namespace attnlab_cli {

namespace {

struct ppl_args : common_opts {
    int64_t max_tokens = 0;
};

// What the text output names besides the numbers.
struct ppl_context {
    const ppl_args & a;
    const attnlab::llama_model & m;
    const attnlab::text_source & src;
    std::string device_name;   // cuda only
};

void put(nlohmann::json & o, const attnlab::perplexity_result & r) {
    o.update({{"tokens", r.n_tokens}, {"predicted", r.n_predicted}, {"windows", r.n_windows}, {"nll", r.nll},
              {"ppl", r.ppl}, {"seconds", r.seconds}, {"tokens_per_s", r.tokens_per_s}});
}

void print_dense(const ppl_context & x, const attnlab::perplexity_report & rep) {
    using attnlab::text_part_name;
    const attnlab::perplexity_result & r = rep.cmp.dense;
    const char * model = x.m.model_id.c_str();
    if (!x.device_name.empty()) {
        std::printf("model   %s (%s)\ntext    %s (%s part, sha256 %.12s)\ndevice  cuda (%s)\n"
                    "ctx     %d, %d windows, %lld tokens\nnll     %.5f\nppl     %.4f\n"
                    "time    %.2f s, %.1f tokens/s (attention %.2f s)\n",
                    model, x.a.model.c_str(), x.src.spec.c_str(), text_part_name(x.src.part), x.src.sha256.c_str(),
                    x.device_name.c_str(), x.a.ctx, r.n_windows, (long long) r.n_tokens, r.nll, r.ppl, r.seconds,
                    r.tokens_per_s, rep.dense_attention_seconds);
        return;
    }
    std::printf("model   %s (%s)\ntext    %s (%s part, sha256 %.12s)\nctx     %d, %d windows, %lld tokens\n"
                "nll     %.5f\nppl     %.4f\ntime    %.2f s, %.1f tokens/s, %d threads\n",
                model, x.a.model.c_str(), x.src.spec.c_str(), text_part_name(x.src.part), x.src.sha256.c_str(), x.a.ctx,
                r.n_windows, (long long) r.n_tokens, r.nll, r.ppl, r.seconds, r.tokens_per_s, omp_get_max_threads());
}

void print_compared(const ppl_context & x, const attnlab::perplexity_report & rep, const std::string & spec) {
    using attnlab::text_part_name;
    const attnlab::perplexity_comparison & c = rep.cmp;
    if (!x.device_name.empty()) {
        std::printf("model    %s\ntext     %s (%s part)\ndevice   cuda (%s)\nctx      %d, %d windows, %lld tokens\n"
                    "method   %s (selection: %s)\ndense    ppl %.4f (%.2f s)\nsparse   ppl %.4f (%.2f s)\n"
                    "change   %+.4f (%+.2f%%)\ntop-1    %.2f%% agreement with dense\n"
                    "density  token %.3f, block %.3f (mean over layers)\n"
                    "time     gate %.3f s, sparse attention %.3f s, dense attention %.3f s\n",
                    x.m.model_id.c_str(), x.src.spec.c_str(), text_part_name(x.src.part), x.device_name.c_str(), x.a.ctx,
                    c.dense.n_windows, (long long) c.dense.n_tokens, spec.c_str(), rep.selection_path.c_str(), c.dense.ppl,
                    c.dense.seconds, c.sparse.ppl, c.sparse.seconds, c.delta_ppl, 100 * c.delta_ppl_rel,
                    100 * c.top1_agreement, rep.token_density, rep.block_density, rep.predictor_seconds,
                    rep.sparse_kernel_seconds, rep.dense_attention_seconds);
        return;
    }
    std::printf("model    %s\ntext     %s (%s part)\nctx      %d, %d windows, %lld tokens\nmethod   %s\n"
                "dense    ppl %.4f (%.1f s)\nsparse   ppl %.4f (%.1f s)\nchange   %+.4f (%+.2f%%)\n"
                "top-1    %.2f%% agreement with dense\ndensity  token %.3f, block %.3f (mean over layers)\n"
                "time     predictor %.2f s, sparse attention %.2f s\n",
                x.m.model_id.c_str(), x.src.spec.c_str(), text_part_name(x.src.part), x.a.ctx, c.dense.n_windows,
                (long long) c.dense.n_tokens, spec.c_str(), c.dense.ppl, c.dense.seconds, c.sparse.ppl, c.sparse.seconds,
                c.delta_ppl, 100 * c.delta_ppl_rel, 100 * c.top1_agreement, rep.token_density, rep.block_density,
                rep.predictor_seconds, rep.sparse_kernel_seconds);
}

// The run's keys: dense alone at the top level; compared, a "dense" and a
// "sparse" object and the differences.
void put_report(nlohmann::json & j, const ppl_args & a, const attnlab::perplexity_report & rep, bool gpu,
                const std::string & spec) {
    if (gpu) {
        j["attention_path"] = rep.attention_path;
        j["attention_seconds"] = rep.dense_attention_seconds;
    }
    if (!rep.compared) {
        j["method"] = "dense";
        put(j, rep.cmp.dense);
        return;
    }
    put(j["dense"], rep.cmp.dense);
    put(j["sparse"], rep.cmp.sparse);
    j.update({{"method", spec}, {"score", a.score.empty() ? "softmax" : a.score}, {"ppl", rep.cmp.sparse.ppl},
              {"delta_ppl", rep.cmp.delta_ppl}, {"delta_ppl_rel", rep.cmp.delta_ppl_rel},
              {"top1_agreement", rep.cmp.top1_agreement}, {"token_density", rep.token_density},
              {"block_density", rep.block_density}, {"predictor_seconds", rep.predictor_seconds},
              {"sparse_kernel_seconds", rep.sparse_kernel_seconds}});
    if (gpu) j["selection_path"] = rep.selection_path;
}

int run_ppl(const ppl_args & a) {
    using namespace attnlab;
    // Parse the method first: a typo should not cost a model load.
    perplexity_options o;
    if (!a.method.empty()) o.method = method_create(a.method);
    if (!a.score.empty()) o.score = score_create(a.score);
    if (!o.method && !a.score.empty()) o.method = method_create("dense");
    if (a.max_tokens < 0) throw input_error("--max-tokens", "max_tokens", "must be >= 0");
    const bool gpu = a.device == "cuda";
    if (gpu) {
        const std::string why = llama_gpu::unavailable_reason();
        if (!why.empty()) throw input_error("--device", "device", "cuda: " + why);
    }
    require_model_file(a.model, "perplexity");
    const cli_model cm = cli_model_load(a.model, a.quiet, {a.ctx});
    const text_source src = text_load(a.text);
    const std::vector<int32_t> ids = cm.tok.encode(src.text);
    nlohmann::json j = {{"model", a.model}, {"model_id", cm.m.model_id}, {"model_sha256", cm.m.source_sha256},
                        {"text", src.spec}, {"text_part", text_part_name(src.part)}, {"text_sha256", src.sha256},
                        {"ctx", a.ctx}, {"threads", omp_get_max_threads()}, {"device", a.device}};
    ppl_context x{a, cm.m, src, ""};
    std::unique_ptr<llama_gpu> g;
    if (gpu) {
        g = llama_gpu::create(cm.m);
        x.device_name = g->device_name();
        j["device_name"] = x.device_name;
    }
    o.ctx = a.ctx;
    o.max_tokens = a.max_tokens;
    o.gpu = g.get();
    const perplexity_report rep = run_job(a.quiet, [&](job_progress * job) {
        o.progress = job;
        return perplexity_run(cm.m, ids, o);
    });
    const std::string spec = o.method ? o.method->spec() : "dense";
    put_report(j, a, rep, gpu, spec);
    if (a.json) print_json(j);
    else if (rep.compared) print_compared(x, rep, spec);
    else print_dense(x, rep);
    return 0;
}

} // namespace

void add_cmd_ppl(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<ppl_args>();
    a->score = "";
    CLI::App * sub = app.add_subcommand("ppl", "Perplexity over non-overlapping windows of ctx tokens");
    a->add_model(sub);
    a->add_text(sub, "text file, or kjv:eval (default) / kjv:calib / kjv");
    a->add_ctx(sub, "window length in tokens");
    sub->add_option("--max-tokens,-n", a->max_tokens, "use only the first K tokens of the text (0: all)");
    a->add_method(sub, "sparse method SPEC patched into every layer, e.g. block_topk:density=0.2,block=64; "
                       "reports dense and sparse side by side with top-1 agreement");
    a->add_score(sub, "score function SPEC: softmax (default), relu:..., hyperbolic:...");
    a->add_device(sub, "cpu (default) or cuda: the forward pass on the GPU (bf16 weights, fp32 accumulation; "
                       "--method block_topk and learned_gate run the GPU gates, every other method selects on the host, timed, "
                       "with token masks where it keeps tiles in part)");
    a->add_output_flags(sub);
    command_add(cmds, sub, *a, [a]() { return run_ppl(*a); });
}

} // namespace attnlab_cli
