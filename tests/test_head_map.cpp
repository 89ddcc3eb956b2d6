// The head map (core/metrics/head_map.h, the app's attention map; the GPU's
// is held to this one in tests/test_cuda_head_map.cu) against a float64
// brute force: every weight of the L x L matrix, the sparse weights under the
// selection renormalised per row, and every pyramid level pooled directly
// from those matrices (lod_from_dense at the level's factor).
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attention/gpu_backend.h"
#include "attention/lod_level.h"
#include "data/capture.h"
#include "methods/method.h"
#include "metrics/head_map.h"

namespace {

using namespace attnlab;

std::shared_ptr<const qkv_capture> hm_capture(int L, int H, int Hk, int d, unsigned seed) {
    auto c = std::make_shared<qkv_capture>();
    c->info.n_layer = 1;
    c->info.n_head = H;
    c->info.n_head_kv = Hk;
    c->info.head_dim = d;
    c->info.layers = {0};
    c->info.token_ids.assign(L, 0);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.2f);
    layer_qkv l;
    l.q.resize(size_t(L) * H * d);
    l.k.resize(size_t(L) * Hk * d);
    l.v.resize(size_t(L) * Hk * d);
    for (auto * v : {&l.q, &l.k, &l.v})
        for (float & x : *v) x = nd(rng);
    c->layers.push_back(std::move(l));
    return c;
}

// |a - b| <= rel * |b| + abs over two levels of one shape.
void check_level(const lod_level & got, const lod_level & want, double rel, double abs) {
    REQUIRE(got.factor == want.factor);
    REQUIRE(got.n_rows == want.n_rows);
    REQUIRE(got.n_cols == want.n_cols);
    int bad = 0;
    for (size_t c = 0; c < want.sum.size(); ++c) {
        if (std::abs(got.sum[c] - want.sum[c]) > rel * std::abs(want.sum[c]) + abs) ++bad;
        if (std::abs(got.max[c] - want.max[c]) > rel * std::abs(want.max[c]) + abs) ++bad;
    }
    CHECK(bad == 0);
}

} // namespace

TEST_CASE("head map: rows, dense, sparse and kept pyramids equal a float64 brute force", "[head_map]") {
    struct shape {
        int L, d;
    };
    // 300: finest factor 1; 2100: factor 2, neither a multiple of the 64-row tile.
    for (const shape sh : {shape{300, 16}, shape{2100, 64}}) {
        auto cap = hm_capture(sh.L, 2, 1, sh.d, 11u + unsigned(sh.L));
        const attention_layer_io io = capture_layer_io(*cap, 0);
        for (const char * spec : {"", "block_topk:rho=0.3,B=32", "sinks_window:g=4,w=50"}) {
            INFO("L " << sh.L << " method '" << spec << "'");
            const int h = 1, L = sh.L, d = sh.d;
            std::shared_ptr<const selection> sel;
            if (*spec) sel = std::make_shared<const selection>(method_create(spec)->select(head_inputs_of(io, h)));
            auto m = head_map_compute(cap, 0, h, sel, nullptr);
            REQUIRE(m->L == L);
            CHECK(m->device == "CPU");
            CHECK(m->finest_factor() == head_map_finest_factor(L));
            // float64 weights, sparse weights and kept flags.
            std::vector<float> W(size_t(L) * L, 0.0f), S(W.size(), 0.0f), K(W.size(), 0.0f);
            std::vector<int32_t> keys;
            int bad_rows = 0;
            for (int i = 0; i < L; ++i) {
                std::vector<double> s(i + 1);
                double mx = -INFINITY, z = 0.0;
                for (int j = 0; j <= i; ++j) {
                    double acc = 0.0;
                    for (int t = 0; t < d; ++t)
                        acc += double(io.q[int64_t(i) * 2 * d + h * d + t]) * io.scale * double(io.k[int64_t(j) * d + t]);
                    s[j] = acc;
                    mx = std::max(mx, acc);
                }
                for (int j = 0; j <= i; ++j) z += std::exp(s[j] - mx);
                for (int j = 0; j <= i; ++j) W[size_t(i) * L + j] = float(std::exp(s[j] - mx) / z);
                if (std::abs(m->row_max[i] - mx) > 1e-5 * std::max(1.0, std::abs(mx))) ++bad_rows;
                if (std::abs(m->row_inv_sum[i] - 1.0 / z) > 1e-5 / z) ++bad_rows;
                if (!sel) continue;
                selection_row_keys(*sel, i, keys);
                double rec = 0.0;
                for (int32_t j : keys) rec += std::exp(s[j] - mx) / z;
                if (std::abs(m->row_recall[i] - rec) > 1e-5) ++bad_rows;
                for (int32_t j : keys) {
                    K[size_t(i) * L + j] = 1.0f;
                    S[size_t(i) * L + j] = float(std::exp(s[j] - mx) / z / rec);
                }
            }
            CHECK(bad_rows == 0);
            REQUIRE(m->dense.size() >= 2);
            for (size_t s = 0; s < m->dense.size(); ++s) {
                const int f = m->dense[s].factor;
                check_level(m->dense[s], lod_from_dense(W.data(), L, f), 1e-4, 1e-7);
                if (!sel) continue;
                check_level(m->sparse[s], lod_from_dense(S.data(), L, f), 1e-4, 1e-7);
                check_level(m->kept[s], lod_from_dense(K.data(), L, f), 0.0, 0.0);
            }
            if (!sel) CHECK(m->sparse.empty());
        }
    }
}

namespace {

// A stand-in GPU backend: device copies are host copies; head_map records
// what it was asked and returns marked rows, or throws.
struct fake_floats : gpu_floats {
    std::vector<float> v;
    const float * data() const override { return v.data(); }
    size_t size() const override { return v.size(); }
};
struct fake_backend : gpu_attention_backend {
    gpu_head_map_args seen;
    std::vector<const float *> uploads;
    bool fail = false;
    bool available() const override { return true; }
    std::string device_name() const override { return "fake GPU"; }
    void dense(const gpu_attention_args &) override {}
    void block_sparse(const gpu_attention_args &, const gpu_block_list &) override {}
    void dense_host(const attention_layer_io &) override {}
    void sparse_host(const attention_layer_io &, const selection *) override {}
    std::shared_ptr<gpu_floats> upload(const float * host, size_t n) override {
        auto f = std::make_shared<fake_floats>();
        f->v.assign(host, host + n);
        uploads.push_back(f->v.data());
        return f;
    }
    void head_map(const gpu_head_map_args & a, gpu_head_map_out & o) override {
        if (fail) throw std::runtime_error("GPU head map: out of memory (fake)");
        seen = a;
        o.row_max.assign(a.n_tokens, 1.0f);
        o.row_inv_sum.assign(a.n_tokens, 0.5f);
        o.row_entropy.assign(a.n_tokens, 2.0f);
        o.dense.push_back(lod_level{});
        o.kernel_s = 0.25;
    }
};

} // namespace

TEST_CASE("head map on a GPU backend: the kept capture's rows of the head, its error passed on", "[head_map]") {
    auto cap = hm_capture(130, 4, 2, 16, 3);
    auto cap2 = std::make_shared<qkv_capture>(*cap);   // two captured layers
    cap2->info.layers = {0, 5};
    cap2->layers.push_back(cap->layers[0]);
    cap2->layers[1].layer = 5;
    for (float & x : cap2->layers[1].k) x *= 2.0f;
    fake_backend be;
    auto g = gpu_capture_upload(be, cap2);
    REQUIRE(g->q.size() == 2);
    CHECK(g->bytes == 2 * (cap->layers[0].q.size() + cap->layers[0].k.size()) * sizeof(float));
    auto sel = std::make_shared<const selection>(selection_dense(130, 64, true));
    auto m = head_map_compute_gpu(*g, 1, 3, sel);
    // layer 1's device copies, head 3's offset, its KV head (3 / 2 = 1), token strides of the layer
    CHECK(be.seen.q == g->q[1]->data() + 3 * 16);
    CHECK(be.seen.k == g->k[1]->data() + 1 * 16);
    CHECK(be.seen.q_stride == 4 * 16);
    CHECK(be.seen.k_stride == 2 * 16);
    CHECK(be.seen.on_device);
    CHECK(be.seen.n_tokens == 130);
    CHECK(be.seen.head_dim == 16);
    CHECK(be.seen.scale == Approx(0.25));
    CHECK(be.seen.finest_factor == head_map_finest_factor(130));
    CHECK(be.seen.sel == sel.get());
    CHECK(m->device == "fake GPU");
    CHECK(m->kernel_seconds == 0.25);
    CHECK(m->layer == 5);
    CHECK(m->max_weight == 0.5f);
    CHECK(m->mean_entropy == Approx(2.0));
    // the host copy of the head's rows, as the CPU map keeps them
    auto c = head_map_compute(cap2, 1, 3, nullptr, nullptr);
    CHECK(m->q == c->q);
    CHECK(m->k == c->k);
    be.fail = true;
    CHECK_THROWS_WITH(head_map_compute_gpu(*g, 0, 0, nullptr), Catch::Contains("out of memory (fake)"));
    CHECK_THROWS_AS(head_map_compute_gpu(*g, 2, 0, nullptr), std::invalid_argument);
    CHECK_THROWS_AS(head_map_compute_gpu(*g, 0, 4, nullptr), std::invalid_argument);
}
