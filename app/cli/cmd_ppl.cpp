// attnlab-cli ppl: perplexity of a model on a text over non-overlapping windows.
// --device cuda runs the forward pass on the GPU (core/model/llama_gpu.h).
#include <chrono>
#include <cmath>
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
#include "model/model_files.h"
#include "model/tokenizer.h"

namespace attnlab_cli {

namespace {
struct ppl_args {
    std::string model, text = "kjv:eval", method, score, device = "cpu";
    int ctx = 1024;
    int64_t max_tokens = 0;
    bool json = false, quiet = false;
};

// Perplexity on the GPU over the same windows as perplexity_eval; the NLLs are
// reduced on the device (llama_gpu::score). Also keeps every predicted row's
// argmax (for top-1 agreement) and the GPU's timings and densities.
struct gpu_ppl_run {
    attnlab::perplexity_result r;
    std::vector<int32_t> argmax;
    double gate_s = 0.0, attention_s = 0.0, block_density = 0.0, token_density = 0.0;
    std::string attention_path, selection_path;
};

gpu_ppl_run gpu_perplexity(attnlab::llama_gpu & g, const std::vector<int32_t> & tokens, int ctx,
                           const attnlab::sparse_method * method, attnlab::job_progress * job, double p0, double p1) {
    using namespace attnlab;
    if (tokens.size() < 2) throw input_error("--text", "tokens", "perplexity needs at least 2 tokens");
    gpu_ppl_run out;
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t n = int64_t(tokens.size());
    const int64_t n_windows = (n + ctx - 1) / ctx;
    for (int64_t w = 0; w < n_windows; w++) {
        const int64_t begin = w * ctx, end = std::min<int64_t>(begin + ctx, n);
        if (end - begin < 2) break;
        job_step(job, p0 + (p1 - p0) * double(w) / double(n_windows),
                 "window " + std::to_string(w + 1) + "/" + std::to_string(n_windows) + (method ? " sparse" : ""));
        std::vector<int32_t> win(tokens.begin() + begin, tokens.begin() + end);
        llama_gpu_scores s = g.score(win, method);
        for (double x : s.nll) out.r.nll_sum += x;
        out.argmax.insert(out.argmax.end(), s.argmax.begin(), s.argmax.end());
        out.r.n_predicted += int64_t(win.size()) - 1;
        out.r.n_tokens += int64_t(win.size());
        out.r.n_windows++;
        const llama_gpu_stats & st = g.last_stats();
        out.gate_s += st.gate_s;
        out.attention_s += st.attention_s;
        out.block_density += st.block_density;
        out.token_density += st.token_density;
        out.attention_path = st.attention_path;
        out.selection_path = st.selection_path;
    }
    if (out.r.n_windows > 0) {
        out.block_density /= out.r.n_windows;
        out.token_density /= out.r.n_windows;
    }
    out.r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.r.nll = out.r.nll_sum / double(out.r.n_predicted);
    out.r.ppl = std::exp(out.r.nll);
    out.r.tokens_per_s = out.r.seconds > 0 ? double(out.r.n_tokens) / out.r.seconds : 0.0;
    return out;
}
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
    sub->add_option("--device", a->device,
                    "cpu (default) or cuda: the forward pass on the GPU (bf16 weights, fp32 accumulation; "
                    "--method block_topk runs the GPU gate, other block-level methods select on the host)")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
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
        const bool gpu = a->device == "cuda";
        if (gpu) {
            const std::string why = llama_gpu::unavailable_reason();
            if (!why.empty()) throw input_error("--device", "device", "cuda: " + why);
            if (score.kind != score_kind::softmax)
                throw input_error(a->score, "score", "--device cuda runs the softmax score only (use --device cpu)");
        }
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
        llama_check_ctx(m, a->ctx, 2, a->model);
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
        j["device"] = a->device;
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
        if (gpu) {
            std::unique_ptr<llama_gpu> g = llama_gpu::create(m);
            j["device_name"] = g->device_name();
            gpu_ppl_run dense, sparse;
            {
                progress_bar bar(run, a->quiet);
                dense = gpu_perplexity(*g, ids, a->ctx, nullptr, &run, 0.0, method ? 0.5 : 1.0);
                if (method) sparse = gpu_perplexity(*g, ids, a->ctx, method.get(), &run, 0.5, 1.0);
                job_step(&run, 1.0, "done");
                bar.finish();
            }
            j["attention_path"] = dense.attention_path;
            j["attention_seconds"] = dense.attention_s;
            if (!method) {
                j["method"] = "dense";
                put(j, dense.r);
                if (a->json) {
                    print_json(j);
                } else {
                    std::printf("model   %s (%s)\ntext    %s (%s part, sha256 %.12s)\ndevice  cuda (%s)\n"
                                "ctx     %d, %d windows, %lld tokens\nnll     %.5f\nppl     %.4f\n"
                                "time    %.2f s, %.1f tokens/s (attention %.2f s)\n",
                                m.model_id.c_str(), a->model.c_str(), src.spec.c_str(), text_part_name(src.part),
                                src.sha256.c_str(), g->device_name().c_str(), a->ctx, dense.r.n_windows,
                                (long long) dense.r.n_tokens, dense.r.nll, dense.r.ppl, dense.r.seconds,
                                dense.r.tokens_per_s, dense.attention_s);
                }
                return 0;
            }
            int64_t agree = 0;
            for (size_t i = 0; i < dense.argmax.size() && i < sparse.argmax.size(); ++i) agree += dense.argmax[i] == sparse.argmax[i];
            const double top1 = dense.argmax.empty() ? 0.0 : double(agree) / double(dense.argmax.size());
            const double delta = sparse.r.ppl - dense.r.ppl;
            j["method"] = method->spec();
            j["score"] = "softmax";
            put(j["dense"], dense.r);
            put(j["sparse"], sparse.r);
            j["ppl"] = sparse.r.ppl;
            j["delta_ppl"] = delta;
            j["delta_ppl_rel"] = delta / dense.r.ppl;
            j["top1_agreement"] = top1;
            j["token_density"] = sparse.token_density;
            j["block_density"] = sparse.block_density;
            j["predictor_seconds"] = sparse.gate_s;
            j["sparse_kernel_seconds"] = sparse.attention_s;
            j["selection_path"] = sparse.selection_path;
            if (a->json) {
                print_json(j);
            } else {
                std::printf("model    %s\ntext     %s (%s part)\ndevice   cuda (%s)\nctx      %d, %d windows, %lld tokens\n"
                            "method   %s (selection: %s)\ndense    ppl %.4f (%.2f s)\nsparse   ppl %.4f (%.2f s)\n"
                            "change   %+.4f (%+.2f%%)\ntop-1    %.2f%% agreement with dense\n"
                            "density  token %.3f, block %.3f (mean over layers)\n"
                            "time     gate %.3f s, sparse attention %.3f s, dense attention %.3f s\n",
                            m.model_id.c_str(), src.spec.c_str(), text_part_name(src.part), g->device_name().c_str(),
                            a->ctx, dense.r.n_windows, (long long) dense.r.n_tokens, method->spec().c_str(),
                            sparse.selection_path.c_str(), dense.r.ppl, dense.r.seconds, sparse.r.ppl, sparse.r.seconds,
                            delta, 100 * delta / dense.r.ppl, 100 * top1, sparse.token_density, sparse.block_density,
                            sparse.gate_s, sparse.attention_s, dense.attention_s);
            }
            return 0;
        }
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
