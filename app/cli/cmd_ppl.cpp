// attnlab-cli ppl: perplexity of a model on a text over non-overlapping windows.
#include <iostream>
#include <memory>
#include <omp.h>

#include "cli_common.h"
#include "commands.h"
#include "io/error.h"
#include "lab/corpus.h"
#include "methods/method.h"
#include "metrics/perplexity.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"

namespace attnlab_cli {

namespace {
struct ppl_args {
    std::string model, text = "kjv:eval", method, score;
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
    sub->add_option("--method", a->method,
                    "sparse method SPEC patched into every layer, e.g. block_topk:density=0.2,block=64; "
                    "reports dense and sparse side by side with top-1 agreement");
    sub->add_option("--score", a->score, "score function SPEC: softmax (default), relu:..., hyperbolic:...");
    sub->add_flag("--json", a->json, "JSON output");
    sub->add_flag("--quiet,-q", a->quiet, "no progress bar");
    command c;
    c.sub = sub;
    c.json = &a->json;
    c.run = [a]() {
        using namespace attnlab;
        // Parse the method first: a typo should not cost a model load.
        std::shared_ptr<const sparse_method> method;
        score_fn score;
        if (!a->method.empty()) method = method_create(a->method);
        if (!a->score.empty()) score = score_create(a->score);
        if (!method && !a->score.empty()) method = method_create("dense");
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
        nlohmann::json j;
        j["model"] = a->model;
        j["model_id"] = m.model_id;
        j["model_sha256"] = m.source_sha256;
        j["text"] = src.spec;
        j["text_part"] = text_part_name(src.part);
        j["text_sha256"] = src.sha256;
        j["ctx"] = a->ctx;
        j["threads"] = omp_get_max_threads();
        auto put = [](nlohmann::json & o, const perplexity_result & r) {
            o["tokens"] = r.n_tokens;
            o["predicted"] = r.n_predicted;
            o["windows"] = r.n_windows;
            o["nll"] = r.nll;
            o["ppl"] = r.ppl;
            o["seconds"] = r.seconds;
            o["tokens_per_s"] = r.tokens_per_s;
        };
        job_progress run;
        if (!method) {
            perplexity_result r;
            {
                progress_bar bar(run, a->quiet);
                r = perplexity_eval(m, ids, a->ctx, nullptr, &run);
                bar.finish();
            }
            j["method"] = "dense";
            put(j, r);
            if (a->json) {
                print_json(j);
            } else {
                std::printf("model   %s (%s)\ntext    %s (%s part, sha256 %.12s)\nctx     %d, %d windows, %lld tokens\n"
                            "nll     %.5f\nppl     %.4f\ntime    %.2f s, %.1f tokens/s, %d threads\n",
                            m.model_id.c_str(), a->model.c_str(), src.spec.c_str(), text_part_name(src.part),
                            src.sha256.c_str(), a->ctx, r.n_windows, (long long) r.n_tokens, r.nll, r.ppl, r.seconds,
                            r.tokens_per_s, omp_get_max_threads());
            }
            return 0;
        }
        sparse_attention_hook hook(method, score);
        perplexity_comparison cmp;
        {
            progress_bar bar(run, a->quiet);
            cmp = perplexity_compare(m, ids, a->ctx, &hook, &run);
            bar.finish();
        }
        double tok_d = 0, blk_d = 0, pred_s = 0, kern_s = 0;
        for (const auto & rec : hook.records()) {
            tok_d += rec.token_density;
            blk_d += rec.block_density;
            pred_s += rec.predictor_s;
            kern_s += rec.kernel_s;
        }
        const double n_rec = std::max<size_t>(1, hook.records().size());
        j["method"] = method->spec();
        j["score"] = a->score.empty() ? "softmax" : a->score;
        put(j["dense"], cmp.dense);
        put(j["sparse"], cmp.sparse);
        j["ppl"] = cmp.sparse.ppl;
        j["delta_ppl"] = cmp.delta_ppl;
        j["delta_ppl_rel"] = cmp.delta_ppl_rel;
        j["top1_agreement"] = cmp.top1_agreement;
        j["token_density"] = tok_d / n_rec;
        j["block_density"] = blk_d / n_rec;
        j["predictor_seconds"] = pred_s;
        j["sparse_kernel_seconds"] = kern_s;
        if (a->json) {
            print_json(j);
        } else {
            std::printf("model    %s\ntext     %s (%s part)\nctx      %d, %d windows, %lld tokens\nmethod   %s\n"
                        "dense    ppl %.4f (%.1f s)\nsparse   ppl %.4f (%.1f s)\nchange   %+.4f (%+.2f%%)\n"
                        "top-1    %.2f%% agreement with dense\ndensity  token %.3f, block %.3f (mean over layers)\n"
                        "time     predictor %.2f s, sparse attention %.2f s\n",
                        m.model_id.c_str(), src.spec.c_str(), text_part_name(src.part), a->ctx, cmp.dense.n_windows,
                        (long long) cmp.dense.n_tokens, method->spec().c_str(), cmp.dense.ppl, cmp.dense.seconds,
                        cmp.sparse.ppl, cmp.sparse.seconds, cmp.delta_ppl, 100 * cmp.delta_ppl_rel,
                        100 * cmp.top1_agreement, tok_d / n_rec, blk_d / n_rec, pred_s, kern_s);
        }
        return 0;
    };
    cmds.push_back(c);
}

} // namespace attnlab_cli
