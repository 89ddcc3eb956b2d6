// attnlab-cli passkey: needle retrieval at several depths and context lengths,
// dense or with a sparse method patched into every layer.
#include <iostream>
#include <memory>
#include <sstream>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "data/corpus.h"
#include "methods/method.h"
#include "metrics/passkey.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"

namespace attnlab_cli {

namespace {
struct passkey_args {
    std::string model, text = "kjv:eval", method, ctxs = "2048", depths = "0.1,0.3,0.5,0.7,0.9";
    int trials = 1;
    uint64_t seed = 1;
    bool json = false, quiet = false;
};

} // namespace

void add_cmd_passkey(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<passkey_args>();
    CLI::App * sub = app.add_subcommand("passkey", "Passkey retrieval: a number hidden in evaluation text, asked for at the end");
    sub->add_option("--model,-m", a->model, "GGUF file or HF checkpoint directory")->required();
    sub->add_option("--text,-t", a->text, "filler text: the evaluation part (kjv:eval)")->capture_default_str();
    sub->add_option("--ctx,-c", a->ctxs, "context lengths, e.g. 2048,4096,8192")->capture_default_str();
    sub->add_option("--depths", a->depths, "needle depths as fractions of the filler")->capture_default_str();
    sub->add_option("--trials", a->trials, "trials per (ctx, depth), each with its own key and filler offset")->capture_default_str();
    sub->add_option("--seed", a->seed, "first seed")->capture_default_str();
    sub->add_option("--method", a->method, "sparse method SPEC patched into every layer (default: dense)");
    sub->add_flag("--json", a->json, "JSON output");
    sub->add_flag("--quiet,-q", a->quiet, "no progress bar");
    command c;
    c.sub = sub;
    c.json = &a->json;
    c.run = [a]() {
        using namespace attnlab;
        std::vector<int> ctxs = parse_number_list<int>(a->ctxs, "ctx");
        std::vector<double> depths = parse_number_list<double>(a->depths, "depths");
        if (a->trials < 1 || a->trials > 1000) throw input_error("--trials", "trials", "must be within 1..1000");
        std::shared_ptr<const sparse_method> method;
        if (!a->method.empty()) method = method_create(a->method);
        text_source src = text_load(a->text);
        if (src.part == text_part::calibration) {
            // metrics are never measured on text that calibration may have seen
            text_require_part(src, text_part::evaluation, "the passkey test");
        }
        job_progress job;
        progress_bar bar(job, a->quiet);
        llama_model m = llama_model_load(a->model, &job);
        bpe_tokenizer tok = tokenizer_load(a->model);
        tokenizer_check_model(tok, m, a->model);
        std::unique_ptr<sparse_attention_hook> hook;
        if (method) hook.reset(new sparse_attention_hook(method));
        nlohmann::json rows = nlohmann::json::array();
        const int total = int(ctxs.size() * depths.size()) * a->trials;
        int done = 0, retrieved = 0;
        for (int ctx : ctxs) {
            for (double d : depths) {
                for (int t = 0; t < a->trials; t++) {
                    passkey_options o;
                    o.ctx = ctx;
                    o.depth = d;
                    o.seed = a->seed + uint64_t(t);
                    job_step(&job, double(done) / total, "ctx " + std::to_string(ctx) + " depth " + std::to_string(d).substr(0, 4));
                    passkey_trial r = passkey_run(m, tok, src.text, o, hook.get());
                    done++;
                    retrieved += r.retrieved;
                    rows.push_back({{"ctx", r.ctx}, {"depth", r.depth}, {"seed", r.seed}, {"key", r.key},
                                    {"needle_position", r.needle_position}, {"digits_correct", r.digits_correct},
                                    {"n_digits", r.n_digits}, {"retrieved", r.retrieved}});
                }
            }
        }
        bar.finish();
        nlohmann::json j;
        j["model"] = a->model;
        j["model_sha256"] = m.source_sha256;
        j["text"] = src.spec;
        j["text_sha256"] = src.sha256;
        j["method"] = method ? method->spec() : "dense";
        j["trials"] = rows;
        j["accuracy"] = double(retrieved) / double(total);
        if (a->json) {
            print_json(j);
        } else {
            std::printf("method %s\n%6s %6s %6s  %-10s %s\n", j["method"].get<std::string>().c_str(), "ctx", "depth",
                        "seed", "key", "digits");
            for (const auto & r : rows) {
                std::printf("%6d %6.2f %6llu  %-10s %d/%d%s\n", r["ctx"].get<int>(), r["depth"].get<double>(),
                            (unsigned long long) r["seed"].get<uint64_t>(), r["key"].get<std::string>().c_str(),
                            r["digits_correct"].get<int>(), r["n_digits"].get<int>(), r["retrieved"].get<bool>() ? "  retrieved" : "");
            }
            std::printf("accuracy %.3f (%d/%d)\n", j["accuracy"].get<double>(), retrieved, total);
        }
        return 0;
    };
    cmds.push_back(c);
}

} // namespace attnlab_cli
