// GPU forward-pass throughput (llama_gpu) at the default model's shapes
// (SmolLM2-135M: 30 layers, 576 wide, 9 heads / 3 kv heads of 64, SwiGLU
// 1536, vocab 49152) with random weights: the cost does not depend on the
// values, and the model file (98 MB) need not travel to the GPU machine.
//
//   bench_llama_gpu [ctx=8192] [reps=5] [model_path]
//
// Each row: one ppl-shaped call (llama_gpu::score: all rows' logits, the
// vocabulary NLL reduced on the GPU) over ctx tokens; median of reps after a
// warm-up; tokens/s = ctx / median; attention and gate are CUDA-event times
// summed over the layers. Also the CPU-side ppl bound for comparison is in
// bench_forward (CPU).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cuda_register.h"
#include "model/llama_gpu_api.h"
#include "methods/learned_gate.h"
#include "methods/method.h"
#include "model/llama.h"

using namespace attnlab;

int main(int argc, char ** argv) {
    const int ctx = argc > 1 ? std::atoi(argv[1]) : 8192;
    const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
    attnlab_cuda_register();
    // The method table is filled by static registrars (whole-archive link).
    std::printf("methods registered: %zu\n", method_registry().size());
    if (!llama_gpu::available()) {
        std::printf("skipped: %s\n", llama_gpu::unavailable_reason().c_str());
        return 0;
    }
    llama_model m = argc > 3 ? llama_model_load(argv[3]) : llama_model_random(llama_config_smollm2_135m());
    auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<llama_gpu> g = llama_gpu::create(m);
    const double upload_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("device: %s\nmodel: %s, upload %.2f s\nctx %d, %d reps (median)\n", g->device_name().c_str(),
                m.source_path.c_str(), upload_s, ctx, reps);
    std::vector<int32_t> ids(ctx);
    for (int i = 0; i < ctx; ++i) ids[i] = (int32_t)((i * 7919LL + 13) % m.cfg.n_vocab);
    const double flops = llama_forward_flops(m.cfg, ctx, true);

    std::printf("%-38s %10s %12s %10s %10s %8s %8s\n", "attention", "ms/window", "tokens/s", "TFLOP/s", "attn ms",
                "gate ms", "density");
    std::vector<std::pair<std::string, std::unique_ptr<sparse_method>>> runs;
    for (const char * spec : {"dense", "block_topk:rho=0.5,B=64", "block_topk:rho=0.2,B=64", "block_topk:rho=0.1,B=64",
                              "block_topk:rho=0.2,B=128"})
        runs.emplace_back(spec, std::string(spec) == "dense" ? nullptr : method_create(spec));
    // learned_gate with an untrained gate of the trained one's shape (d_g 32,
    // every layer): its cost does not depend on the weights' values
    std::vector<int> all_layers(m.cfg.n_layer);
    for (int il = 0; il < m.cfg.n_layer; ++il) all_layers[il] = il;
    auto gp = std::make_shared<gate_params>(gate_random(m.cfg.n_head, m.cfg.head_dim, all_layers, 64, 32, 1));
    runs.emplace_back("learned_gate:rho=0.2,B=64 (random W)",
                      std::make_unique<learned_gate_method>(gp, 0.2, 0.0, "learned_gate:rho=0.2,B=64"));
    for (const auto & [spec, meth] : runs) {
        g->score(ids, meth.get());   // warm-up
        std::vector<double> t, attn, gate;
        double dens = 1.0;
        for (int r = 0; r < reps; ++r) {
            g->score(ids, meth.get());
            const llama_gpu_stats & s = g->last_stats();
            t.push_back(s.forward_s);
            attn.push_back(s.attention_s);
            gate.push_back(s.gate_s);
            dens = s.block_density;
        }
        auto med = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v[v.size() / 2];
        };
        const double tm = med(t);
        std::printf("%-38s %10.2f %12.0f %10.1f %10.2f %8.3f %8.3f\n", spec.c_str(), tm * 1e3, ctx / tm,
                    flops / tm * 1e-12, med(attn) * 1e3, med(gate) * 1e3, dens);
    }
    // Prefill shape: only the last row's logits (forward with all_logits = false).
    {
        g->forward(ids, false);
        std::vector<double> t;
        for (int r = 0; r < reps; ++r) {
            g->forward(ids, false);
            t.push_back(g->last_stats().forward_s);
        }
        std::sort(t.begin(), t.end());
        const double tm = t[t.size() / 2];
        std::printf("%-38s %10.2f %12.0f %10.1f\n", "dense, last-row logits (prefill)", tm * 1e3, ctx / tm,
                    llama_forward_flops(m.cfg, ctx, false) / tm * 1e-12);
    }
    return 0;
}
