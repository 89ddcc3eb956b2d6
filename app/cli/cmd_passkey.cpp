// attnlab-cli passkey: needle retrieval at several depths and context lengths,
// dense or with a sparse method patched into every layer. The loop is
// lab/passkey_grid.h, the one the passkey scenario kind runs.
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "base/error.h"
#include "data/corpus.h"
#include "lab/passkey_grid.h"
#include "methods/method.h"
#include "model/llama_gpu_api.h"

namespace attnlab_cli {

namespace {
struct passkey_args : common_opts {
    std::string ctxs = "2048", depths = "0.1,0.3,0.5,0.7,0.9";
    int trials = 1;
    uint64_t seed = 1;
};

void print_trials(const nlohmann::json & j, int retrieved, int total) {
    std::printf("method %s\n%6s %6s %6s  %-10s %s\n", j["method"].get<std::string>().c_str(), "ctx", "depth", "seed", "key", "digits");
    for (const auto & r : j["trials"]) {
        std::printf("%6d %6.2f %6llu  %-10s %d/%d%s\n", r["ctx"].get<int>(), r["depth"].get<double>(),
                    (unsigned long long) r["seed"].get<uint64_t>(), r["key"].get<std::string>().c_str(), r["digits_correct"].get<int>(),
                    r["n_digits"].get<int>(), r["retrieved"].get<bool>() ? "  retrieved" : "");
    }
    std::printf("accuracy %.3f (%d/%d)\n", j["accuracy"].get<double>(), retrieved, total);
}

int run_passkey(const passkey_args & a) {
    using namespace attnlab;
    passkey_grid_options o;
    o.ctxs = parse_number_list<int>(a.ctxs, "ctx");
    o.depths = parse_number_list<double>(a.depths, "depths");
    if (a.trials < 1 || a.trials > 1000) throw input_error("--trials", "trials", "must be within 1..1000");
    o.trials = a.trials;
    o.seed = a.seed;
    std::shared_ptr<const sparse_method> method;
    if (!a.method.empty()) method = method_create(a.method);
    text_source src = text_load(a.text);
    if (src.part == text_part::calibration) {
        // metrics are never measured on text that calibration may have seen
        text_require_part(src, text_part::evaluation, "the passkey test");
    }
    if (a.device == "cuda") {
        const std::string why = llama_gpu::unavailable_reason();
        if (!why.empty()) throw input_error("--device", "device", "cuda: " + why);
    }
    const cli_model cm = cli_model_load(a.model, a.quiet);
    std::unique_ptr<sparse_attention_hook> hook;
    if (method) hook.reset(new sparse_attention_hook(method));
    std::unique_ptr<llama_gpu> gpu;
    if (a.device == "cuda") {
        gpu = llama_gpu::create(cm.m);
        o.gpu = gpu.get();
        o.method = method.get();
    }
    const std::vector<passkey_trial> trials =
        run_job(a.quiet, [&](job_progress * job) { return passkey_grid_run(cm.m, cm.tok, src.text, o, hook.get(), job); });
    nlohmann::json rows = nlohmann::json::array();
    int retrieved = 0;
    for (const auto & t : trials) {
        rows.push_back(passkey_trial_json(t));
        retrieved += t.retrieved;
    }
    const int total = int(trials.size());
    nlohmann::json j;
    j["model"] = a.model;
    j["model_sha256"] = cm.m.source_sha256;
    j["text"] = src.spec;
    j["text_sha256"] = src.sha256;
    j["method"] = method ? method->spec() : "dense";
    j["device"] = a.device;
    if (gpu) j["device_name"] = gpu->device_name();
    j["trials"] = rows;
    j["accuracy"] = double(retrieved) / double(total);
    if (a.json) print_json(j);
    else print_trials(j, retrieved, total);
    return 0;
}

} // namespace

void add_cmd_passkey(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<passkey_args>();
    CLI::App * sub = app.add_subcommand("passkey", "Passkey retrieval: a number hidden in evaluation text, asked for at the end");
    a->add_model(sub);
    a->add_text(sub, "filler text: the evaluation part (kjv:eval)");
    sub->add_option("--ctx,-c", a->ctxs, "context lengths, e.g. 2048,4096,8192")->capture_default_str();
    sub->add_option("--depths", a->depths, "needle depths as fractions of the filler")->capture_default_str();
    sub->add_option("--trials", a->trials, "trials per (ctx, depth), each with its own key and filler offset")->capture_default_str();
    sub->add_option("--seed", a->seed, "first seed")->capture_default_str();
    a->add_method(sub, "sparse method SPEC patched into every layer (default: dense)");
    a->add_device(sub, "cpu (default) or cuda: every trial's forward pass on the GPU (bf16 weights, fp32 accumulation)");
    a->add_json(sub);
    a->add_quiet(sub);
    command_add(cmds, sub, *a, [a]() { return run_passkey(*a); });
}

} // namespace attnlab_cli
