// Host side of the GPU head map (kernels/head_map_run.h).
//
// The selection goes to the GPU as its own arrays (a token-level selection's
// kept keys per row, or a block mask's kept blocks) and becomes keep bits per
// causal 64 x 64 tile there (hm_bits_*: L^2 / 16 bytes, 4 MB at L = 8192),
// which the map kernels read one word per tile row. Not core's tile lists
// (attention/tile_list.h, what the attention kernels read): building those
// walks every kept key on the host, about 20 ms for sinks_window at
// L = 8192 on one core, the whole budget of a map; the bits cost one upload
// of the key lists and a kernel. The pairs kept are the selection's
// (selection_row_keys), which the cuda test checks against the CPU map.
#include "head_map_run.h"

#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

#include "head_map_kernels.h"

namespace attnlab::cuda {

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void ck(cudaError_t e, const char * what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("GPU head map: ") + what + ": " + cudaGetErrorString(e));
}
void ck_launch(int e, const char * what) { ck((cudaError_t)e, what); }

class dev_floats final : public gpu_floats {
public:
    explicit dev_floats(size_t n) : n_(n) { ck(cudaMalloc(&p_, (n ? n : 1) * sizeof(float)), "cudaMalloc (upload)"); }
    ~dev_floats() override { cudaFree(p_); }
    const float * data() const override { return static_cast<const float *>(p_); }
    size_t size() const override { return n_; }
    void * p_ = nullptr;

private:
    size_t n_ = 0;
};

// A grow-only device allocation, reused from map to map.
struct dev_arena {
    void * p = nullptr;
    size_t cap = 0;
    void * get(size_t bytes, const char * what) {
        if (bytes > cap) {
            cudaFree(p);
            p = nullptr;
            cap = 0;
            ck(cudaMalloc(&p, bytes), what);
            cap = bytes;
        }
        return p;
    }
};

// A grow-only pinned host buffer: downloads at full PCIe speed, then one
// copy per level into its vector (no zero fill, several threads).
struct pinned_arena {
    void * p = nullptr;
    size_t cap = 0;
    void * get(size_t bytes) {
        if (bytes > cap) {
            cudaFreeHost(p);
            p = nullptr;
            cap = 0;
            ck(cudaMallocHost(&p, bytes), "cudaMallocHost (download buffer)");
            cap = bytes;
        }
        return p;
    }
};

struct hm_state {
    std::mutex mu;
    dev_arena levels, rows, inputs, bits, sel_ptr, sel_cols;
    pinned_arena host;
    cudaEvent_t ev0 = nullptr, ev1 = nullptr;
};
hm_state & state() {
    static hm_state s;   // lives as long as the program (the runtime frees it at exit)
    return s;
}

void check_args(const gpu_head_map_args & a) {
    const std::string who = "GPU head map: ";
    if (!a.q || !a.k) throw std::invalid_argument(who + "null Q or K rows");
    if (a.n_tokens <= 0 || a.head_dim <= 0)
        throw std::invalid_argument(who + "bad shape (n_tokens " + std::to_string(a.n_tokens) + ", head_dim " +
                                    std::to_string(a.head_dim) + ")");
    const int f = a.finest_factor;
    if (f < 1 || f > k_hm_tile || (f & (f - 1)))
        throw std::invalid_argument(who + "finest_factor " + std::to_string(f) +
                                    " is not a power of 2 in [1, 64] (L above 131072 is not supported)");
    if (a.q_stride < 0 || a.k_stride < 0 || (a.q_stride && a.q_stride < a.head_dim) ||
        (a.k_stride && a.k_stride < a.head_dim))
        throw std::invalid_argument(who + "row strides shorter than head_dim");
    if (a.sel && a.sel->n_tokens != a.n_tokens)
        throw std::invalid_argument(who + "selection has " + std::to_string(a.sel->n_tokens) + " tokens, the head " +
                                    std::to_string(a.n_tokens));
    if (a.sel) {
        const selection & s = *a.sel;
        const bool ok = s.token_level ? (int64_t)s.tok_ptr.size() == (int64_t)s.n_tokens + 1 &&
                                            s.tok_ptr.back() == (int64_t)s.tok_cols.size()
                                      : block_size_valid(s.block) && (int)s.blk_ptr.size() == s.n_blocks() + 1 &&
                                            s.blk_ptr.back() == (int32_t)s.blk_cols.size();
        if (!ok) throw std::invalid_argument(who + "selection arrays of the wrong size (selection_check)");
    }
}

// Level sides, finest first, as core's build_pyramid stops (down to <= 8).
std::vector<int> level_sides(int L, int f0) {
    std::vector<int> n{(L + f0 - 1) / f0};
    while (n.back() > 8) n.push_back((n.back() + 1) / 2);
    return n;
}

} // namespace

std::shared_ptr<gpu_floats> hm_upload(const float * host, size_t n) {
    auto d = std::make_shared<dev_floats>(n);
    if (n) ck(cudaMemcpy(d->p_, host, n * sizeof(float), cudaMemcpyHostToDevice), "upload");
    return d;
}

void hm_run(const gpu_head_map_args & a, gpu_head_map_out & out) {
    const double t0 = now_s();
    out.host_s = out.kernel_s = out.total_s = 0.0;
    check_args(a);
    const int L = a.n_tokens, d = a.head_dim, f0 = a.finest_factor;
    const bool sparse = a.sel != nullptr;
    const int n_maps = sparse ? 3 : 1;

    hm_state & st = state();
    std::lock_guard<std::mutex> lock(st.mu);
    if (!st.ev0) {
        ck(cudaEventCreate(&st.ev0), "cudaEventCreate");
        ck(cudaEventCreate(&st.ev1), "cudaEventCreate");
    }
    hm_args k;
    void * sel_ptr = nullptr, * sel_cols = nullptr;
    k.L = L;
    k.d = d;
    k.scale = a.scale;
    k.f0 = f0;
    k.q_stride = a.q_stride ? a.q_stride : d;
    k.k_stride = a.k_stride ? a.k_stride : d;
    if (a.on_device) {
        k.q = a.q;
        k.k = a.k;
    } else {   // host rows: gathered contiguous, then one upload
        std::vector<float> h((size_t)2 * L * d);
        for (int t = 0; t < L; ++t) {
            std::memcpy(&h[(size_t)t * d], a.q + (size_t)t * k.q_stride, d * sizeof(float));
            std::memcpy(&h[(size_t)(L + t) * d], a.k + (size_t)t * k.k_stride, d * sizeof(float));
        }
        float * dq = static_cast<float *>(st.inputs.get(h.size() * sizeof(float), "cudaMalloc (Q/K)"));
        ck(cudaMemcpy(dq, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice), "copy Q/K");
        k.q = dq;
        k.k = dq + (size_t)L * d;
        k.q_stride = k.k_stride = d;
    }
    if (sparse) {   // the selection's arrays up (host_s: this copy), keep bits built below
        const double h0 = now_s();
        const selection & sl = *a.sel;
        auto up = [](dev_arena & dst, const void * src, size_t bytes, const char * what) {
            void * p = dst.get(bytes ? bytes : 8, what);
            if (bytes) ck(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice), what);
            return p;
        };
        if (sl.token_level) {
            sel_ptr = up(st.sel_ptr, sl.tok_ptr.data(), sl.tok_ptr.size() * 8, "copy selection rows");
            sel_cols = up(st.sel_cols, sl.tok_cols.data(), sl.tok_cols.size() * 4, "copy selection keys");
        } else {
            sel_ptr = up(st.sel_ptr, sl.blk_ptr.data(), sl.blk_ptr.size() * 4, "copy selection blocks");
            sel_cols = up(st.sel_cols, sl.blk_cols.data(), sl.blk_cols.size() * 4, "copy selection block columns");
        }
        k.keep_bits = static_cast<unsigned long long *>(st.bits.get(hm_bits_words(L) * 8, "cudaMalloc (keep bits)"));
        out.host_s = now_s() - h0;
    }
    float * rows = static_cast<float *>(st.rows.get((size_t)4 * L * sizeof(float), "cudaMalloc (rows)"));
    k.row_max = rows;
    k.row_inv_sum = rows + L;
    k.row_entropy = rows + 2 * (size_t)L;
    k.row_recall = sparse ? rows + 3 * (size_t)L : nullptr;

    // Levels: for each side, n_maps (max, sum) pairs, one arena.
    const std::vector<int> sides = level_sides(L, f0);
    size_t cells = 0;
    for (int n : sides) cells += (size_t)n * n;
    float * lv = static_cast<float *>(st.levels.get(cells * 2 * n_maps * sizeof(float), "cudaMalloc (levels)"));
    std::vector<float *> lmax(sides.size() * n_maps), lsum(sides.size() * n_maps);
    {
        float * p = lv;
        for (size_t s = 0; s < sides.size(); ++s)
            for (int m = 0; m < n_maps; ++m) {
                lmax[s * n_maps + m] = p;
                p += (size_t)sides[s] * sides[s];
                lsum[s * n_maps + m] = p;
                p += (size_t)sides[s] * sides[s];
            }
    }
    k.dense_max = lmax[0];
    k.dense_sum = lsum[0];
    if (sparse) {
        k.sparse_max = lmax[1];
        k.sparse_sum = lsum[1];
        k.kept_max = lmax[2];
        k.kept_sum = lsum[2];
    }

    ck(cudaEventRecord(st.ev0), "cudaEventRecord");
    if (sparse) {
        unsigned long long * bits = const_cast<unsigned long long *>(k.keep_bits);
        ck(cudaMemsetAsync(bits, 0, hm_bits_words(L) * 8), "zero the keep bits");
        if (a.sel->token_level)
            ck_launch(hm_bits_from_rows(static_cast<const long long *>(sel_ptr), static_cast<const int32_t *>(sel_cols), L,
                                        bits, nullptr), "keep bits kernel (rows)");
        else
            ck_launch(hm_bits_from_blocks(static_cast<const int32_t *>(sel_ptr), static_cast<const int32_t *>(sel_cols), L,
                                          a.sel->block, bits, nullptr), "keep bits kernel (blocks)");
    }
    // The finest levels are contiguous: zero them (tiles above the diagonal stay zero).
    ck(cudaMemsetAsync(lv, 0, (size_t)sides[0] * sides[0] * 2 * n_maps * sizeof(float)), "zero the finest level");
    ck_launch(hm_rows(k, nullptr), "row statistics kernel");
    ck_launch(hm_pool(k, nullptr), "pooling kernel");
    for (size_t s = 1; s < sides.size(); ++s) {
        hm_level_maps lm{};
        for (int m = 0; m < n_maps; ++m) {
            lm.src_max[m] = lmax[(s - 1) * n_maps + m];
            lm.src_sum[m] = lsum[(s - 1) * n_maps + m];
            lm.dst_max[m] = lmax[s * n_maps + m];
            lm.dst_sum[m] = lsum[s * n_maps + m];
        }
        ck_launch(hm_downsample(lm, n_maps, sides[s - 1], nullptr), "downsampling kernel");
    }
    ck(cudaEventRecord(st.ev1), "cudaEventRecord");
    ck(cudaEventSynchronize(st.ev1), "head map kernels");
    float ms = 0.0f;
    ck(cudaEventElapsedTime(&ms, st.ev0, st.ev1), "cudaEventElapsedTime");
    out.kernel_s = ms * 1e-3;

    // Download: rows and every level in two copies through the pinned buffer
    // (the level arena is contiguous), then into the output vectors.
    const size_t n_rows = (sparse ? 4 : 3) * (size_t)L, n_lv = cells * 2 * n_maps;
    float * h = static_cast<float *>(st.host.get((n_rows + n_lv) * sizeof(float)));
    ck(cudaMemcpy(h, rows, n_rows * sizeof(float), cudaMemcpyDeviceToHost), "download rows");
    ck(cudaMemcpy(h + n_rows, lv, n_lv * sizeof(float), cudaMemcpyDeviceToHost), "download levels");
    out.row_max.assign(h, h + L);
    out.row_inv_sum.assign(h + L, h + 2 * (size_t)L);
    out.row_entropy.assign(h + 2 * (size_t)L, h + 3 * (size_t)L);
    if (sparse) out.row_recall.assign(h + 3 * (size_t)L, h + 4 * (size_t)L);
    else out.row_recall.clear();
    std::vector<lod_level> * maps[3] = {&out.dense, &out.sparse, &out.kept};
    for (int m = 0; m < 3; ++m) maps[m]->assign(m < n_maps ? sides.size() : 0, lod_level{});
    const float * hl = h + n_rows;
    for (size_t s = 0; s < sides.size(); ++s)
        for (int m = 0; m < n_maps; ++m) {
            lod_level & l = (*maps[m])[s];
            l.L = L;
            l.factor = f0 << s;
            l.n_rows = l.n_cols = sides[s];
        }
    // One item per array (max and sum apart): the finest level's arrays are
    // most of the bytes, so they go to different threads.
    const int n_items = (int)sides.size() * n_maps * 2;
#pragma omp parallel for schedule(dynamic, 1)
    for (int it = 0; it < n_items; ++it) {
        const int arr = it / 2;
        const size_t s = (size_t)arr / n_maps, n = (size_t)sides[s] * sides[s];
        lod_level & l = (*maps[arr % n_maps])[s];
        const float * src = hl + ((it % 2 ? lsum[arr] : lmax[arr]) - lv);
        (it % 2 ? l.sum : l.max).assign(src, src + n);   // allocate and copy, no zero fill
    }
    out.total_s = now_s() - t0;
}

} // namespace attnlab::cuda
