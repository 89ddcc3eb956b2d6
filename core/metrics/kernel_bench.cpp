// CPU side of the kernel timing (kernel_bench.h).
#include "metrics/kernel_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>

#include <omp.h>

#include "attention/block_sparse.h"
#include "methods/method.h"

namespace attnlab {

namespace {
double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
} // namespace

attention_layer_io kernel_bench_inputs::io(float * out) const {
    attention_layer_io r;
    r.n_tokens = shape.L;
    r.n_head = r.n_head_kv = shape.n_head;
    r.head_dim = shape.head_dim;
    r.scale = 1.0f / std::sqrt(float(shape.head_dim));
    r.causal = true;
    r.q = q.data(); r.k = k.data(); r.v = v.data(); r.out = out;
    return r;
}

kernel_bench_inputs kernel_bench_make_inputs(const kernel_bench_shape & s) {
    if (s.L < 1 || s.n_head < 1 || s.head_dim < 1 || s.reps < 1)
        throw std::invalid_argument("kernel bench: L, heads, head dim and repeats must be >= 1");
    kernel_bench_inputs in;
    in.shape = s;
    std::mt19937 rng(s.seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const size_t n = size_t(s.L) * s.n_head * s.head_dim;
    for (auto * x : {&in.q, &in.k, &in.v}) {
        x->resize(n);
        for (auto & e : *x) e = nd(rng);
    }
    return in;
}

double kernel_bench_median(std::vector<double> ts) {
    std::sort(ts.begin(), ts.end());
    return ts.empty() ? 0.0 : ts[ts.size() / 2];
}

double kernel_bench_sparse_flops(const std::vector<selection> & sels, int head_dim) {
    double pairs = 0.0;
    for (const auto & s : sels) pairs += double(selection_block_pairs(s));
    return 4.0 * head_dim * pairs;
}

void kernel_bench_densities(const std::vector<selection> & sels, double & block_density, double & token_density) {
    block_density = token_density = 0.0;
    for (const auto & s : sels) {
        block_density += selection_block_density(s);
        token_density += double(selection_block_pairs(s)) / double(causal_pairs(s.n_tokens, s.causal));
    }
    if (!sels.empty()) {
        block_density /= double(sels.size());
        token_density /= double(sels.size());
    }
}

kernel_bench_result kernel_bench_cpu(const kernel_bench_inputs & in, bool sparse, job_progress * job) {
    const kernel_bench_shape & s = in.shape;
    std::vector<float> out(in.q.size());
    const attention_layer_io io = in.io(out.data());
    kernel_bench_result r;
    r.device = "CPU (" + std::to_string(omp_get_max_threads()) + " threads)";
    std::vector<double> ts;
    for (int i = 0; i < s.reps; ++i) {
        job_step(job, double(i) / (2 * s.reps), "CPU dense flash");
        const double t0 = now_s();
        attention_dense_flash(io);
        ts.push_back(now_s() - t0);
    }
    r.dense_s = kernel_bench_median(ts);
    r.dense_flops = attention_flops(s.L, s.head_dim, true) * s.n_head;
    r.has_dense = true;
    if (!sparse) return r;
    char spec[64];
    std::snprintf(spec, sizeof spec, "block_topk:rho=%.4f,B=%d", s.rho, s.block);
    auto m = method_create(spec);
    r.gate = m->spec() + " select() on the CPU";
    std::vector<selection> sels(s.n_head);
    const double t0 = now_s();
    for (int h = 0; h < s.n_head; ++h) sels[h] = m->select(head_inputs_of(io, h));
    r.gate_s = now_s() - t0;
    kernel_bench_densities(sels, r.block_density, r.token_density);
    r.sparse_flops = kernel_bench_sparse_flops(sels, s.head_dim);
    ts.clear();
    for (int i = 0; i < s.reps; ++i) {
        job_step(job, 0.5 + double(i) / (2 * s.reps), "CPU block-sparse");
        const double t1 = now_s();
        attention_block_sparse(io, sels.data());
        ts.push_back(now_s() - t1);
    }
    r.sparse_s = kernel_bench_median(ts);
    r.has_sparse = true;
    return r;
}

} // namespace attnlab
