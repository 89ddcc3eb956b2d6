// One head's attention map at L = 8192 (the app's Attention map view), GPU
// against CPU in one run on random Q/K (the cost does not depend on the
// values): dense only and with a selection (block_topk, and token-level
// sinks_window).
//
//   bench_head_map_gpu [L=8192] [reps=20] [cpu_reps=3]
//
// GPU: median of reps after 3 warm-up maps; "kernels" is CUDA-event time of
// all kernels, "call" the backend call with its download of the rows and
// pyramids, "map" head_map_compute_gpu as the app calls it (plus the host copy
// of the head's rows). The capture's Q/K are already on the GPU (uploaded
// once, as the app keeps them). "host" is the host step of a selection (its
// arrays copied to the GPU; the keep bits are built there, in "kernels").
// CPU: head_map_compute, median of cpu_reps, all cores (OpenMP). The selection
// itself (the method) is computed once, outside both timings.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attention/gpu_backend.h"
#include "attnlab_cuda.h"
#include "cuda_register.h"
#include "data/capture.h"
#include "methods/method.h"
#include "metrics/head_map.h"

using namespace attnlab;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

std::shared_ptr<const qkv_capture> random_capture(int L, int H, int Hk, int d) {
    auto c = std::make_shared<qkv_capture>();
    c->info.n_layer = 1;
    c->info.n_head = H;
    c->info.n_head_kv = Hk;
    c->info.head_dim = d;
    c->info.layers = {0};
    c->info.token_ids.resize(L);
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    layer_qkv l;
    l.q.resize(size_t(L) * H * d);
    l.k.resize(size_t(L) * Hk * d);
    l.v.resize(size_t(L) * Hk * d);
    for (auto * v : {&l.q, &l.k, &l.v})
        for (float & x : *v) x = nd(rng);
    c->layers.push_back(std::move(l));
    return c;
}

double max_rel(const std::vector<float> & a, const std::vector<float> & b) {
    double m = 0.0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
        m = std::max(m, std::abs(double(a[i]) - b[i]) / std::max(1e-30, std::abs(double(a[i]))));
    return m;
}

} // namespace

int main(int argc, char ** argv) {
    const int L = argc > 1 ? std::atoi(argv[1]) : 8192;
    const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 20;
    const int cpu_reps = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
    attnlab_cuda_register();
    gpu_attention_backend * be = gpu_backend_get();
    if (!be || attnlab_cuda_device_count() == 0) {
        std::printf("skipped: no CUDA device\n");
        return 0;
    }
    // The default model's head shape: 9 query heads, 3 KV heads of 64.
    auto cap = random_capture(L, 9, 3, 64);
    auto gcap = gpu_capture_upload(*be, cap);
    std::printf("head map bench: L=%d head_dim 64, %s; capture Q/K kept on the GPU: %.1f MB uploaded in %.1f ms\n", L,
                be->device_name().c_str(), gcap->bytes / 1e6, gcap->upload_seconds * 1e3);
    std::printf("%-26s %10s %10s %10s %10s %10s %10s %8s %12s\n", "map", "CPU ms", "GPU map", "GPU call", "kernels",
                "host", "speedup", "<=20ms", "max rel diff");
    const int head = 4;
    const attention_layer_io io = capture_layer_io(*cap, 0);
    for (const char * spec : {"", "block_topk:rho=0.2,B=64", "sinks_window:g=4,w=256"}) {
        std::shared_ptr<const selection> sel;
        if (*spec) sel = std::make_shared<const selection>(method_create(spec)->select(head_inputs_of(io, head)));
        std::vector<double> cpu, map, call, kern, host;
        std::shared_ptr<head_map> c, g;
        for (int r = 0; r < cpu_reps; ++r) {
            c = head_map_compute(cap, 0, head, sel, nullptr);
            cpu.push_back(c->seconds);
        }
        for (int r = 0; r < 3 + reps; ++r) {
            g = head_map_compute_gpu(*gcap, 0, head, sel);
            if (r < 3) continue;
            map.push_back(g->seconds);
            kern.push_back(g->kernel_seconds);
        }
        // The backend call alone (no host copy of the head's rows).
        gpu_head_map_args a;
        a.q = gcap->q[0]->data() + head * 64;
        a.k = gcap->k[0]->data() + io.kv_head_of(head) * 64;
        a.q_stride = 9 * 64;
        a.k_stride = 3 * 64;
        a.on_device = true;
        a.n_tokens = L;
        a.head_dim = 64;
        a.scale = io.scale;
        a.finest_factor = head_map_finest_factor(L);
        a.sel = sel.get();
        for (int r = 0; r < reps; ++r) {
            gpu_head_map_out o;
            be->head_map(a, o);
            call.push_back(o.total_s);
            host.push_back(o.host_s);
        }
        const double diff = std::max({max_rel(c->row_inv_sum, g->row_inv_sum), max_rel(c->dense[0].sum, g->dense[0].sum),
                                      sel ? max_rel(c->sparse[0].sum, g->sparse[0].sum) : 0.0});
        std::printf("%-26s %10.1f %10.2f %10.2f %10.3f %10.2f %9.0fx %8s %12.2e\n", *spec ? spec : "dense",
                    median(cpu) * 1e3, median(map) * 1e3, median(call) * 1e3, median(kern) * 1e3, median(host) * 1e3,
                    median(cpu) / median(map), median(map) <= 0.020 ? "yes" : "NO", diff);
    }
    return 0;
}
