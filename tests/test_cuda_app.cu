// The app's GPU paths [cuda]: core's kernel timing (core/lab/kernel_bench.h)
// run on the GPU (kernels/kernel_bench_gpu.h), as the Kernels view does, on
// the same inputs as the CPU: dense output against the float64 reference,
// block-sparse output against the CPU block-sparse kernel replaying the GPU
// gate's block lists, the gate's per-row counts against rho, and the reported
// densities and FLOPs recounted here. Also the backend registration the app
// does at start. Without a GPU the binary prints "skipped: no CUDA device"
// and succeeds.
#define CATCH_CONFIG_RUNNER
#define EIGEN_NO_CUDA 1
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "attention/attention.h"
#include "attention/block_sparse.h"
#include "attention/gpu_backend.h"
#include "attention/selection.h"
#include "attnlab_cuda.h"
#include "cuda_register.h"
#include "kernel_bench_gpu.h"
#include "metrics/kernel_bench.h"

namespace {

using namespace attnlab;

// Inputs exactly representable in bf16, so the CPU sees what the GPU sees.
float round_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    std::memcpy(&f, &u, 4);
    return f;
}

double max_abs_diff(const std::vector<float> & a, const std::vector<double> & b) {
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
    return m;
}
double max_abs_diff(const std::vector<float> & a, const std::vector<float> & b) {
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}

} // namespace

TEST_CASE("app start: the registered backend is the GPU the kernel timing runs on", "[cuda]") {
    attnlab_cuda_register();
    gpu_attention_backend * be = gpu_backend_get();
    REQUIRE(be != nullptr);
    kernel_bench_shape s;
    s.L = 256; s.n_head = 1; s.head_dim = 64; s.reps = 1;
    const kernel_bench_result r = kernel_bench_gpu(kernel_bench_make_inputs(s), false);
    CHECK(r.device == be->device_name());
    CHECK(r.has_dense);
    CHECK(!r.has_sparse);
}

TEST_CASE("kernel timing on the GPU computes what the CPU computes", "[cuda]") {
    for (int D : {64, 128})
        for (int B : {64, 128}) {
            kernel_bench_shape s;
            s.L = 1000;   // not a multiple of the block: a partial last block
            s.n_head = 2; s.head_dim = D; s.block = B; s.rho = 0.3; s.reps = 2; s.seed = 7u + unsigned(D + B);
            kernel_bench_inputs in = kernel_bench_make_inputs(s);
            for (auto * x : {&in.q, &in.k, &in.v})
                for (float & e : *x) e = round_bf16(e);
            REQUIRE(kernel_bench_gpu_unsupported(s).empty());
            kernel_bench_gpu_outputs go;
            const kernel_bench_result r = kernel_bench_gpu(in, true, nullptr, &go);
            REQUIRE(r.has_dense);
            REQUIRE(r.has_sparse);
            CHECK(r.note.empty());
            CHECK(r.dense_s > 0);
            CHECK(r.sparse_s > 0);
            CHECK(r.gate_s > 0);

            // Dense against float64.
            std::vector<float> unused(in.q.size());
            const attention_layer_io io = in.io(unused.data());
            std::vector<double> ref(in.q.size());
            attention_dense_reference_f64(io, ref.data());
            const double e_dense = max_abs_diff(go.dense_out, ref);

            // The gate: valid, causal, diagonal kept, about rho of each row's blocks.
            const int nb = (s.L + B - 1) / B;
            REQUIRE(int(go.sels.size()) == s.n_head);
            int bad_rows = 0;
            int64_t kept = 0;
            double pairs = 0.0;
            for (const selection & sel : go.sels) {
                CHECK(selection_check(sel).empty());
                for (int I = 0; I < nb; ++I) {
                    const int b0 = sel.blk_ptr[I], b1 = sel.blk_ptr[I + 1], k = b1 - b0;
                    const bool diag = k > 0 && sel.blk_cols[b1 - 1] == I;
                    if (!diag || std::abs(k - s.rho * (I + 1)) > 1.0 + 1e-6) ++bad_rows;
                    for (int j = b0; j < b1; ++j) pairs += double(block_pairs(s.L, B, true, I, sel.blk_cols[j]));
                    kept += k;
                }
            }
            CHECK(bad_rows == 0);
            const double causal_blocks_all = double(s.n_head) * nb * (nb + 1) / 2.0;
            CHECK(r.block_density == Approx(double(kept) / causal_blocks_all).epsilon(1e-12));
            CHECK(r.sparse_flops == Approx(4.0 * D * pairs).epsilon(1e-12));
            CHECK(r.dense_flops == Approx(4.0 * D * s.n_head * (double(s.L) * (s.L + 1) / 2)).epsilon(1e-12));

            // Block-sparse against the CPU kernel on the same blocks.
            std::vector<float> cpu_sparse(in.q.size());
            const attention_layer_io io2 = in.io(cpu_sparse.data());
            attention_block_sparse(io2, go.sels.data());
            const double e_sparse = max_abs_diff(go.sparse_out, cpu_sparse);
            // ... and the sparse output really differs from the dense one.
            const double sparse_vs_dense = max_abs_diff(go.sparse_out, go.dense_out);
            std::printf("D=%d B=%d L=%d: dense err %.2e, sparse err %.2e, |sparse - dense| %.2e, block density %.3f; "
                        "dense %.3f ms, gate %.3f ms, sparse %.3f ms on %s\n",
                        D, B, s.L, e_dense, e_sparse, sparse_vs_dense, r.block_density, r.dense_s * 1e3,
                        r.gate_s * 1e3, r.sparse_s * 1e3, r.device.c_str());
            CHECK(e_dense < 2e-2);   // bf16 output, fp32 accumulation
            CHECK(e_sparse < 2e-2);
            CHECK(sparse_vs_dense > 0.1);
        }
}

TEST_CASE("kernel timing on the GPU declines shapes the kernels lack", "[cuda]") {
    kernel_bench_shape s;
    s.L = 256; s.n_head = 1; s.head_dim = 32; s.reps = 1;
    const kernel_bench_result r = kernel_bench_gpu(kernel_bench_make_inputs(s), true);
    CHECK(!r.has_dense);
    CHECK(!r.has_sparse);
    CHECK(r.note.find("head dim") != std::string::npos);
    s.head_dim = 64; s.block = 32;
    CHECK(kernel_bench_gpu_unsupported(s).find("block") != std::string::npos);
}

int main(int argc, char ** argv) {
    if (attnlab_cuda_device_count() == 0) {
        std::printf("skipped: no CUDA device\n");
        return 0;
    }
    return Catch::Session().run(argc, argv);
}
