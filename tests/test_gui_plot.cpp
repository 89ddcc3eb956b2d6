// The GUI's plotting math (app/gui/plot_math.h), checked without a display:
// colour maps, scales, ticks, axis transforms and LOD pooling against brute force.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "../app/gui/plot_math.h"

using namespace attnlab_gui;

TEST_CASE("colour maps hit their end points and clamp", "[gui]") {
    rgb8 a = colormap_eval(colormap::viridis, 0.0), b = colormap_eval(colormap::viridis, 1.0);
    CHECK(int(a.r) == 68);
    CHECK(int(a.b) == 84);
    CHECK(int(b.r) == 253);
    CHECK(int(b.g) == 231);
    rgb8 c = colormap_eval(colormap::viridis, 7.0);  // clamped
    CHECK(int(c.r) == int(b.r));
    rgb8 g = colormap_eval(colormap::grays, 0.5);
    CHECK(int(g.r) == 128);
    rgb8 w = colormap_eval(colormap::diverging, 0.5);  // zero of a difference is white
    CHECK(int(w.r) == 247);
    CHECK(int(w.g) == 247);
    rgb8 n = colormap_eval(colormap::magma, std::nan(""));
    CHECK(int(n.r) == 40);
    // Monotone luminance for the perceptual maps.
    for (colormap cm : {colormap::viridis, colormap::magma}) {
        double prev = -1;
        for (int i = 0; i <= 64; ++i) {
            rgb8 x = colormap_eval(cm, i / 64.0);
            double lum = 0.2126 * x.r + 0.7152 * x.g + 0.0722 * x.b;
            CHECK(lum >= prev - 1.0);
            prev = lum;
        }
    }
}

TEST_CASE("value scales map and invert", "[gui]") {
    value_scale lin{value_scale::linear, 0.0, 2.0};
    CHECK(lin.normalize(1.0) == Approx(0.5));
    CHECK(lin.value_at(0.25) == Approx(0.5));
    value_scale lg{value_scale::log10, 1e-6, 1.0};
    CHECK(lg.normalize(1e-3) == Approx(0.5));
    CHECK(lg.normalize(0.0) == 0.0);
    CHECK(lg.normalize(1e-9) == 0.0);
    CHECK(lg.value_at(0.5) == Approx(1e-3));
    value_scale sym{value_scale::symmetric, 0.0, 0.1};
    CHECK(sym.normalize(0.0) == Approx(0.5));
    CHECK(sym.normalize(-0.1) == Approx(0.0));
    CHECK(sym.value_at(1.0) == Approx(0.1));
    CHECK(std::isnan(lin.normalize(std::nan(""))));
}

TEST_CASE("ticks are nice and inside the range", "[gui]") {
    auto t = nice_ticks(0, 8192, 6);
    REQUIRE(!t.empty());
    CHECK(t.front() == 0.0);
    for (double v : t) {
        CHECK(v >= 0);
        CHECK(v <= 8192);
    }
    CHECK(t[1] - t[0] == Approx(2000.0));
    auto u = nice_ticks(0.13, 0.91, 4);
    REQUIRE(u.size() >= 3);
    CHECK(u[0] == Approx(0.2));
    CHECK(u[1] - u[0] == Approx(0.2));
    CHECK(nice_ticks(1, 1, 5).empty());
    auto l = log_ticks(1e-6, 1.0);
    REQUIRE(l.size() == 7);
    CHECK(l.front() == Approx(1e-6));
    CHECK(l.back() == Approx(1.0));
    CHECK(log_ticks(1e-30, 1.0, 8).size() <= 8);
    CHECK(format_tick(4096) == "4096");
    CHECK(format_tick(0.25) == "0.25");
    CHECK(format_tick(1e-6) == "1e-06");
    CHECK(format_si(34359738368.0, "B") == "34.4 GB");
    CHECK(format_si(512, "B") == "512 B");
}

TEST_CASE("axis transforms round-trip; zoom keeps the anchor; ranges are clamped", "[gui]") {
    axis_map m{0, 8192, 100, 900};
    CHECK(m.to_px(4096) == Approx(500));
    CHECK(m.to_val(m.to_px(1234.5)) == Approx(1234.5));
    axis_map flipped{0, 10, 500, 100};  // y grows downwards on screen
    CHECK(flipped.to_px(10) == Approx(100));

    double lo = 0, hi = 8192;
    zoom_range(lo, hi, 1000, 0.5, 4, 0, 8192);
    CHECK(hi - lo == Approx(4096));
    CHECK((1000 - lo) / (hi - lo) == Approx(1000.0 / 8192));
    zoom_range(lo, hi, 1000, 1e-9, 4, 0, 8192);  // never below one 4-token span
    CHECK(hi - lo == Approx(4));
    zoom_range(lo, hi, 1000, 1e9, 4, 0, 8192);   // never beyond the matrix
    CHECK(lo == 0);
    CHECK(hi == 8192);
    lo = 100, hi = 200;
    pan_range(lo, hi, -500, 0, 8192);
    CHECK(lo == 0);
    CHECK(hi == 100);
}

namespace {
// A causal attention-like matrix: rows sum to 1 over j <= i, zero above.
std::vector<float> random_causal(int L, uint32_t seed) {
    std::mt19937 rng(seed);
    std::exponential_distribution<float> ex(1.0f);
    std::vector<float> a(size_t(L) * L, 0.0f);
    for (int i = 0; i < L; ++i) {
        float s = 0;
        for (int j = 0; j <= i; ++j) s += (a[size_t(i) * L + j] = std::pow(ex(rng), 4.0f));
        for (int j = 0; j <= i; ++j) a[size_t(i) * L + j] /= s;
    }
    return a;
}

// Brute force: every output pixel pools the tokens of the cells it touches.
void brute_pool(const std::vector<float> & a, int L, int f, double r0, double r1, double c0, double c1, int h, int w,
                pool_mode mode, std::vector<float> & out) {
    out.assign(size_t(h) * w, std::nanf(""));
    int nc = (L + f - 1) / f;
    auto cells = [&](double t0, double t1, int n, int p, int & a0, int & a1) {
        double d = (t1 - t0) / n, lo = t0 + p * d, hi = t0 + (p + 1) * d;
        if (hi <= 0 || lo >= L) { a0 = a1 = 0; return; }
        a0 = int(std::floor(std::max(0.0, lo) / f));
        a1 = std::min(nc, std::max(a0 + 1, int(std::ceil(std::min(double(L), hi) / f))));
    };
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            int ra, rb, ca, cb;
            cells(r0, r1, h, y, ra, rb);
            cells(c0, c1, w, x, ca, cb);
            if (rb <= ra || cb <= ca) continue;
            double s = 0, n = 0;
            float m = -INFINITY;
            for (int i = ra * f; i < std::min(L, rb * f); ++i) {
                for (int j = ca * f; j < std::min(L, cb * f); ++j) {
                    float v = a[size_t(i) * L + j];
                    m = std::max(m, v);
                    s += v;
                    n += 1;
                }
            }
            out[size_t(y) * w + x] = mode == pool_mode::max ? m : float(s / n);
        }
    }
}
} // namespace

TEST_CASE("LOD pyramid: downsampling equals direct pooling", "[gui]") {
    for (int L : {64, 77, 130}) {
        auto a = random_causal(L, 7 + L);
        lod_level lv = lod_from_dense(a.data(), L, 1);
        for (int f = 2; f <= 32; f *= 2) {
            lv = lod_downsample2(lv);
            lod_level direct = lod_from_dense(a.data(), L, f);
            REQUIRE(lv.n_rows == direct.n_rows);
            REQUIRE(lv.factor == f);
            for (size_t c = 0; c < lv.sum.size(); ++c) {
                CHECK(lv.max[c] == direct.max[c]);
                CHECK(lv.sum[c] == Approx(direct.sum[c]).margin(1e-5));
            }
        }
    }
}

TEST_CASE("LOD pooling matches brute force at every level, zoom and mode", "[gui]") {
    const int L = 150;
    auto a = random_causal(L, 42);
    std::vector<lod_level> levels{lod_from_dense(a.data(), L, 1)};
    for (int f = 2; f <= 16; f *= 2) levels.push_back(lod_downsample2(levels.back()));
    struct view { double r0, r1, c0, c1; int h, w; };
    std::vector<view> views = {
        {0, L, 0, L, 37, 41},            // whole map, fewer pixels than tokens
        {0, L, 0, L, 300, 300},          // more pixels than tokens
        {10.5, 60.25, 3.3, 99.9, 23, 17},
        {140, 170, 140, 170, 10, 10},    // past the edge: NaN pixels
        {-20, 30, -20, 30, 13, 13},
    };
    for (const auto & lv : levels) {
        for (const auto & v : views) {
            for (pool_mode mode : {pool_mode::max, pool_mode::mean}) {
                std::vector<float> got(size_t(v.h) * v.w), want;
                lod_pool(lv, v.r0, v.r1, v.c0, v.c1, v.h, v.w, mode, got.data());
                brute_pool(a, L, lv.factor, v.r0, v.r1, v.c0, v.c1, v.h, v.w, mode, want);
                for (size_t p = 0; p < got.size(); ++p) {
                    if (std::isnan(want[p])) {
                        CHECK(std::isnan(got[p]));
                    } else {
                        CHECK(got[p] == Approx(want[p]).epsilon(1e-5).margin(1e-7));
                    }
                }
            }
        }
    }
}

TEST_CASE("LOD pooling of a window of exact values with an origin", "[gui]") {
    const int L = 100;
    auto a = random_causal(L, 3);
    // Window rows [40, 70) x cols [10, 50) at factor 1.
    lod_level w;
    w.L = L;
    w.factor = 1;
    w.row0 = 40;
    w.col0 = 10;
    w.n_rows = 30;
    w.n_cols = 40;
    for (int i = 40; i < 70; ++i) {
        for (int j = 10; j < 50; ++j) {
            w.max.push_back(a[size_t(i) * L + j]);
            w.sum.push_back(a[size_t(i) * L + j]);
        }
    }
    std::vector<float> got(6 * 8), want;
    lod_pool(w, 40, 70, 10, 50, 6, 8, pool_mode::mean, got.data());
    brute_pool(a, L, 1, 40, 70, 10, 50, 6, 8, pool_mode::mean, want);
    for (size_t p = 0; p < got.size(); ++p) CHECK(got[p] == Approx(want[p]).epsilon(1e-5));
}

TEST_CASE("level choice: coarsest level no coarser than a pixel", "[gui]") {
    std::vector<int> f = {4, 8, 16, 32};
    CHECK(lod_pick_level(f, 2.0) == -1);   // needs exact values
    CHECK(lod_pick_level(f, 4.0) == 0);
    CHECK(lod_pick_level(f, 10.0) == 1);
    CHECK(lod_pick_level(f, 1000.0) == 3);
}
