// attnlab-cli head: the per-head metrics of METHODS.md for one method on one
// (layer, head), from a model (captured on evaluation text) or a trace.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "lab/export_flex.h"
#include "methods/method.h"
#include "metrics/head_metrics.h"
#include "data/capture.h"

namespace attnlab_cli {

namespace {
struct head_args : common_opts {
    int layer = 0, head = 0;
};
} // namespace

void add_cmd_head(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<head_args>();
    CLI::App * sub = app.add_subcommand("head", "Per-head metrics of a method: densities, FLOP fraction, mass recall, "
                                                "output error, KL, precision/recall vs oracle_topk");
    a->add_source(sub);
    sub->add_option("--layer,-l", a->layer, "layer")->required();
    sub->add_option("--head", a->head, "query head")->required();
    a->add_method(sub, "method SPEC, e.g. block_topk:rho=0.2,B=64")->required();
    a->add_score(sub, "score function SPEC");
    a->add_text(sub, "evaluation text to capture when the source is a model");
    a->add_ctx(sub, "tokens to capture when the source is a model");
    a->add_device(sub, "cpu (default) or cuda: a model's capture on the GPU (the metrics run on the CPU)");
    a->add_output_flags(sub);
    command_add(cmds, sub, *a, [a]() {
        using namespace attnlab;
        std::unique_ptr<sparse_method> method = method_create(a->method);
        const score_fn score = score_create(a->score);
        if (a->layer < 0) throw input_error("--layer", "layer", "must be >= 0");
        const qkv_capture cap = run_job(a->quiet, [&](job_progress * job) {
            return capture_from_source(a->source, a->text, a->ctx, {a->layer}, false, job, a->device);
        });
        if (cap.layers.empty() || cap.layers[0].layer != a->layer) {
            throw input_error(a->source, "layer", "layer " + std::to_string(a->layer) + " is not in the source");
        }
        const attention_layer_io io = capture_layer_io(cap, 0);
        if (a->head < 0 || a->head >= io.n_head) {
            throw input_error(a->source, "head", std::to_string(a->head) + " is outside 0.." + std::to_string(io.n_head - 1));
        }
        const head_metrics r = head_metrics_of_method(io, a->head, *method, score);
        const double attn_flops = attention_flops(io.n_tokens, io.head_dim, io.causal);
        nlohmann::json j;
        j["source"] = a->source;
        j["model_id"] = cap.info.model_id;
        j["model_sha256"] = cap.info.model_sha256;
        j["text"] = cap.info.text_spec;
        j["text_sha256"] = cap.info.text_sha256;
        j["layer"] = a->layer;
        j["head"] = a->head;
        j["kv_head"] = io.kv_head_of(a->head);
        j["n_tokens"] = io.n_tokens;
        j["head_dim"] = io.head_dim;
        j["method"] = method->spec();
        j["score"] = a->score;
        j["token_density"] = r.token_density;
        j["block_density"] = r.block_density;
        j["flop_fraction"] = r.flop_fraction;
        j["predictor_flops"] = r.predictor_flops;
        j["predictor_flop_share"] = attn_flops > 0 ? r.predictor_flops / attn_flops : 0.0;
        j["predictor_seconds"] = r.predictor_seconds;
        j["mass_recall"] = r.mass_recall;
        j["output_rel_error"] = r.output_rel_error;
        j["kl_dense_sparse"] = r.kl_dense_sparse;
        j["kl_sparse_dense"] = r.kl_sparse_dense;
        j["oracle_precision"] = r.oracle_precision;
        j["oracle_recall"] = r.oracle_recall;
        if (a->json) {
            print_json(j);
            return 0;
        }
        std::printf("source            %s (%s)\ntext              %s, %d tokens\nlayer/head        %d / %d (kv head %d)\n"
                    "method            %s, score %s\n"
                    "density           token %.4f, block %.4f\nflop fraction     %.4f (incl. predictor %.3g FLOPs, %.2f%% of dense)\n"
                    "predictor time    %.4f s\nmass recall       %.4f\noutput rel error  %.4g\n"
                    "KL(dense||sparse) %.4g (eps-mixed)\nKL(sparse||dense) %.4g\n"
                    "vs oracle_topk    precision %.4f, recall %.4f (at equal token density)\n",
                    a->source.c_str(), cap.info.model_id.c_str(), cap.info.text_spec.c_str(), io.n_tokens, a->layer,
                    a->head, io.kv_head_of(a->head), method->spec().c_str(), a->score.c_str(), r.token_density,
                    r.block_density, r.flop_fraction, r.predictor_flops,
                    100 * (attn_flops > 0 ? r.predictor_flops / attn_flops : 0.0), r.predictor_seconds, r.mass_recall,
                    r.output_rel_error, r.kl_dense_sparse, r.kl_sparse_dense, r.oracle_precision, r.oracle_recall);
        return 0;
    });
}

} // namespace attnlab_cli
