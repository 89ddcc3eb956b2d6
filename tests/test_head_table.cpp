// Head entropy and the per-head table of a capture (core/metrics/head_table.h)
// against a float64 brute force: softmax rows formed directly from Q and K.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "base/job.h"
#include "data/capture.h"
#include "methods/method.h"
#include "metrics/head_metrics.h"
#include "metrics/head_table.h"

using namespace attnlab;

namespace {

// A capture of random Q/K/V: 2 layers, 4 query heads over 2 KV heads (GQA),
// L = 70 (crosses the 64-row chunks). Queries scaled up so rows are peaked.
qkv_capture random_capture(int L, uint32_t seed) {
    const int n_head = 4, n_kv = 2, d = 8;
    qkv_capture cap;
    cap.info.n_layer = 6;
    cap.info.n_head = n_head;
    cap.info.n_head_kv = n_kv;
    cap.info.head_dim = d;
    cap.info.layers = {1, 4};
    cap.info.token_ids.assign(L, 7);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int layer : cap.info.layers) {
        layer_qkv lq;
        lq.layer = layer;
        for (int i = 0; i < L * n_head * d; ++i) lq.q.push_back(2.5f * nd(rng));
        for (int i = 0; i < L * n_kv * d; ++i) {
            lq.k.push_back(nd(rng));
            lq.v.push_back(nd(rng));
        }
        cap.layers.push_back(lq);
    }
    return cap;
}

// Row i of head h's causal softmax, in double, straight from the capture.
std::vector<double> softmax_row(const qkv_capture & cap, size_t li, int h, int i) {
    const int d = cap.info.head_dim, g = h / (cap.info.n_head / cap.info.n_head_kv);
    const layer_qkv & l = cap.layers[li];
    const double s = double(1.0f / std::sqrt(float(d)));   // the capture's scale is a float
    std::vector<double> a(i + 1);
    double mx = -HUGE_VAL;
    for (int j = 0; j <= i; ++j) {
        double dot = 0;
        for (int e = 0; e < d; ++e) {
            dot += double(l.q[(size_t(i) * cap.info.n_head + h) * d + e]) * l.k[(size_t(j) * cap.info.n_head_kv + g) * d + e];
        }
        a[j] = dot * s;
        mx = std::max(mx, a[j]);
    }
    double z = 0;
    for (double & x : a) z += (x = std::exp(x - mx));
    for (double & x : a) x /= z;
    return a;
}

double entropy_ref(const qkv_capture & cap, size_t li, int h) {
    const int L = cap.info.n_tokens();
    double total = 0;
    for (int i = 0; i < L; ++i) {
        for (double p : softmax_row(cap, li, h, i)) {
            if (p > 0) total -= p * std::log(p);
        }
    }
    return total / L;
}

} // namespace

TEST_CASE("head_entropy equals the mean entropy of float64 softmax rows", "[metrics]") {
    const qkv_capture cap = random_capture(70, 11);
    for (size_t li = 0; li < cap.layers.size(); ++li) {
        const attention_layer_io io = capture_layer_io(cap, li);
        for (int h = 0; h < cap.info.n_head; ++h) {
            const double ref = entropy_ref(cap, li, h);
            CHECK(ref > 0.05);   // peaked but not one-hot: a real test of the sums
            CHECK(head_entropy(head_inputs_of(io, h)) == Approx(ref).epsilon(2e-5).margin(1e-6));
        }
    }
    // One token: one key of weight 1, entropy 0.
    const qkv_capture one = random_capture(1, 2);
    CHECK(head_entropy(head_inputs_of(capture_layer_io(one, 0), 3)) == Approx(0.0).margin(1e-7));
}

TEST_CASE("head table: entropy and window metrics of every head vs brute force", "[metrics]") {
    const int L = 70, w = 8;
    const qkv_capture cap = random_capture(L, 5);
    const std::unique_ptr<sparse_method> win = method_create("window:w=8,B=16");
    head_table_options opt;
    opt.method = win.get();
    job_progress prog;
    const head_table t = head_table_compute(cap, opt, &prog);
    REQUIRE(t.layers == std::vector<int>{1, 4});
    REQUIRE(t.n_head == 4);
    REQUIRE(t.entropy.size() == 8);
    REQUIRE(t.metrics.size() == 8);
    const int64_t pairs = int64_t(L) * (L + 1) / 2;
    int64_t kept = 0;
    for (int i = 0; i < L; ++i) kept += std::min(i + 1, w);
    for (size_t r = 0; r < 2; ++r) {
        const layer_qkv & l = cap.layers[r];
        for (int h = 0; h < 4; ++h) {
            const size_t k = t.index(r, h);
            CHECK(t.entropy[k] == Approx(entropy_ref(cap, r, h)).epsilon(2e-5));
            const head_metrics & m = t.metrics[k];
            CHECK(m.token_density == Approx(double(kept) / pairs).epsilon(1e-12));
            // Mass recall: dense weight on the window; output error: softmax over the window.
            const int g = h / 2, d = 8;
            double recall = 0, err2 = 0, ref2 = 0;
            for (int i = 0; i < L; ++i) {
                const std::vector<double> a = softmax_row(cap, r, h, i);
                const int j0 = std::max(0, i - w + 1);
                double mass = 0;
                for (int j = j0; j <= i; ++j) mass += a[j];
                recall += mass;
                for (int e = 0; e < d; ++e) {
                    double o = 0, os = 0;
                    for (int j = 0; j <= i; ++j) {
                        const double v = l.v[(size_t(j) * 2 + g) * d + e];
                        o += a[j] * v;
                        if (j >= j0) os += a[j] / mass * v;
                    }
                    err2 += (os - o) * (os - o);
                    ref2 += o * o;
                }
            }
            CHECK(m.mass_recall == Approx(recall / L).epsilon(1e-9));
            CHECK(m.output_rel_error == Approx(std::sqrt(err2 / ref2)).epsilon(1e-9));
        }
    }
    CHECK(prog.fraction() > 0.5);

    head_table_options only_entropy;
    const head_table e = head_table_compute(cap, only_entropy);
    CHECK(e.metrics.empty());
    CHECK(e.entropy == t.entropy);

    job_progress cancelled;
    cancelled.cancel();
    CHECK_THROWS_AS(head_table_compute(cap, opt, &cancelled), job_cancelled);
}
