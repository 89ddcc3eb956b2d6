// core/lab/kernel_bench.h on the CPU (the Kernels view's CPU half; the GPU
// half is tests/test_cuda_app.cu): FLOP and density accounting against closed
// forms, inputs reproducible from the seed, bad shapes refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "metrics/kernel_bench.h"

using namespace attnlab;

TEST_CASE("kernel bench: CPU accounting against closed forms", "[attention]") {
    kernel_bench_shape s;
    s.L = 300; s.n_head = 2; s.head_dim = 32; s.block = 64; s.reps = 1;
    const double causal = double(s.L) * (s.L + 1) / 2;   // pairs j <= i
    const int nb = (s.L + s.block - 1) / s.block;

    s.rho = 1.0;   // every causal block kept: sparse pays exactly what dense pays
    kernel_bench_result all = kernel_bench_cpu(kernel_bench_make_inputs(s), true);
    REQUIRE(all.has_dense);
    REQUIRE(all.has_sparse);
    CHECK(all.dense_flops == Approx(4.0 * s.head_dim * s.n_head * causal).epsilon(1e-12));
    CHECK(all.sparse_flops == Approx(all.dense_flops).epsilon(1e-12));
    CHECK(all.block_density == Approx(1.0).epsilon(1e-12));
    CHECK(all.token_density == Approx(1.0).epsilon(1e-12));
    CHECK(all.dense_s > 0);
    CHECK(all.sparse_s > 0);
    CHECK(all.device.rfind("CPU", 0) == 0);
    CHECK(all.gate.find("block_topk") != std::string::npos);

    s.rho = 0.3;   // at least rho of each row's blocks, and fewer than all
    kernel_bench_result part = kernel_bench_cpu(kernel_bench_make_inputs(s), true);
    CHECK(part.block_density >= 0.3 - 1e-9);
    CHECK(part.block_density < 1.0 - 1.0 / (nb * (nb + 1) / 2.0) + 1e-9);
    CHECK(part.sparse_flops == Approx(part.token_density * part.dense_flops).epsilon(1e-9));
    CHECK(part.sparse_flops < part.dense_flops);

    kernel_bench_result dense_only = kernel_bench_cpu(kernel_bench_make_inputs(s), false);
    CHECK(dense_only.has_dense);
    CHECK(!dense_only.has_sparse);
    CHECK(dense_only.sparse_flops == 0.0);
}

TEST_CASE("kernel bench: inputs come from the seed; bad shapes refused", "[attention]") {
    kernel_bench_shape s;
    s.L = 64; s.n_head = 2; s.head_dim = 16;
    const kernel_bench_inputs a = kernel_bench_make_inputs(s), b = kernel_bench_make_inputs(s);
    CHECK(a.q == b.q);
    CHECK(a.v == b.v);
    CHECK(a.q.size() == size_t(64 * 2 * 16));
    s.seed++;
    CHECK(kernel_bench_make_inputs(s).q != a.q);
    std::vector<float> out(a.q.size());
    const attention_layer_io io = a.io(out.data());
    CHECK(io.scale == Approx(0.25f));
    CHECK(io.causal);
    s.L = 0;
    CHECK_THROWS_AS(kernel_bench_make_inputs(s), std::invalid_argument);
    CHECK(kernel_bench_median({3.0, 1.0, 2.0}) == 2.0);
}
