// Dense flash attention against the float64 reference.
#include <catch2/catch.hpp>

#include "test_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#include "attention/attention.h"

using namespace attnlab;

namespace {

using attnlab_test::attn_case;

// Random Q/K/V; `sharp` scales Q so softmax rows are peaked and the running
// max changes often across key tiles (exercises the rescaling path).
attn_case make_case(int L, int n_head, int n_head_kv, int hd, bool causal, float sharp, uint32_t seed) {
    return attnlab_test::attn_case_random(L, n_head, n_head_kv, hd, causal, seed, sharp);
}

// max |flash - ref| / max |ref|
double rel_error(const attn_case & c) {
    std::vector<double> ref(c.out.size());
    attention_dense_reference_f64(c.io, ref.data());
    double max_ref = 0.0, max_diff = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
        max_ref = std::max(max_ref, std::abs(ref[i]));
        const double d = std::abs((double) c.out[i] - ref[i]);
        max_diff = std::isfinite(d) ? std::max(max_diff, d) : INFINITY;
    }
    return max_diff / max_ref;
}

} // namespace

TEST_CASE("dense flash matches the float64 reference", "[attention]") {
    struct heads { int n_head, n_head_kv; };
    const heads head_cfgs[] = {{9, 3}, {4, 4}};
    const int lengths[] = {1, 2, 63, 64, 65, 127, 128, 129, 257};
    const int dims[] = {64, 128};
    double worst = 0.0;
    uint32_t seed = 1;
    for (const auto & hc : head_cfgs)
        for (int hd : dims)
            for (int L : lengths)
                for (int causal = 0; causal < 2; ++causal)
                    for (float sharp : {1.0f, 4.0f}) {
                        auto c = make_case(L, hc.n_head, hc.n_head_kv, hd, causal != 0, sharp, seed++);
                        attention_dense_flash(c.io);
                        const double e = rel_error(c);
                        INFO("L=" << L << " hd=" << hd << " heads=" << hc.n_head << "/" << hc.n_head_kv
                                  << " causal=" << causal << " sharp=" << sharp << " rel_err=" << e);
                        CHECK(e <= 1e-5);
                        worst = std::max(worst, e);
                    }
    WARN("dense flash worst relative error (L<=257): " << worst);
}

TEST_CASE("dense flash: a model's own sliding window and softcap match the float64 reference", "[attention]") {
    uint32_t seed = 900;
    double worst = 0.0;
    for (int L : {1, 47, 129, 300})
        for (int window : {1, 5, 48, 128, 200})
            for (float cap : {0.0f, 2.0f}) {
                auto c = make_case(L, 4, 2, 64, true, 4.0f, seed++);
                c.io.window = window;
                c.io.softcap = cap;
                attention_dense_flash(c.io);
                const double e = rel_error(c);
                INFO("L=" << L << " window=" << window << " softcap=" << cap << " rel_err=" << e);
                CHECK(e <= 1e-5);
                worst = std::max(worst, e);
            }
    WARN("dense flash with window/softcap, worst relative error: " << worst);
    // Window 1: each query sees only its own key, so the output is its value row.
    auto c = make_case(200, 4, 2, 64, true, 1.0f, 77);
    c.io.window = 1;
    attention_dense_flash(c.io);
    double d = 0.0;
    for (int t = 0; t < 200; ++t)
        for (int h = 0; h < 4; ++h)
            for (int i = 0; i < 64; ++i)
                d = std::max(d, (double) std::abs(c.out[((size_t) t * 4 + h) * 64 + i] -
                                                  c.v[((size_t) t * 2 + c.io.kv_head_of(h)) * 64 + i]));
    CHECK(d <= 1e-6);
}

TEST_CASE("dense flash: long sequence and other head dims", "[attention]") {
    struct cfg { int L, n_head, n_head_kv, hd; bool causal; };
    const cfg cfgs[] = {
        {1000, 9, 3, 64, true}, {1000, 4, 4, 128, false}, {1000, 4, 2, 128, true},
        {300, 6, 2, 80, true}, {97, 2, 1, 32, false}, {200, 3, 3, 96, true}, {33, 1, 1, 1, true},
    };
    double worst = 0.0;
    uint32_t seed = 100;
    for (const auto & c0 : cfgs) {
        auto c = make_case(c0.L, c0.n_head, c0.n_head_kv, c0.hd, c0.causal, 2.0f, seed++);
        attention_dense_flash(c.io);
        const double e = rel_error(c);
        INFO("L=" << c0.L << " hd=" << c0.hd << " heads=" << c0.n_head << "/" << c0.n_head_kv
                  << " causal=" << c0.causal << " rel_err=" << e);
        CHECK(e <= 1e-5);
        worst = std::max(worst, e);
    }
    WARN("dense flash worst relative error (long/odd dims): " << worst);
}

TEST_CASE("dense flash: causal row 0 copies v[0], L=1", "[attention]") {
    auto c = make_case(1, 2, 1, 64, true, 1.0f, 7);
    attention_dense_flash(c.io);
    for (int h = 0; h < 2; ++h)
        for (int d = 0; d < 64; ++d) CHECK(c.out[h * 64 + d] == Approx(c.v[d]).epsilon(1e-6));
}

// The L x L matrix at L = 8192 would be 256 MiB per head in float32; the
// kernel must run with tile-sized scratch only. Spot-check some rows in double.
TEST_CASE("dense flash: L=8192, one head, memory-light", "[attention]") {
    const int L = 8192, hd = 64;
    auto c = make_case(L, 1, 1, hd, true, 1.0f, 42);
    const auto t0 = std::chrono::steady_clock::now();
    attention_dense_flash(c.io);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    WARN("L=8192 causal, 1 head, hd 64: " << sec << " s");
    for (int i : {0, 1, 64, 4095, 8000, L - 1}) {
        std::vector<double> s(i + 1), o(hd, 0.0);
        double mx = -INFINITY, sum = 0.0, max_ref = 0.0, max_diff = 0.0;
        for (int j = 0; j <= i; ++j) {
            double dot = 0.0;
            for (int d = 0; d < hd; ++d) dot += (double) c.q[(size_t) i * hd + d] * c.k[(size_t) j * hd + d];
            s[j] = dot * c.io.scale;
            mx = std::max(mx, s[j]);
        }
        for (int j = 0; j <= i; ++j) { s[j] = std::exp(s[j] - mx); sum += s[j]; }
        for (int j = 0; j <= i; ++j)
            for (int d = 0; d < hd; ++d) o[d] += s[j] / sum * c.v[(size_t) j * hd + d];
        for (int d = 0; d < hd; ++d) {
            max_ref = std::max(max_ref, std::abs(o[d]));
            max_diff = std::max(max_diff, std::abs(o[d] - c.out[(size_t) i * hd + d]));
        }
        INFO("row " << i);
        CHECK(max_diff / max_ref <= 1e-4);  // per row: a single row's max is smaller
    }
    for (float x : c.out) REQUIRE(std::isfinite(x));
}

TEST_CASE("dense flash: bad head configuration throws", "[attention]") {
    auto c = make_case(4, 3, 2, 8, true, 1.0f, 3);
    CHECK_THROWS(attention_dense_flash(c.io));
}
