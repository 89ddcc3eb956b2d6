// attnlab-cli export: a method's selection on every layer and head as
// FlexAttention block lists (safetensors), a reference head for
// tools/flex_check.py, and a MInference-style per-head pattern/budget JSON.
#include <iostream>
#include <memory>
#include <sys/stat.h>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "data/capture.h"
#include "lab/export_flex.h"
#include "methods/method.h"

namespace attnlab_cli {

namespace {
struct export_args {
    std::string source, text = "kjv:eval", method, out, minference, layers, score = "softmax";
    int ctx = 1024, check_layer = -1, check_head = 0;
    bool json = false, quiet = false;
};
} // namespace

void add_cmd_export(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<export_args>();
    CLI::App * sub = app.add_subcommand("export", "Export a selection as FlexAttention block lists (safetensors) and a "
                                                  "MInference-style per-head JSON");
    sub->add_option("--source,-s", a->source, "model (GGUF / HF directory) or trace file")->required();
    sub->add_option("--method", a->method, "method SPEC, e.g. block_topk:rho=0.2,B=64")->required();
    sub->add_option("--out,-o", a->out, "output FILE.safetensors (reference head: FILE.ref.safetensors)")->required();
    sub->add_option("--minference", a->minference, "also write the per-head pattern/budget JSON here");
    sub->add_option("--text,-t", a->text, "text to capture when the source is a model")->capture_default_str();
    sub->add_option("--ctx,-c", a->ctx, "tokens to capture when the source is a model")->capture_default_str();
    sub->add_option("--layers", a->layers, "layers to export, e.g. 0,10-12 (default: all)");
    sub->add_option("--check-layer", a->check_layer, "layer of the reference head (default: the middle exported one)");
    sub->add_option("--check-head", a->check_head, "query head of the reference")->capture_default_str();
    sub->add_option("--score", a->score, "score function of the reference output")->capture_default_str();
    sub->add_flag("--json", a->json, "JSON output");
    sub->add_flag("--quiet,-q", a->quiet, "no progress bar");
    command c;
    c.sub = sub;
    c.json = &a->json;
    c.run = [a]() {
        using namespace attnlab;
        std::unique_ptr<sparse_method> method = method_create(a->method);
        score_create(a->score);
        std::vector<int> layers;
        if (!a->layers.empty()) layers = parse_layer_list(a->layers, 1 << 20, "--layers");
        // A missing output folder should fail before the capture, not after.
        for (const std::string & path : {a->out, a->minference}) {
            if (path.empty()) continue;
            const size_t slash = path.rfind('/');
            const std::string dir = slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
            struct stat st;
            if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
                throw input_error(path, "out", "folder " + dir + " does not exist");
            }
        }
        job_progress job;
        qkv_capture cap;
        {
            progress_bar bar(job, a->quiet);
            // An export is not a metric: any text part may be captured.
            cap = capture_from_source(a->source, a->text, a->ctx, layers, true, &job);
            bar.finish();
        }
        flex_export_options opt;
        opt.method_spec = method->spec();
        opt.score_spec = a->score;
        opt.check_layer = a->check_layer;
        opt.check_head = a->check_head;
        opt.minference_json = a->minference;
        job_progress run;
        flex_export_result r;
        {
            progress_bar bar(run, a->quiet);
            opt.progress = &run;
            r = flex_export(cap, *method, a->out, opt);
            bar.finish();
        }
        nlohmann::json j;
        j["source"] = a->source;
        j["method"] = method->spec();
        j["out"] = r.path;
        j["reference"] = r.ref_path;
        j["minference"] = r.minference_path;
        j["block_size"] = r.lists.block;
        j["n_tokens"] = r.lists.n_tokens;
        j["layers"] = r.lists.layers;
        j["n_head"] = r.lists.n_head;
        j["nq_blocks"] = r.lists.nq;
        j["token_density"] = r.token_density;
        j["block_density"] = r.block_density;
        j["full_block_share"] = r.full_block_share;
        j["check_layer"] = r.check_layer;
        j["check_head"] = r.check_head;
        j["select_seconds"] = r.select_seconds;
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
    };
    cmds.push_back(c);
}

} // namespace attnlab_cli
