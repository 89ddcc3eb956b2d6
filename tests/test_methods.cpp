// Sparse methods: each selection against a brute-force definition (explicit
// loops over (i, j), naive pooling and sorting), the spec parser and registry,
// per-head metrics on hand-made cases, and the forward-pass hook.
#include <catch2/catch.hpp>

#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <vector>

#include "attention/attention.h"
#include "attention/block_sparse.h"
#include "base/error.h"
#include "methods/method.h"
#include "metrics/head_metrics.h"

using namespace attnlab;

namespace {

using layer_case = attnlab_test::attn_case;

layer_case make_layer(int L, int n_head, int n_head_kv, int hd, bool causal, uint32_t seed, int layer = 0) {
    return attnlab_test::attn_case_random(L, n_head, n_head_kv, hd, causal, seed, 2.0f, 1.0f, layer);
}

using pair_rule = std::function<bool(int i, int j, int L)>;

// Checks a method's selection on every head of random layers against `rule`
// (evaluated on causal pairs only).
void check_against(const std::string & spec, const std::function<pair_rule(const layer_case &, int h)> & make_rule) {
    uint32_t seed = 1;
    for (int L : {1, 2, 17, 64, 99, 128, 201, 300})
        for (int causal = 0; causal < 2; ++causal) {
            auto c = make_layer(L, 6, 2, 16, causal != 0, seed++, 3);
            auto m = method_create(spec);
            for (int h = 0; h < 6; ++h) {
                const selection s = m->select(head_inputs_of(c.io, h));
                REQUIRE(selection_check(s) == "");
                const auto got = attnlab_test::selection_mask(s);
                const pair_rule rule = make_rule(c, h);
                int64_t n = 0;
                for (int i = 0; i < L; ++i)
                    for (int j = 0; j < L; ++j) {
                        const bool want = !(causal && j > i) && rule(i, j, L);
                        n += want;
                        if ((got[(size_t) i * L + j] != 0) != want) {
                            FAIL_CHECK(spec << " L=" << L << " causal=" << causal << " h=" << h << " pair (" << i << ","
                                            << j << ") want " << want);
                            return;
                        }
                    }
                REQUIRE(selection_pairs(s) == n);
                if (L > 0) CHECK(selection_token_density(s) == Approx((double) n / causal_pairs(L, causal != 0)));
            }
        }
}

bool in_window(int i, int j, int w, bool causal) { return causal ? (j <= i && j > i - w) : std::abs(i - j) < w; }

} // namespace

TEST_CASE("fixed patterns match their definitions", "[methods]") {
    for (int w : {1, 3, 40}) {
        check_against("window:w=" + std::to_string(w) + ",B=32", [w](const layer_case & c, int) -> pair_rule {
            const bool causal = c.io.causal;
            return [=](int i, int j, int) { return in_window(i, j, w, causal); };
        });
        check_against("sinks_window:g=5,w=" + std::to_string(w) + ",B=16", [w](const layer_case & c, int) -> pair_rule {
            const bool causal = c.io.causal;
            return [=](int i, int j, int) { return j < 5 || in_window(i, j, w, causal); };
        });
        check_against("strided:m=7,w=" + std::to_string(w), [w](const layer_case & c, int) -> pair_rule {
            const bool causal = c.io.causal;
            return [=](int i, int j, int) { return std::abs(i - j) % 7 == 0 || in_window(i, j, w, causal); };
        });
    }
    check_against("global_tokens:P=0;17;150;9999,w=4,B=64", [](const layer_case & c, int) -> pair_rule {
        const bool causal = c.io.causal;
        return [=](int i, int j, int) {
            const auto g = [](int x) { return x == 0 || x == 17 || x == 150; };
            return g(i) || g(j) || in_window(i, j, 4, causal);
        };
    });
    for (int B : {16, 32, 64, 128}) {
        check_against("block_local:B=" + std::to_string(B), [B](const layer_case &, int) -> pair_rule {
            return [=](int i, int j, int) { return i / B == j / B; };
        });
        check_against("dense:B=" + std::to_string(B),
                      [](const layer_case &, int) -> pair_rule { return [](int, int, int) { return true; }; });
    }
}

TEST_CASE("random and bigbird follow their seeded definitions", "[methods]") {
    // random(p): per row the geometric gaps drawn from mix_hash, plus the diagonal.
    for (double p : {0.0, 0.05, 0.3, 1.0}) {
        const std::string spec = "random:p=" + std::to_string(p) + ",seed=9";
        check_against(spec, [p](const layer_case & c, int h) -> pair_rule {
            const int L = c.io.n_tokens;
            std::set<std::pair<int, int>> keep;
            for (int i = 0; i < L; ++i) {
                keep.insert({i, i});
                if (p == 0.0) continue;
                const int last = c.io.causal ? i : L - 1;
                double j = -1;
                for (uint64_t t = 0;; ++t) {
                    const double u = mix_uniform(mix_hash(9, c.io.layer, h, i, t));
                    j += 1 + (p >= 1.0 ? 0.0 : std::floor(std::log(u) / std::log1p(-p)));
                    if (j > last) break;
                    keep.insert({i, (int) j});
                }
            }
            return [keep](int i, int j, int) { return keep.count({i, j}) > 0; };
        });
    }
    // The draws are Bernoulli(p) per key: density over a large head ~ p.
    {
        auto c = make_layer(1000, 2, 1, 8, true, 5);
        const selection s = method_create("random:p=0.25,seed=3")->select(head_inputs_of(c.io, 1));
        const double off_diag = (double) (selection_pairs(s) - 1000) / (causal_pairs(1000, true) - 1000);
        CHECK(off_diag == Approx(0.25).margin(0.005));
        const selection s2 = method_create("random:p=0.25,seed=4")->select(head_inputs_of(c.io, 1));
        CHECK(s.tok_cols != s2.tok_cols);
    }
    // bigbird(w,g,r): window + first g global (both ways) + r distinct hashed keys.
    for (int r : {0, 3, 50}) {
        const std::string spec = "bigbird:w=3,g=2,r=" + std::to_string(r) + ",seed=1,B=32";
        check_against(spec, [r](const layer_case & c, int h) -> pair_rule {
            const int L = c.io.n_tokens;
            const bool causal = c.io.causal;
            std::set<std::pair<int, int>> rnd;
            for (int i = 0; i < L; ++i) {
                const int n = causal ? i + 1 : L;
                if (n <= r) {
                    for (int j = 0; j < n; ++j) rnd.insert({i, j});
                    continue;
                }
                std::set<int> got;
                for (uint64_t t = 0; (int) got.size() < r; ++t) got.insert((int) (mix_hash(1, c.io.layer, h, i, t) % n));
                for (int j : got) rnd.insert({i, j});
            }
            return [=](int i, int j, int) { return i < 2 || j < 2 || in_window(i, j, 3, causal) || rnd.count({i, j}); };
        });
    }
}

TEST_CASE("oracle_topk keeps each row's exact top keys", "[methods]") {
    for (double rho : {0.01, 0.1, 0.5, 1.0}) {
        const std::string spec = "oracle_topk:rho=" + std::to_string(rho) + ",B=16";
        check_against(spec, [rho](const layer_case & c, int h) -> pair_rule {
            const int L = c.io.n_tokens, hd = c.io.head_dim, g = h / 3;
            std::set<std::pair<int, int>> keep;
            for (int i = 0; i < L; ++i) {
                const int n = c.io.causal ? i + 1 : L;
                std::vector<std::pair<double, int>> row;
                for (int j = 0; j < n; ++j) {
                    double dot = 0;
                    for (int d = 0; d < hd; ++d)
                        dot += (double) c.q[((size_t) i * 6 + h) * hd + d] * c.k[((size_t) j * 2 + g) * hd + d];
                    row.push_back({-dot, j});   // ascending: best first, then lower j
                }
                std::sort(row.begin(), row.end());
                const int k = std::min(n, std::max(1, (int) std::ceil(rho * n - 1e-9)));
                for (int t = 0; t < k; ++t) keep.insert({i, row[t].second});
            }
            return [keep](int i, int j, int) { return keep.count({i, j}) > 0; };
        });
    }
    auto m = method_create("oracle_topk:rho=0.1");
    CHECK(m->uses_qk());
    CHECK(m->predictor_flops(100, 64, true) == 2.0 * 64 * 5050);
}

TEST_CASE("block_topk keeps the best pooled blocks plus diagonal and block 0", "[methods]") {
    for (int B : {16, 32, 64})
        for (double rho : {0.05, 0.2, 0.5, 1.0}) {
            const std::string spec = "block_topk:rho=" + std::to_string(rho) + ",B=" + std::to_string(B);
            check_against(spec, [=](const layer_case & c, int h) -> pair_rule {
                const int L = c.io.n_tokens, hd = c.io.head_dim, g = h / 3, nb = (L + B - 1) / B;
                // Naive mean pooling.
                std::vector<std::vector<double>> qm(nb, std::vector<double>(hd, 0.0)), km = qm;
                for (int I = 0; I < nb; ++I) {
                    const int n = std::min(L, I * B + B) - I * B;
                    for (int t = I * B; t < I * B + n; ++t)
                        for (int d = 0; d < hd; ++d) {
                            qm[I][d] += c.q[((size_t) t * 6 + h) * hd + d];
                            km[I][d] += c.k[((size_t) t * 2 + g) * hd + d];
                        }
                    for (int d = 0; d < hd; ++d) {
                        qm[I][d] /= n;
                        km[I][d] /= n;
                    }
                }
                std::set<std::pair<int, int>> keep;
                for (int I = 0; I < nb; ++I) {
                    const int nbc = c.io.causal ? I + 1 : nb;
                    const int budget = std::min(nbc, std::max(1, (int) std::ceil(rho * nbc - 1e-9)));
                    std::set<int> kept = {0, I};
                    std::vector<std::pair<double, int>> cand;
                    for (int J = 0; J < nbc; ++J) {
                        if (J == 0 || J == I) continue;
                        double s = 0;
                        for (int d = 0; d < hd; ++d) s += qm[I][d] * km[J][d];
                        cand.push_back({-s * c.io.scale, J});
                    }
                    std::sort(cand.begin(), cand.end());
                    for (size_t t = 0; (int) kept.size() < budget && t < cand.size(); ++t) kept.insert(cand[t].second);
                    for (int J : kept) keep.insert({I, J});
                }
                return [keep, B](int i, int j, int) { return keep.count({i / B, j / B}) > 0; };
            });
        }
    // Block density follows rho (forced blocks count toward the budget).
    auto c = make_layer(64 * 64, 1, 1, 16, true, 2);
    const selection s = method_create("block_topk:rho=0.25,B=64")->select(head_inputs_of(c.io, 0));
    CHECK_FALSE(s.token_level);
    int64_t want = 0;
    for (int I = 0; I < 64; ++I) want += std::max(I == 0 ? 1 : 2, (int) std::ceil(0.25 * (I + 1) - 1e-9));
    CHECK(s.n_kept_blocks() == want);
}

TEST_CASE("method specs: round trip and clear errors", "[methods]") {
    // Every registered method builds from its name alone, and its canonical
    // spec (every key) parses back to the same spec.
    for (const auto & info : method_registry()) {
        // Methods that need a parameter file: test_method_registry.cpp.
        if (!info.file_keys.empty()) continue;
        auto m = method_create(info.name);
        CHECK(m->name() == info.name);
        const std::string sp = m->spec();
        CHECK(method_create(sp)->spec() == sp);
        CHECK(method_spec_format(method_spec_parse(sp)) == sp);
        for (const auto & p : info.params) CHECK(sp.find(p.key + "=") != std::string::npos);
    }
    CHECK(method_create(" block_topk : rho = 0.25 , B=32 ")->spec() == "block_topk:rho=0.25,B=32");
    CHECK(method_create("window:w=16")->spec() == "window:w=16,B=64");
    CHECK(method_create("global_tokens:P=5;0;5")->spec() == "global_tokens:P=5;0;5,w=256,B=64");
    CHECK(method_create("random:p=1e-1")->spec() == "random:p=0.1,seed=0,B=64");

    struct bad { const char * spec; const char * field; const char * says; };
    const bad bads[] = {
        {"nosuch", "name", "window"},              // lists valid names
        {"", "name", "method name"},
        {"window:x=3", "x", "valid keys: w, B"},
        {"window:w=0", "w", "out of range"},
        {"window:w=abc", "w", "not an integer"},
        {"window:w", "w", "missing"},
        {"window:w=3,w=4", "w", "twice"},
        {"window:w=", "w", "empty"},
        {"block_topk:rho=1.5", "rho", "out of range (0, 1]"},
        {"block_topk:rho=0", "rho", "out of range"},
        {"block_topk:rho=nan", "rho", "finite"},
        {"dense:B=48", "B", "16, 32, 64, 128"},
        {"random:p=-0.1", "p", "out of range"},
        {"global_tokens:P=1;x", "P", "positions"},
        {"bigbird:r=-1", "r", "out of range"},
    };
    for (const auto & b : bads) {
        INFO(b.spec);
        try {
            method_create(b.spec);
            FAIL_CHECK("no error for " << b.spec);
        } catch (const input_error & e) {
            CHECK(e.field() == b.field);
            CHECK(e.file() == b.spec);
            CHECK(std::string(e.what()).find(b.says) != std::string::npos);
        }
    }
}

TEST_CASE("score specs: round trip and errors", "[methods]") {
    for (const char * s : {"softmax", "relu", "relu:b=0.5,norm=row", "hyperbolic", "hyperbolic:c=0.5,beta=2,gamma=-1"}) {
        const score_fn f = score_create(s);
        const score_fn g = score_create(f.spec());
        CHECK(g.spec() == f.spec());
        CHECK((int) g.kind == (int) f.kind);
    }
    CHECK(score_create("relu:b=0.5,norm=row").relu_row_norm);
    CHECK(score_create("hyperbolic:c=0.5,beta=2,gamma=-1").beta == 2.0f);
    const std::pair<const char *, const char *> bads[] = {
        {"hyperbolic:c=0", "c"}, {"relu:norm=foo", "norm"}, {"tanh", "name"}, {"softmax:b=1", "b"}};
    for (const auto & b : bads) {
        INFO(b.first);
        try {
            score_create(b.first);
            FAIL_CHECK("no error");
        } catch (const input_error & e) {
            CHECK(e.field() == b.second);
        }
    }
}

TEST_CASE("head metrics on hand-made cases", "[methods]") {
    SECTION("keeping everything: recall 1, error 0, KL 0") {
        auto c = make_layer(150, 3, 1, 32, true, 8);
        for (int h = 0; h < 3; ++h) {
            const head_metrics m = head_metrics_of_method(c.io, h, *method_create("dense:B=32"));
            CHECK(m.token_density == 1.0);
            CHECK(m.block_density == 1.0);
            CHECK(m.flop_fraction == 1.0);
            CHECK(m.mass_recall == Approx(1.0).epsilon(1e-12));
            CHECK(m.output_rel_error == 0.0);
            CHECK(m.kl_sparse_dense == Approx(0.0).margin(1e-12));
            CHECK(m.kl_dense_sparse == Approx(0.0).margin(1e-5));
            CHECK(m.oracle_precision == 1.0);
            CHECK(m.oracle_recall == 1.0);
        }
    }
    SECTION("diagonal only on a 3-token head, by hand") {
        // d = 1, s = 1, q = 1, k = (0, 1, 2), v = (1, 2, 4): row i's logits are 0..i.
        const float q[3] = {1, 1, 1}, k[3] = {0, 1, 2}, v[3] = {1, 2, 4};
        head_inputs in;
        in.n_tokens = 3;
        in.head_dim = 1;
        in.causal = true;
        in.scale = 1.0f;
        in.q = q;
        in.q_stride = 1;
        in.k = k;
        in.k_stride = 1;
        const selection diag = selection_from_rows(3, 16, true, {{0}, {1}, {2}});
        const head_metrics m = head_metrics_compute(in, v, 1, diag, score_fn(), 12.0);
        const double e = std::exp(1.0), e2 = e * e;
        const double a[3][3] = {{1, 0, 0}, {1 / (1 + e), e / (1 + e), 0}, {1 / (1 + e + e2), e / (1 + e + e2), e2 / (1 + e + e2)}};
        const double rec[3] = {1, a[1][1], a[2][2]};
        CHECK(m.token_density == Approx(0.5));
        CHECK(m.block_density == 1.0);   // one 16-block holds all three tokens
        CHECK(m.flop_fraction == Approx((4.0 * 6 + 12.0) / (4.0 * 6)));
        CHECK(m.mass_recall == Approx((rec[0] + rec[1] + rec[2]) / 3));
        const double o[3] = {1, (1 + 2 * e) / (1 + e), (1 + 2 * e + 4 * e2) / (1 + e + e2)};
        const double num = std::pow(1 - o[0], 2) + std::pow(2 - o[1], 2) + std::pow(4 - o[2], 2);
        const double den = o[0] * o[0] + o[1] * o[1] + o[2] * o[2];
        CHECK(m.output_rel_error == Approx(std::sqrt(num / den)));
        CHECK(m.kl_sparse_dense == Approx(-(std::log(rec[1]) + std::log(rec[2])) / 3));
        double kl = 0;
        for (int i = 0; i < 3; ++i) {
            const int n = i + 1;
            for (int j = 0; j < n; ++j) {
                const double w = (j == i) ? 1.0 : 0.0;
                kl += a[i][j] * std::log(a[i][j] / ((1 - k_kl_mix_eps) * w + k_kl_mix_eps / n));
            }
        }
        CHECK(m.kl_dense_sparse == Approx(kl / 3));
        // Oracle at density 0.5: budgets 1, 1, 2 -> {0}, {1}, {1, 2}; the mask hits 3 of 4.
        CHECK(m.oracle_precision == 1.0);
        CHECK(m.oracle_recall == Approx(0.75));
    }
    SECTION("a window loses mass; its error and KL are positive") {
        auto c = make_layer(300, 1, 1, 16, true, 4);
        const head_metrics m = head_metrics_of_method(c.io, 0, *method_create("window:w=8,B=16"));
        CHECK(m.mass_recall < 0.9);
        CHECK(m.mass_recall > 0.0);
        CHECK(m.output_rel_error > 0.01);
        // KL(sparse || dense) of a row is -log of the dense mass the window
        // keeps (the sparse row is the dense one renormalised on the kept
        // keys): float64 from Q and K, keys i-7..i by METHODS.md's window.
        double kl_ref = 0.0, recall_ref = 0.0;
        const int L = c.io.n_tokens, hd = c.io.head_dim;
        for (int i = 0; i < L; ++i) {
            std::vector<double> s(size_t(i) + 1);
            double mx = -1e300;
            for (int j = 0; j <= i; ++j) {
                double d = 0.0;
                for (int t = 0; t < hd; ++t) d += double(c.q[size_t(i) * hd + t]) * double(c.k[size_t(j) * hd + t]);
                s[j] = d * double(c.io.scale);
                mx = std::max(mx, s[j]);
            }
            double all = 0.0, kept = 0.0;
            for (int j = 0; j <= i; ++j) {
                const double e = std::exp(s[j] - mx);
                all += e;
                if (j > i - 8) kept += e;
            }
            kl_ref += -std::log(kept / all) / L;
            recall_ref += kept / all / L;
        }
        CHECK(m.mass_recall == Approx(recall_ref).epsilon(1e-9));
        CHECK(m.kl_sparse_dense > 0.0);
        CHECK(m.kl_sparse_dense == Approx(kl_ref).epsilon(1e-9));
        CHECK(m.kl_sparse_dense > 0.0);
        CHECK(m.kl_dense_sparse > m.kl_sparse_dense);
        // The oracle at the same density recalls more mass than the window.
        const double rho = m.token_density;
        const head_metrics mo = head_metrics_of_method(c.io, 0, *method_create("oracle_topk:rho=" + std::to_string(rho)));
        CHECK(mo.mass_recall > m.mass_recall);
        CHECK(mo.oracle_precision > 0.99);
    }
}

TEST_CASE("sparse_attention_hook patches a method into each layer", "[methods]") {
    auto c = make_layer(200, 6, 2, 32, true, 12, 0);
    std::vector<float> dense(c.out.size());
    c.io.out = dense.data();
    attention_dense_flash(c.io);
    c.io.out = c.out.data();

    sparse_attention_hook hook(std::shared_ptr<const sparse_method>(method_create("dense")));
    hook.set_layer_method(1, std::shared_ptr<const sparse_method>(method_create("window:w=1,B=16")));
    REQUIRE(hook.attend(c.io));
    CHECK(std::memcmp(c.out.data(), dense.data(), dense.size() * sizeof(float)) == 0);

    // Layer 1: each query sees only itself, so out = v of its KV head.
    c.io.layer = 1;
    REQUIRE(hook.attend(c.io));
    for (int t = 0; t < 200; ++t)
        for (int h = 0; h < 6; ++h)
            for (int d = 0; d < 32; ++d)
                REQUIRE(c.out[((size_t) t * 6 + h) * 32 + d] == Approx(c.v[((size_t) t * 2 + h / 3) * 32 + d]).epsilon(1e-6));
    REQUIRE(hook.records().size() == 2);
    CHECK(hook.records()[0].token_density == Approx(1.0));
    // A sparse method at full density through the block kernel agrees too.
    sparse_attention_hook hook2(std::shared_ptr<const sparse_method>(method_create("block_topk:rho=1,B=32")));
    c.io.layer = 0;
    REQUIRE(hook2.attend(c.io));
    for (size_t i = 0; i < dense.size(); ++i) REQUIRE(c.out[i] == Approx(dense[i]).margin(1e-6));
    CHECK(hook2.records()[0].block_density == Approx(1.0));
    CHECK(hook.records()[1].token_density == Approx(200.0 / causal_pairs(200, true)));
    CHECK(hook.records()[1].layer == 1);
}

TEST_CASE("spec aliases: density and block name rho and B", "[methods]") {
    auto m = attnlab::method_create("block_topk:density=0.2,block=64");
    CHECK(m->spec() == attnlab::method_create("block_topk:rho=0.2,B=64")->spec());
    CHECK_THROWS_AS(attnlab::method_create("block_topk:density=0.2,rho=0.3"), attnlab::input_error);
    CHECK_THROWS_AS(attnlab::method_create("window:density=0.2"), attnlab::input_error); // window has no rho
}
