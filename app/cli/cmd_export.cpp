// attnlab-cli export: a method's selection on every layer and head as
// FlexAttention block lists (safetensors), a reference head for
// tools/flex_check.py, and a MInference-style per-head pattern/budget JSON.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "base/dir_lock.h"
#include "commands.h"
#include "base/error.h"
#include "data/capture.h"
#include "lab/export_flex.h"
#include "methods/method.h"

namespace attnlab_cli {

namespace {
struct export_args : common_opts {
    std::string out, minference, layers;
    int check_layer = -1, check_head = 0;
};
} // namespace

void add_cmd_export(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<export_args>();
    CLI::App * sub = app.add_subcommand("export", "Export a selection as FlexAttention block lists (safetensors) and a "
                                                  "MInference-style per-head JSON");
    a->add_source(sub);
    a->add_method(sub, "method SPEC, e.g. block_topk:rho=0.2,B=64")->required();
    sub->add_option("--out,-o", a->out, "output FILE.safetensors (reference head: FILE.ref.safetensors)")->required();
    sub->add_option("--minference", a->minference, "also write the per-head pattern/budget JSON here");
    a->add_text(sub, "text to capture when the source is a model");
    a->add_ctx(sub, "tokens to capture when the source is a model");
    sub->add_option("--layers", a->layers, "layers to export, e.g. 0,10-12 (default: all)");
    sub->add_option("--check-layer", a->check_layer, "layer of the reference head (default: the middle exported one)");
    sub->add_option("--check-head", a->check_head, "query head of the reference")->capture_default_str();
    a->add_score(sub, "score function of the reference output");
    a->add_output_flags(sub);
    command_add(cmds, sub, *a, [a]() {
        using namespace attnlab;
        std::unique_ptr<sparse_method> method = method_create(a->method);
        score_create(a->score);
        std::vector<int> layers;
        if (!a->layers.empty()) layers = parse_layer_list(a->layers, 1 << 20, "--layers");
        // A missing output folder should fail before the capture, not after.
        for (const std::string & path : {a->out, a->minference}) {
            if (!path.empty()) require_output_folder(path);
        }
        const dir_lock lock(a->out, dir_lock::file, "out");   // one writer per output
        // An export is not a metric: any text part may be captured.
        const qkv_capture cap = run_job(a->quiet, [&](job_progress * job) {
            return capture_from_source(a->source, a->text, a->ctx, layers, true, job);
        });
        flex_export_options opt;
        opt.method_spec = method->spec();
        opt.score_spec = a->score;
        opt.check_layer = a->check_layer;
        opt.check_head = a->check_head;
        opt.minference_json = a->minference;
        const flex_export_result r = run_job(a->quiet, [&](job_progress * job) {
            opt.progress = job;
            return flex_export(cap, *method, a->out, opt);
        });
        const nlohmann::json j = {
            {"source", a->source}, {"method", method->spec()}, {"out", r.path}, {"reference", r.ref_path},
            {"minference", r.minference_path}, {"block_size", r.lists.block}, {"n_tokens", r.lists.n_tokens},
            {"layers", r.lists.layers}, {"n_head", r.lists.n_head}, {"nq_blocks", r.lists.nq},
            {"token_density", r.token_density}, {"block_density", r.block_density},
            {"full_block_share", r.full_block_share}, {"check_layer", r.check_layer}, {"check_head", r.check_head},
            {"select_seconds", r.select_seconds}};
        if (a->json) {
            print_json(j);
        } else {
            std::printf("method     %s\nexport     %s (%d layers x %d heads x %d query blocks of %d)\n"
                        "reference  %s (layer %d, head %d)\n%s%s%sdensity    token %.3f, block %.3f; %.1f%% of kept blocks are full\n",
                        method->spec().c_str(), r.path.c_str(), int(r.lists.layers.size()), r.lists.n_head, r.lists.nq,
                        r.lists.block, r.ref_path.c_str(), r.check_layer, r.check_head,
                        r.minference_path.empty() ? "" : "minference ", r.minference_path.c_str(),
                        r.minference_path.empty() ? "" : "\n", r.token_density, r.block_density, 100 * r.full_block_share);
        }
        return 0;
    });
}

} // namespace attnlab_cli
