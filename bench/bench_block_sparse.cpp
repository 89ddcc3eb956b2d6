// Block-sparse CPU kernel against the dense flash kernel, measured side by
// side in one run (ratios carry across machines, absolute times do not).
//
//   bench_block_sparse [L=8192] [n_head=9] [n_head_kv=3] [B=64] [reps=3]
//
// One causal layer, head dim 64, random Q/K/V. Masks come from block_topk at
// rho = 1, 0.4, 0.2, 0.1 (on random data its pooled scores are uninformative,
// so this is close to random blocks plus the forced diagonal and block 0).
// A last row runs a token-level mask (window:w=1024, masked inside the
// tiles) to show that path's cost beside the block masks.
// Each repetition runs dense and every mask back to back; the best time
// of each is reported (the machine may be shared: the minimum is the least
// disturbed run), its ratio to the best dense time ("ratio"), and the median
// over repetitions of the ratio to the dense run of the same repetition
// ("med_rat"). GFLOP/s counts 4·d per evaluated pair of the computed
// tiles (causally masked pairs of diagonal tiles included, as the kernel
// computes them).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <omp.h>

#include "attention/attention.h"
#include "attention/block_sparse.h"
#include "methods/method.h"

using namespace attnlab;

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace

int main(int argc, char ** argv) {
    const int L = argc > 1 ? std::atoi(argv[1]) : 8192;
    const int n_head = argc > 2 ? std::atoi(argv[2]) : 9;
    const int n_head_kv = argc > 3 ? std::atoi(argv[3]) : 3;
    const int B = argc > 4 ? std::atoi(argv[4]) : 64;
    const int reps = argc > 5 ? std::atoi(argv[5]) : 3;
    const int hd = 64;
    if (L <= 0 || n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv || !block_size_valid(B) || reps <= 0) {
        std::fprintf(stderr, "usage: bench_block_sparse [L] [n_head] [n_head_kv] [B in 16,32,64,128] [reps]\n");
        return 1;
    }

    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q((size_t) L * n_head * hd), k((size_t) L * n_head_kv * hd), v(k.size()), out(q.size());
    for (auto & x : q) x = nd(rng);
    for (auto & x : k) x = nd(rng);
    for (auto & x : v) x = nd(rng);
    attention_layer_io io;
    io.n_tokens = L;
    io.n_head = n_head;
    io.n_head_kv = n_head_kv;
    io.head_dim = hd;
    io.scale = 1.0f / std::sqrt((float) hd);
    io.causal = true;
    io.q = q.data();
    io.k = k.data();
    io.v = v.data();
    io.out = out.data();

    const std::string b = ",B=" + std::to_string(B);
    const std::vector<std::string> specs = {"block_topk:rho=1" + b, "block_topk:rho=0.4" + b, "block_topk:rho=0.2" + b,
                                            "block_topk:rho=0.1" + b, "window:w=1024" + b};
    const int n_cfg = (int) specs.size();
    std::vector<std::vector<selection>> sels(n_cfg);
    std::vector<double> pred_s(n_cfg, 1e30), block_density(n_cfg, 0.0), token_density(n_cfg, 0.0);
    for (int c = 0; c < n_cfg; ++c) {
        auto m = method_create(specs[c]);
        for (int r = 0; r < std::max(1, reps); ++r) {
            const double t0 = now_s();
            std::vector<selection> s(n_head);
#pragma omp parallel for schedule(dynamic, 1)
            for (int h = 0; h < n_head; ++h) s[h] = m->select(head_inputs_of(io, h));
            pred_s[c] = std::min(pred_s[c], now_s() - t0);
            sels[c] = std::move(s);
        }
        for (const auto & s : sels[c]) {
            block_density[c] += selection_block_density(s) / n_head;
            token_density[c] += selection_token_density(s) / n_head;
        }
    }

    // Warm-up, then interleaved repetitions.
    attention_dense_flash(io);
    double dense_s = 1e30;
    std::vector<double> sparse_s(n_cfg, 1e30);
    std::vector<block_sparse_stats> stats(n_cfg);
    // Per repetition also the ratio to the dense run just before it: on a
    // shared machine the median of these adjacent ratios is steadier than the
    // ratio of two minima taken at different moments.
    std::vector<std::vector<double>> rep_ratio(n_cfg);
    for (int r = 0; r < reps; ++r) {
        double t0 = now_s();
        attention_dense_flash(io);
        const double d = now_s() - t0;
        dense_s = std::min(dense_s, d);
        for (int c = 0; c < n_cfg; ++c) {
            t0 = now_s();
            stats[c] = attention_block_sparse(io, sels[c].data());
            const double t = now_s() - t0;
            sparse_s[c] = std::min(sparse_s[c], t);
            rep_ratio[c].push_back(t / d);
        }
    }
    const auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
    };

    const double dense_flops = n_head * attention_flops(L, hd, true);
    std::printf("bench_block_sparse: L=%d heads=%d/%d d=%d B=%d causal, %d threads, best of %d\n", L, n_head, n_head_kv,
                hd, B, omp_get_max_threads(), reps);
    std::printf("%-30s %9s %7s %7s %8s %8s %8s %10s\n", "kernel", "time_ms", "ratio", "med_rat", "GFLOP/s", "blk_dens",
                "tok_dens", "predict_ms");
    std::printf("%-30s %9.2f %7.3f %7.3f %8.1f %8.3f %8.3f %10s\n", "dense_flash", dense_s * 1e3, 1.0, 1.0,
                dense_flops / dense_s * 1e-9, 1.0, 1.0, "-");
    for (int c = 0; c < n_cfg; ++c) {
        std::printf("%-30s %9.2f %7.3f %7.3f %8.1f %8.3f %8.3f %10.2f\n", specs[c].c_str(), sparse_s[c] * 1e3,
                    sparse_s[c] / dense_s, median(rep_ratio[c]), stats[c].flops() / sparse_s[c] * 1e-9, block_density[c],
                    token_density[c], pred_s[c] * 1e3);
    }
    return 0;
}
