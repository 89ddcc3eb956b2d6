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
