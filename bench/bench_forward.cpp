// CPU forward-pass and dense-attention throughput, each beside an Eigen
// float32 GEMM measured in the same run (ratios, not absolute numbers, are
// what carries across machines).
//
//   bench_forward [model.gguf|hf_dir|--random] [n_tokens=2048] [attn_L=8192]
//
// --random: the default model's shapes with random weights (same cost).
// Prefill: n_tokens of real KJV text (John 1 on, the evaluation part) when the
// tokenizer and text are there, else fixed ids; only the last position's
// logits are computed, as in real prefill. GFLOP/s = llama_forward_flops /
// wall time (matmuls + causal attention; see llama_forward.cpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>

#include "attention/attention.h"
#include "base/data_path.h"
#include "io/gguf.h"
#include "model/llama.h"
#include "model/tokenizer.h"

using namespace attnlab;

namespace {

double seconds_of(const std::function<void()> & f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best of `reps` after one warm-up: the machine may be shared, the minimum is
// the least disturbed run.
double best_seconds(int reps, const std::function<void()> & f) {
    f();
    double best = 1e30;
    for (int i = 0; i < reps; ++i) best = std::min(best, seconds_of(f));
    return best;
}

// Row-major activations times a PyTorch-layout weight, as in the forward pass.
double gemm_gflops(int m, int k, int n, int reps) {
    matrix_rm a = matrix_rm::Random(m, k), w = matrix_rm::Random(n, k), c(m, n);
    const double s = best_seconds(reps, [&] { c.noalias() = a * w.transpose(); });
    return 2.0 * m * k * n / s * 1e-9;
}

std::vector<int32_t> prompt_ids(const std::string & model_path, int n) {
    const std::string kjv = attnlab::data_path("assets/text/kjv.txt");
    std::ifstream in(kjv);
    if (in && gguf_is_gguf(model_path)) {
        try {
            std::stringstream ss;
            ss << in.rdbuf();
            std::string text = ss.str();
            const size_t start = text.find("In the beginning was the Word");
            if (start != std::string::npos) {
                const bpe_tokenizer tok = bpe_tokenizer::from_gguf(gguf_file::open(model_path));
                std::vector<int32_t> ids = tok.encode(std::string_view(text).substr(start, (size_t) n * 8));
                if ((int) ids.size() >= n) {
                    ids.resize(n);
                    std::printf("prompt: %d tokens of KJV John 1 on\n", n);
                    return ids;
                }
            }
        } catch (const std::exception & e) {
            std::printf("tokenizer unavailable (%s); using fixed ids\n", e.what());
        }
    }
    std::vector<int32_t> ids(n);
    for (int i = 0; i < n; ++i) ids[i] = (i * 7919 + 13) % 32000;
    std::printf("prompt: %d fixed ids\n", n);
    return ids;
}


} // namespace

int main(int argc, char ** argv) {
    const std::string model_path = argc > 1 ? argv[1] : attnlab::data_path("assets/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    const int n_tokens = argc > 2 ? std::atoi(argv[2]) : 2048;
    const int attn_L = argc > 3 ? std::atoi(argv[3]) : 8192;
    std::printf("threads: %d\n", omp_get_max_threads());

    // Reference GEMMs: an FFN-shaped one at the prefill size, and a square one.
    const double gemm_ffn = gemm_gflops(n_tokens, 576, 1536, 5);
    const double gemm_sq = gemm_gflops(2048, 2048, 2048, 3);
    const double gemm_ref = std::max(gemm_ffn, gemm_sq);
    std::printf("eigen gemm %dx576 * 576x1536: %.1f GFLOP/s\n", n_tokens, gemm_ffn);
    std::printf("eigen gemm 2048^3:            %.1f GFLOP/s\n", gemm_sq);

    // Dense attention: one layer of the default model's heads at length attn_L.
    const int n_head = 9, n_head_kv = 3, hd = 64;
    std::vector<float> q((size_t) attn_L * n_head * hd), k((size_t) attn_L * n_head_kv * hd),
        v((size_t) attn_L * n_head_kv * hd), out((size_t) attn_L * n_head * hd);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (auto * vec : {&q, &k, &v})
        for (auto & x : *vec) x = nd(rng);
    attention_layer_io io;
    io.n_tokens = attn_L;
    io.n_head = n_head;
    io.n_head_kv = n_head_kv;
    io.head_dim = hd;
    io.scale = 1.0f / 8.0f;
    io.causal = true;
    io.q = q.data();
    io.k = k.data();
    io.v = v.data();
    io.out = out.data();
    const double attn_flops = 2.0 * 2.0 * n_head * hd * ((double) attn_L * (attn_L + 1) / 2);
    const double attn_s = best_seconds(2, [&] { attention_dense_flash(io); });
    const double attn_gflops = attn_flops / attn_s * 1e-9;
    std::printf("dense flash attention L=%d, %d/%d heads, hd %d, causal: %.3f s, %.1f GFLOP/s\n", attn_L, n_head,
                n_head_kv, hd, attn_s, attn_gflops);

    // Forward prefill.
    double fwd_s = 0.0, fwd_gflops = 0.0;
    std::vector<int32_t> ids;
    try {
        const bool random = model_path == "--random";
        const llama_model m = random ? llama_model_random(llama_config_smollm2_135m()) : llama_model_load(model_path);
        ids = prompt_ids(model_path, n_tokens);
        forward_options fo;
        fo.all_logits = false;
        fwd_s = best_seconds(2, [&] { llama_forward(m, ids, fo); });
        fwd_gflops = llama_forward_flops(m.cfg, n_tokens, false) / fwd_s * 1e-9;
        std::printf("forward prefill %d tokens (%s): %.3f s, %.1f GFLOP/s (%.1f GFLOP counted)\n", n_tokens,
                    m.source_path.c_str(), fwd_s, fwd_gflops, llama_forward_flops(m.cfg, n_tokens, false) * 1e-9);
    } catch (const std::exception & e) {
        std::printf("forward skipped: %s\n", e.what());
    }

    const double r_fwd = fwd_gflops / gemm_ref, r_attn = attn_gflops / gemm_ref;
    std::printf("ratio forward/gemm:   %.2f (target >= 0.6)\n", r_fwd);
    std::printf("ratio attention/gemm: %.2f (target >= 0.5)\n", r_attn);
    std::printf("{\"bench\":\"forward\",\"threads\":%d,\"gemm_ffn_gflops\":%.2f,\"gemm_square_gflops\":%.2f,"
                "\"attn_L\":%d,\"attn_seconds\":%.4f,\"attn_gflops\":%.2f,\"forward_tokens\":%d,"
                "\"forward_seconds\":%.4f,\"forward_gflops\":%.2f,\"ratio_forward_gemm\":%.3f,"
                "\"ratio_attention_gemm\":%.3f}\n",
                omp_get_max_threads(), gemm_ffn, gemm_sq, attn_L, attn_s, attn_gflops, n_tokens, fwd_s, fwd_gflops,
                r_fwd, r_attn);
    return 0;
}
