// attnlab-cli ppl: perplexity of a model on a text over non-overlapping windows.
#include <iostream>
#include <memory>
#include <omp.h>

#include "cli_common.h"
#include "commands.h"
#include "io/error.h"
#include "lab/corpus.h"
#include "metrics/perplexity.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"

namespace attnlab_cli {

namespace {
struct ppl_args {
    std::string model, text = "kjv:eval";
    int ctx = 1024;
    int64_t max_tokens = 0;
    bool json = false, quiet = false;
};
} // namespace

void add_cmd_ppl(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<ppl_args>();
    CLI::App * sub = app.add_subcommand("ppl", "Perplexity over non-overlapping windows of ctx tokens");
    sub->add_option("--model,-m", a->model, "GGUF file or HF checkpoint directory")->required();
    sub->add_option("--text,-t", a->text, "text file, or kjv:eval (default) / kjv:calib / kjv")->capture_default_str();
    sub->add_option("--ctx,-c", a->ctx, "window length in tokens")->capture_default_str();
    sub->add_option("--max-tokens,-n", a->max_tokens, "use only the first K tokens of the text (0: all)");
    sub->add_flag("--json", a->json, "JSON output");
    sub->add_flag("--quiet,-q", a->quiet, "no progress bar");
    command c;
    c.sub = sub;
    c.json = &a->json;
    c.run = [a]() {
        using namespace attnlab;
        if (a->max_tokens < 0) throw input_error("--max-tokens", "max_tokens", "must be >= 0");
        if (file_kind_detect(a->model) == file_kind::trace) {
            throw input_error(a->model, "model", "perplexity needs a model (GGUF or HF checkpoint), not a trace");
        }
        job_progress job;
        llama_model m;
        {
            progress_bar bar(job, a->quiet);
            m = llama_model_load(a->model, &job);
            bar.finish();
        }
        if (a->ctx < 2 || a->ctx > m.cfg.n_ctx_train) {
            throw input_error(a->model, "ctx", std::to_string(a->ctx) + " is outside 2.." + std::to_string(m.cfg.n_ctx_train) +
                                                   " (the model's context)");
        }
        bpe_tokenizer tok = tokenizer_load(a->model);
        tokenizer_check_model(tok, m, a->model);
        text_source src = text_load(a->text);
        std::vector<int32_t> ids = tok.encode(src.text);
        if (a->max_tokens > 0 && int64_t(ids.size()) > a->max_tokens) ids.resize(size_t(a->max_tokens));
        perplexity_result r;
        {
            job_progress run;
            progress_bar bar(run, a->quiet);
            r = perplexity_eval(m, ids, a->ctx, nullptr, &run);
            bar.finish();
        }
        nlohmann::json j;
        j["model"] = a->model;
        j["model_id"] = m.model_id;
        j["model_sha256"] = m.source_sha256;
        j["text"] = src.spec;
        j["text_part"] = text_part_name(src.part);
        j["text_sha256"] = src.sha256;
        j["ctx"] = a->ctx;
        j["tokens"] = r.n_tokens;
        j["predicted"] = r.n_predicted;
        j["windows"] = r.n_windows;
        j["nll"] = r.nll;
        j["ppl"] = r.ppl;
        j["seconds"] = r.seconds;
        j["tokens_per_s"] = r.tokens_per_s;
        j["threads"] = omp_get_max_threads();
        j["method"] = "dense";
        if (a->json) {
            print_json(j);
        } else {
            std::printf("model   %s (%s)\ntext    %s (%s part, sha256 %.12s)\nctx     %d, %d windows, %lld tokens\n"
                        "nll     %.5f\nppl     %.4f\ntime    %.2f s, %.1f tokens/s, %d threads\n",
                        m.model_id.c_str(), a->model.c_str(), src.spec.c_str(), text_part_name(src.part), src.sha256.c_str(),
                        a->ctx, r.n_windows, (long long) r.n_tokens, r.nll, r.ppl, r.seconds, r.tokens_per_s,
                        omp_get_max_threads());
        }
        return 0;
    };
    cmds.push_back(c);
}

} // namespace attnlab_cli
