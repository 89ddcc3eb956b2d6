// GPU half of the kernel timing (kernel_bench_gpu.h) on the C entry points of
// attnlab_cuda.h. Q/K/V go up once as contiguous [H][L][D] bf16 (the layout
// attnlab_block_topk reads); only the launches are timed.
#include "kernel_bench_gpu.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <cuda_runtime.h>

#include "attnlab_cuda.h"
#include "cuda_status.h"
#include "base/half.h"

namespace attnlab {

namespace {

void ck(cudaError_t e, const char * what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("kernel bench (GPU): ") + what + ": " + cudaGetErrorString(e));
}
void ck_api(int r, const char * what) {
    if (r != 0) throw std::runtime_error(std::string("kernel bench (GPU): ") + what + ": " + attnlab_cuda_last_error());
}

// A device buffer of this file's error prefix (cuda_status.h).
struct dbuf : cuda::device_buffer {
    explicit dbuf(size_t n) : cuda::device_buffer(n, "kernel bench (GPU)") {}
};

struct event_pair {
    cudaEvent_t a = nullptr, b = nullptr;
    event_pair() {
        ck(cudaEventCreate(&a), "cudaEventCreate");
        ck(cudaEventCreate(&b), "cudaEventCreate");
    }
    ~event_pair() {
        cudaEventDestroy(a);
        cudaEventDestroy(b);
    }
    double seconds() {
        ck(cudaEventSynchronize(b), "kernel");
        float ms = 0.0f;
        ck(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
        return double(ms) * 1e-3;
    }
};

// [t][h][d] fp32 -> [h][t][d] bf16, and back.
std::vector<uint16_t> to_hld_bf16(const std::vector<float> & x, int L, int H, int D) {
    std::vector<uint16_t> out(x.size());
    for (int t = 0; t < L; ++t)
        for (int h = 0; h < H; ++h)
            for (int d = 0; d < D; ++d) out[(size_t(h) * L + t) * D + d] = f32_to_bf16(x[(size_t(t) * H + h) * D + d]);
    return out;
}
std::vector<float> from_hld_bf16(const std::vector<uint16_t> & x, int L, int H, int D) {
    std::vector<float> out(x.size());
    for (int t = 0; t < L; ++t)
        for (int h = 0; h < H; ++h)
            for (int d = 0; d < D; ++d) out[(size_t(t) * H + h) * D + d] = bf16_to_f32(x[(size_t(h) * L + t) * D + d]);
    return out;
}

std::string device_name() {
    int dev = 0;
    cudaDeviceProp p{};
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) return "GPU";
    return p.name;
}

} // namespace

std::string kernel_bench_gpu_unsupported(const kernel_bench_shape & s) {
    if (attnlab_cuda_device_count() <= 0) return "no CUDA device";
    if (s.head_dim != 64 && s.head_dim != 128) return "the CUDA kernels take head dim 64 or 128";
    if (s.block != 64 && s.block != 128) return "the CUDA kernels take block 64 or 128";
    return "";
}

kernel_bench_result kernel_bench_gpu(const kernel_bench_inputs & in, bool sparse, job_progress * job,
                                     kernel_bench_gpu_outputs * outputs) {
    if (attnlab_cuda_device_count() <= 0) throw std::runtime_error("kernel bench (GPU): no CUDA device");
    const kernel_bench_shape & s = in.shape;
    kernel_bench_result r;
    r.device = device_name();
    r.note = kernel_bench_gpu_unsupported(s);
    if (!r.note.empty()) return r;
    const int L = s.L, H = s.n_head, D = s.head_dim, B = s.block;
    const float scale = 1.0f / std::sqrt(float(D));
    const size_t n = size_t(L) * H * D;
    dbuf dq(n * 2), dk(n * 2), dv(n * 2), dout(n * 2);
    ck(cudaMemcpy(dq.p, to_hld_bf16(in.q, L, H, D).data(), n * 2, cudaMemcpyHostToDevice), "copy q");
    ck(cudaMemcpy(dk.p, to_hld_bf16(in.k, L, H, D).data(), n * 2, cudaMemcpyHostToDevice), "copy k");
    ck(cudaMemcpy(dv.p, to_hld_bf16(in.v, L, H, D).data(), n * 2, cudaMemcpyHostToDevice), "copy v");
    event_pair ev;
    std::vector<uint16_t> host_out(n);

    // Dense: one warm-up launch, then reps timed launches.
    std::vector<double> ts;
    for (int i = -1; i < s.reps; ++i) {
        job_step(job, double(i + 1) / (2 * (s.reps + 1)), "GPU dense flash");
        ck(cudaEventRecord(ev.a), "cudaEventRecord");
        ck_api(attnlab_flash_fwd(ATTNLAB_BF16, dq.p, dk.p, dv.p, dout.p, 1, H, H, L, D, 1, scale, nullptr), "dense");
        ck(cudaEventRecord(ev.b), "cudaEventRecord");
        const double t = ev.seconds();
        if (i >= 0) ts.push_back(t);
    }
    r.dense_s = kernel_bench_median(ts);
    r.dense_flops = double(4.0) * D * double(causal_pairs(L, true)) * H;
    r.has_dense = true;
    if (outputs) {
        ck(cudaMemcpy(host_out.data(), dout.p, n * 2, cudaMemcpyDeviceToHost), "copy dense out");
        outputs->dense_out = from_hld_bf16(host_out, L, H, D);
    }
    if (!sparse) return r;

    // Gate: block lists on the device, timed like a kernel (median of reps).
    const int nb = (L + B - 1) / B;
    dbuf dnum(size_t(H) * nb * 4), didx(size_t(H) * nb * nb * 4);
    dbuf dws(attnlab_block_topk_workspace(1, H, H, L, D, B));
    ts.clear();
    for (int i = -1; i < s.reps; ++i) {
        ck(cudaEventRecord(ev.a), "cudaEventRecord");
        ck_api(attnlab_block_topk(ATTNLAB_BF16, dq.p, dk.p, 1, H, H, L, D, 1, scale, B, float(s.rho), 0,
                                  static_cast<int *>(dnum.p), static_cast<int *>(didx.p), dws.p, nullptr),
               "gate");
        ck(cudaEventRecord(ev.b), "cudaEventRecord");
        const double t = ev.seconds();
        if (i >= 0) ts.push_back(t);
    }
    r.gate_s = kernel_bench_median(ts);
    char gate[96];
    std::snprintf(gate, sizeof gate, "GPU gate (block_topk rho=%.4g, B=%d)", s.rho, B);
    r.gate = gate;
    std::vector<int32_t> num(size_t(H) * nb), idx(size_t(H) * nb * nb);
    ck(cudaMemcpy(num.data(), dnum.p, num.size() * 4, cudaMemcpyDeviceToHost), "copy kv_num_blocks");
    ck(cudaMemcpy(idx.data(), didx.p, idx.size() * 4, cudaMemcpyDeviceToHost), "copy kv_indices");
    std::vector<selection> sels(H);
    for (int h = 0; h < H; ++h) {
        std::vector<int32_t> ptr(nb + 1, 0), cols;
        for (int I = 0; I < nb; ++I) {
            const int c = num[size_t(h) * nb + I];
            for (int j = 0; j < c; ++j) cols.push_back(idx[(size_t(h) * nb + I) * nb + j]);
            ptr[I + 1] = int32_t(cols.size());
        }
        sels[h] = selection_from_blocks(L, B, true, std::move(ptr), std::move(cols));
    }
    kernel_bench_densities(sels, r.block_density, r.token_density);
    r.sparse_flops = kernel_bench_sparse_flops(sels, D);

    ts.clear();
    for (int i = -1; i < s.reps; ++i) {
        job_step(job, 0.5 + double(i + 1) / (2 * (s.reps + 1)), "GPU block-sparse");
        ck(cudaEventRecord(ev.a), "cudaEventRecord");
        ck_api(attnlab_block_sparse_fwd(ATTNLAB_BF16, dq.p, dk.p, dv.p, dout.p, 1, H, H, L, D, 1, scale,
                                        static_cast<const int *>(dnum.p), static_cast<const int *>(didx.p), B, 1, H,
                                        nb, nullptr),
               "block-sparse");
        ck(cudaEventRecord(ev.b), "cudaEventRecord");
        const double t = ev.seconds();
        if (i >= 0) ts.push_back(t);
    }
    r.sparse_s = kernel_bench_median(ts);
    r.has_sparse = true;
    if (outputs) {
        ck(cudaMemcpy(host_out.data(), dout.p, n * 2, cudaMemcpyDeviceToHost), "copy sparse out");
        outputs->sparse_out = from_hld_bf16(host_out, L, H, D);
        outputs->sels = std::move(sels);
    }
    return r;
}

} // namespace attnlab
