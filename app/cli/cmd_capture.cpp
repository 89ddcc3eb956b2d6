// attnlab-cli capture: run a model on text and save every layer's post-RoPE
// Q, K, V as a trace file.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "data/capture.h"
#include "data/corpus.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"

namespace attnlab_cli {

namespace {
struct capture_args {
    std::string model, text = "kjv:eval", out, layers, dtype = "f32";
    int ctx = 1024;
    bool json = false, quiet = false;
};
} // namespace

void add_cmd_capture(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<capture_args>();
    CLI::App * sub = app.add_subcommand("capture", "Save every layer's post-RoPE Q/K/V on a text as a trace file");
    sub->add_option("--model,-m", a->model, "GGUF file or HF checkpoint directory")->required();
    sub->add_option("--text,-t", a->text, "text file, or kjv:eval (default) / kjv:calib / kjv")->capture_default_str();
    sub->add_option("--ctx,-c", a->ctx, "tokens to capture, from the start of the text")->capture_default_str();
    sub->add_option("--out,-o", a->out, "trace file to write (safetensors)")->required();
    sub->add_option("--layers", a->layers, "layers to keep, e.g. 0,5,10-12 (default: all)");
    sub->add_option("--dtype", a->dtype, "f32, f16 or bf16")->capture_default_str();
    sub->add_flag("--json", a->json, "JSON output");
    sub->add_flag("--quiet,-q", a->quiet, "no progress bar");
    command c;
    c.sub = sub;
    c.json = &a->json;
    c.run = [a]() {
        using namespace attnlab;
        capture_options opt;
        if (a->dtype == "f32") opt.dtype = st_dtype::F32;
        else if (a->dtype == "f16") opt.dtype = st_dtype::F16;
        else if (a->dtype == "bf16") opt.dtype = st_dtype::BF16;
        else throw input_error("--dtype", "dtype", "'" + a->dtype + "' is not f32, f16 or bf16");
        if (file_kind_detect(a->model) == file_kind::trace) {
            throw input_error(a->model, "model", "capture needs a model (GGUF or HF checkpoint), not a trace");
        }
        job_progress job;
        progress_bar bar(job, a->quiet);
        llama_model m = llama_model_load(a->model, &job);
        bpe_tokenizer tok = tokenizer_load(a->model);
        tokenizer_check_model(tok, m, a->model);
        text_source src = text_load(a->text);
        if (!a->layers.empty()) opt.layers = parse_layer_list(a->layers, m.cfg.n_layer, "--layers");
        opt.ctx = a->ctx;
        opt.progress = &job;
        qkv_capture cap = capture_run(m, tok, src, opt);
        job.report(1.0, "writing " + a->out);
        trace_write(a->out, cap);
        bar.finish();
        nlohmann::json j;
        j["out"] = a->out;
        j["model_id"] = cap.info.model_id;
        j["model_sha256"] = cap.info.model_sha256;
        j["text"] = src.spec;
        j["text_sha256"] = src.sha256;
        j["tokens"] = cap.info.n_tokens();
        j["layers"] = cap.info.layers;
        j["dtype"] = st_dtype_name(cap.info.dtype);
        if (a->json) {
            print_json(j);
        } else {
            std::printf("wrote %s: %d tokens, %zu layers, %s\n", a->out.c_str(), cap.info.n_tokens(),
                        cap.info.layers.size(), st_dtype_name(cap.info.dtype));
        }
        return 0;
    };
    cmds.push_back(c);
}

} // namespace attnlab_cli
