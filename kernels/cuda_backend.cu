// gpu_attention_backend (core/attention/gpu_backend.h) on the CUDA kernels.
#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "attention/gpu_backend.h"
#include "attention/tile_list.h"
#include "attnlab_cuda.h"
#include "cuda_status.h"
#include "cuda_backend.h"
#include "head_map_run.h"

namespace attnlab {
namespace {

void ck(cudaError_t e, const char * what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("cuda backend: ") + what + ": " + cudaGetErrorString(e));
}
void ck_api(int r) {
    if (r != 0) throw std::runtime_error(std::string("cuda backend: ") + attnlab_cuda_last_error());
}

// A device buffer of this file's error prefix (cuda_status.h).
struct dbuf : cuda::device_buffer {
    explicit dbuf(size_t n) : cuda::device_buffer(n, "cuda backend") {}
};

attnlab_attn_args to_c(const gpu_attention_args & a) {
    attnlab_attn_args c;
    std::memset(&c, 0, sizeof c);
    c.dtype = a.dtype == gpu_dtype::bf16 ? ATTNLAB_BF16 : ATTNLAB_FP16;
    c.q = a.q; c.k = a.k; c.v = a.v; c.o = a.o;
    c.B = a.batch; c.H = a.n_head; c.Hkv = a.n_head_kv; c.L = a.n_tokens; c.D = a.head_dim;
    c.causal = a.causal ? 1 : 0;
    c.scale = a.scale;
    for (int i = 0; i < 3; ++i) {
        c.q_strides[i] = a.q_strides[i]; c.k_strides[i] = a.k_strides[i];
        c.v_strides[i] = a.v_strides[i]; c.o_strides[i] = a.o_strides[i];
    }
    c.stream = a.stream;
    return c;
}

class cuda_backend final : public gpu_attention_backend {
public:
    bool available() const override { return attnlab_cuda_device_count() > 0; }
    std::string device_name() const override {
        cudaDeviceProp p{};
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) return "none";
        return p.name;
    }
    void dense(const gpu_attention_args & a) override {
        attnlab_attn_args c = to_c(a);
        ck_api(attnlab_attention_fwd(&c));
    }
    void block_sparse(const gpu_attention_args & a, const gpu_block_list & bl) override {
        attnlab_attn_args c = to_c(a);
        c.kv_num_blocks = bl.kv_num_blocks; c.kv_indices = bl.kv_indices; c.block_size = bl.block_size;
        c.mask_B = bl.mask_batch; c.mask_H = bl.mask_heads; c.max_kv_blocks = bl.max_kv_blocks;
        c.kv_mask_index = bl.kv_mask_index;
        c.token_masks = reinterpret_cast<const unsigned long long *>(bl.token_masks);
        ck_api(attnlab_attention_fwd(&c));
    }

    void dense_host(const attention_layer_io & io) override { run_host(io, nullptr); }

    void sparse_host(const attention_layer_io & io, const selection * sels) override {
        if (!sels) throw std::invalid_argument("cuda backend: sparse_host: null selections");
        for (int h = 0; h < io.n_head; ++h)
            if (sels[h].n_tokens != io.n_tokens || sels[h].causal != io.causal)
                throw std::invalid_argument("cuda backend: selection of head " + std::to_string(h) +
                                            " does not match the layer (n_tokens / causal)");
        run_host(io, sels);
    }

    std::shared_ptr<gpu_floats> upload(const float * host, size_t n) override { return cuda::hm_upload(host, n); }
    void head_map(const gpu_head_map_args & a, gpu_head_map_out & out) override { cuda::hm_run(a, out); }

private:
    // Layouts of attention_layer_io: [t][h][d]. Strides: batch 0, head D, token H*D.
    static void run_host(const attention_layer_io & io, const selection * sels) {
        const int L = io.n_tokens, H = io.n_head, Hk = io.n_head_kv, D = io.head_dim;
        if (L <= 0 || H <= 0 || Hk <= 0 || H % Hk) throw std::invalid_argument("cuda backend: bad attention shape");
        const size_t nq = (size_t)L * H * D, nk = (size_t)L * Hk * D;
        std::vector<__nv_bfloat16> hq(nq), hk(nk), hv(nk), ho(nq);
        for (size_t i = 0; i < nq; ++i) hq[i] = __float2bfloat16(io.q[i]);
        for (size_t i = 0; i < nk; ++i) { hk[i] = __float2bfloat16(io.k[i]); hv[i] = __float2bfloat16(io.v[i]); }
        dbuf dq(nq * 2), dk(nk * 2), dv(nk * 2), dout(nq * 2);
        ck(cudaMemcpy(dq.p, hq.data(), nq * 2, cudaMemcpyHostToDevice), "copy q");
        ck(cudaMemcpy(dk.p, hk.data(), nk * 2, cudaMemcpyHostToDevice), "copy k");
        ck(cudaMemcpy(dv.p, hv.data(), nk * 2, cudaMemcpyHostToDevice), "copy v");
        attnlab_attn_args c;
        std::memset(&c, 0, sizeof c);
        c.dtype = ATTNLAB_BF16;
        c.q = dq.p; c.k = dk.p; c.v = dv.p; c.o = dout.p;
        c.B = 1; c.H = H; c.Hkv = Hk; c.L = L; c.D = D; c.causal = io.causal; c.scale = io.scale;
        const long long qs[3] = {0, D, (long long)H * D}, ks[3] = {0, D, (long long)Hk * D};
        for (int i = 0; i < 3; ++i) { c.q_strides[i] = qs[i]; c.o_strides[i] = qs[i]; c.k_strides[i] = ks[i]; c.v_strides[i] = ks[i]; }
        c.q_strides[0] = c.o_strides[0] = (long long)L * H * D;   // any nonzero value with B = 1
        c.k_strides[0] = c.v_strides[0] = (long long)L * Hk * D;
        std::unique_ptr<dbuf> dnum, didx, dmask, dbits;
        if (sels) {   // block lists, token masks where blocks are kept in part
            const tile_list t = tile_list_build(sels, H);
            auto up = [](std::unique_ptr<dbuf> & d, const void * src, size_t bytes, const char * what) {
                d = std::make_unique<dbuf>(std::max<size_t>(bytes, 8));
                if (bytes) ck(cudaMemcpy(d->p, src, bytes, cudaMemcpyHostToDevice), what);
            };
            up(dnum, t.kv_num.data(), t.kv_num.size() * 4, "copy kv_num_blocks");
            up(didx, t.kv_idx.data(), t.kv_idx.size() * 4, "copy kv_indices");
            c.kv_num_blocks = static_cast<const int *>(dnum->p);
            c.kv_indices = static_cast<const int *>(didx->p);
            c.block_size = t.block; c.mask_B = 1; c.mask_H = H; c.max_kv_blocks = t.max_kv;
            if (!t.mask_index.empty()) {
                up(dmask, t.mask_index.data(), t.mask_index.size() * 4, "copy kv_mask_index");
                up(dbits, t.masks.data(), t.masks.size() * 8, "copy token masks");
                c.kv_mask_index = static_cast<const int *>(dmask->p);
                c.token_masks = static_cast<const unsigned long long *>(dbits->p);
            }
        }
        ck_api(attnlab_attention_fwd(&c));
        ck(cudaDeviceSynchronize(), "attention kernel");
        ck(cudaMemcpy(ho.data(), dout.p, nq * 2, cudaMemcpyDeviceToHost), "copy out");
        for (size_t i = 0; i < nq; ++i) io.out[i] = __bfloat162float(ho[i]);
    }
};

} // namespace

gpu_attention_backend * cuda_backend_instance() {
    static cuda_backend b;
    return &b;
}

} // namespace attnlab
