// attnlab-cli capture: run a model on text and save every layer's post-RoPE
// Q, K, V as a trace file.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "base/dir_lock.h"
#include "base/error.h"
#include "data/capture.h"
#include "data/corpus.h"
#include "model/llama.h"
#include "model/llama_gpu_api.h"
#include "model/model_files.h"

namespace attnlab_cli {

namespace {
struct capture_args : common_opts {
    std::string out, layers, dtype = "f32";
};

attnlab::st_dtype parse_dtype(const std::string & s) {
    if (s == "f32") return attnlab::st_dtype::F32;
    if (s == "f16") return attnlab::st_dtype::F16;
    if (s == "bf16") return attnlab::st_dtype::BF16;
    throw attnlab::input_error("--dtype", "dtype", "'" + s + "' is not f32, f16 or bf16");
}

int run_capture(const capture_args & a) {
    using namespace attnlab;
    capture_options opt;
    opt.dtype = parse_dtype(a.dtype);
    require_model_file(a.model, "capture");
    if (a.device == "cuda") {
        const std::string why = llama_gpu::unavailable_reason();
        if (!why.empty()) throw input_error("--device", "device", "cuda: " + why);
    }
    require_output_folder(a.out);
    const dir_lock lock(a.out, dir_lock::file, "out");   // one writer per output
    const cli_model cm = cli_model_load(a.model, a.quiet);
    const text_source src = text_load(a.text);
    if (!a.layers.empty()) opt.layers = parse_layer_list(a.layers, cm.m.cfg.n_layer, "--layers");
    opt.ctx = a.ctx;
    std::unique_ptr<llama_gpu> gpu;
    if (a.device == "cuda") {
        gpu = llama_gpu::create(cm.m);
        opt.gpu = gpu.get();
    }
    const qkv_capture cap = run_job(a.quiet, [&](job_progress * job) {
        opt.progress = job;
        qkv_capture c = capture_run(cm.m, cm.tok, src, opt);
        job->report(1.0, "writing " + a.out);
        trace_write(a.out, c, job);   // Ctrl-C reaches the write too
        return c;
    });
    nlohmann::json j;
    j["out"] = a.out;
    j["model_id"] = cap.info.model_id;
    j["model_sha256"] = cap.info.model_sha256;
    j["text"] = src.spec;
    j["text_sha256"] = src.sha256;
    j["tokens"] = cap.info.n_tokens();
    j["layers"] = cap.info.layers;
    j["dtype"] = st_dtype_name(cap.info.dtype);
    j["device"] = a.device;
    if (gpu) j["device_name"] = gpu->device_name();
    if (a.json) {
        print_json(j);
    } else {
        std::printf("wrote %s: %d tokens, %zu layers, %s\n", a.out.c_str(), cap.info.n_tokens(), cap.info.layers.size(),
                    st_dtype_name(cap.info.dtype));
    }
    return 0;
}
} // namespace

void add_cmd_capture(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<capture_args>();
    CLI::App * sub = app.add_subcommand("capture", "Save every layer's post-RoPE Q/K/V on a text as a trace file");
    a->add_model(sub);
    a->add_text(sub, "text file, or kjv:eval (default) / kjv:calib / kjv");
    a->add_ctx(sub, "tokens to capture, from the start of the text");
    sub->add_option("--out,-o", a->out, "trace file to write (safetensors)")->required();
    sub->add_option("--layers", a->layers, "layers to keep, e.g. 0,5,10-12 (default: all)");
    sub->add_option("--dtype", a->dtype, "f32, f16 or bf16")->capture_default_str();
    a->add_device(sub, "cpu (default) or cuda: the forward pass on the GPU (bf16 weights, fp32 accumulation)");
    a->add_output_flags(sub);
    command_add(cmds, sub, *a, [a]() { return run_capture(*a); });
}

} // namespace attnlab_cli
