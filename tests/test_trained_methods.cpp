// Trained, calibrated and composed methods (learned_gate, asa_router, spa,
// hybrid, layer_adaptive, max_keys): each selection against a brute-force
// definition, training on synthetic heads whose block mass is known, the
// parameter files (round trip, bad fields), the calibration/evaluation split,
// and a short run on the real default model.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>

#include "attention/attention.h"
#include "base/error.h"
#include "io/safetensors.h"
#include "data/capture.h"
#include "data/corpus.h"
#include "base/job.h"
#include "methods/asa_router.h"
#include "methods/hybrid.h"
#include "methods/layer_adaptive.h"
#include "methods/learned_gate.h"
#include "methods/max_keys.h"
#include "methods/registry_trained.h"
#include "methods/spa.h"
#include "methods/train/calib.h"
#include "metrics/head_metrics.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"
#include "test_util.h"

using namespace attnlab;

namespace {

const std::string k_sha_text(64, 'c');
const std::string k_sha_model(64, 'd');

std::string tmp_path(const std::string & name) { return "/tmp/attnlab_trained_" + name; }

// A capture with random Q/K/V (layout of attention_layer_io).
qkv_capture random_capture(int L, int n_head, int n_head_kv, int hd, std::vector<int> layers, uint32_t seed,
                           const std::string & text_spec = "kjv:calib", float q_scale = 2.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    qkv_capture cap;
    trace_info & t = cap.info;
    t.model_id = "synthetic";
    t.model_sha256 = k_sha_model;
    t.text_spec = text_spec;
    t.text_sha256 = k_sha_text;
    t.n_layer = layers.back() + 1;
    t.n_head = n_head;
    t.n_head_kv = n_head_kv;
    t.head_dim = hd;
    t.layers = layers;
    t.token_ids.assign(L, 1);
    for (int l : layers) {
        layer_qkv x;
        x.layer = l;
        x.q.resize((size_t) L * n_head * hd);
        x.k.resize((size_t) L * n_head_kv * hd);
        x.v.resize((size_t) L * n_head_kv * hd);
        for (auto & v : x.q) v = nd(rng) * q_scale;
        for (auto & v : x.k) v = nd(rng);
        for (auto & v : x.v) v = nd(rng);
        cap.layers.push_back(std::move(x));
    }
    return cap;
}

// A head whose attention goes to one chosen key block per query block: key
// block J carries a random code c_J, each query of block I carries
// beta·c_{f(I)} with f(I) a random earlier block, plus noise. The codes and
// targets change with the seed: only the rule "match the codes" carries over.
qkv_capture planted_capture(int L, int B, int hd, uint32_t seed, const std::string & text_spec = "kjv:calib") {
    qkv_capture cap = random_capture(L, 2, 1, hd, {0}, seed, text_spec);
    std::mt19937 rng(seed * 7 + 1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int nb = (L + B - 1) / B;
    std::vector<std::vector<float>> code(nb, std::vector<float>(hd));
    for (auto & c : code) {
        for (auto & x : c) x = nd(rng);
    }
    std::vector<int> f(nb);
    for (int I = 0; I < nb; ++I) f[I] = I == 0 ? 0 : (int) (rng() % I);
    layer_qkv & l = cap.layers[0];
    for (int t = 0; t < L; ++t) {
        for (int i = 0; i < hd; ++i) {
            l.k[(size_t) t * hd + i] = 1.5f * code[t / B][i] + 0.5f * nd(rng);
            for (int h = 0; h < 2; ++h) l.q[((size_t) t * 2 + h) * hd + i] = 3.0f * code[f[t / B]][i] + 0.5f * nd(rng);
        }
    }
    return cap;
}

std::vector<char> dense_of(const selection & s) {
    const int L = s.n_tokens, B = s.block;
    std::vector<char> m((size_t) L * L, 0);
    std::vector<int32_t> keys;
    for (int i = 0; i < L; ++i) {
        if (s.token_level) {
            for (int64_t t = s.tok_ptr[i]; t < s.tok_ptr[i + 1]; ++t) m[(size_t) i * L + s.tok_cols[t]] = 1;
        } else {
            for (int32_t t = s.blk_ptr[i / B]; t < s.blk_ptr[i / B + 1]; ++t)
                for (int j = s.blk_cols[t] * B; j < std::min(L, s.blk_cols[t] * B + B); ++j)
                    if (!(s.causal && j > i)) m[(size_t) i * L + j] = 1;
        }
    }
    return m;
}

// Naive logits s·q_i·k_j of head h of a capture layer.
double logit(const attention_layer_io & io, int h, int i, int j) {
    const float * q = io.q + ((size_t) i * io.n_head + h) * io.head_dim;
    const float * k = io.k + ((size_t) j * io.n_head_kv + io.kv_head_of(h)) * io.head_dim;
    double s = 0;
    for (int x = 0; x < io.head_dim; ++x) s += (double) q[x] * k[x];
    return s * io.scale;
}

double mass_recall(const qkv_capture & cap, size_t li, int h, const selection & s) {
    const capture_head c = capture_head_of(cap, li, h);
    return head_metrics_compute(c.in, c.v, c.v_stride, s).mass_recall;
}

template <class F> void expect_input_error(F f, const std::string & file, const std::string & field) {
    try {
        f();
        FAIL_CHECK("no input_error (want " << file << " / " << field << ")");
    } catch (const input_error & e) {
        CHECK(e.file() == file);
        CHECK(e.field() == field);
    }
}

// Rewrites a safetensors file with its metadata changed by `edit` (and a
// tensor dropped when `drop` is set).
void rewrite(const std::string & from, const std::string & to, const std::function<void(std::map<std::string, std::string> &)> & edit,
             const std::string & drop = "") {
    safetensors_file f = safetensors_file::open(from);
    std::map<std::string, std::string> md = f.metadata();
    edit(md);
    std::vector<st_write_tensor> ts;
    for (const auto & t : f.tensors()) {
        if (t.name == drop) continue;
        st_write_tensor w;
        w.name = t.name;
        w.dtype = t.dtype;
        w.shape = t.shape;
        w.data = t.data;
        w.nbytes = t.nbytes;
        ts.push_back(w);
    }
    safetensors_write(to, ts, md);
}

} // namespace

// ---------------------------------------------------------------- learned_gate

TEST_CASE("learned_gate selection matches its definition", "[trained]") {
    for (int B : {16, 32})
        for (int L : {1, 17, 100, 257})
            for (int causal = 0; causal < 2; ++causal) {
                qkv_capture cap = random_capture(L, 4, 2, 8, {1, 3}, 10 + L + B + causal);
                auto p = std::make_shared<gate_params>(gate_random(4, 8, {1, 3}, B, 5, 77));
                for (double rho : {0.1, 0.4, 1.0})
                    for (double tau : {0.0, 0.05, 0.3}) {
                        learned_gate_method m(p, rho, tau, "learned_gate");
                        for (size_t li = 0; li < 2; ++li)
                            for (int h = 0; h < 4; ++h) {
                                attention_layer_io io = capture_layer_io(cap, li);
                                io.causal = causal != 0;
                                const head_inputs in = head_inputs_of(io, h);
                                const selection s = m.select(in);
                                REQUIRE(selection_check(s) == "");
                                // brute force: naive pooling, projection, softmax, ranking
                                const int nb = (L + B - 1) / B, d = 8, dg = 5;
                                const float * wq = p->wq_of((int) li, h);
                                const float * wk = p->wk_of((int) li, h);
                                std::vector<std::vector<double>> qt(nb, std::vector<double>(dg)), kt = qt;
                                for (int I = 0; I < nb; ++I) {
                                    const int n = std::min(L, I * B + B) - I * B;
                                    std::vector<double> qm(d, 0), km(d, 0);
                                    for (int t = I * B; t < I * B + n; ++t)
                                        for (int x = 0; x < d; ++x) {
                                            qm[x] += in.q[t * in.q_stride + x] / (double) n;
                                            km[x] += in.k[t * in.k_stride + x] / (double) n;
                                        }
                                    for (int g = 0; g < dg; ++g)
                                        for (int x = 0; x < d; ++x) {
                                            qt[I][g] += qm[x] * wq[x * dg + g];
                                            kt[I][g] += km[x] * wk[x * dg + g];
                                        }
                                }
                                std::set<std::pair<int, int>> keep;
                                for (int I = 0; I < nb; ++I) {
                                    const int nbc = causal ? I + 1 : nb;
                                    std::vector<double> z(nbc);
                                    double mx = -1e300, sum = 0;
                                    for (int J = 0; J < nbc; ++J) {
                                        for (int g = 0; g < dg; ++g) z[J] += qt[I][g] * kt[J][g];
                                        z[J] /= std::sqrt((double) dg);
                                        mx = std::max(mx, z[J]);
                                    }
                                    for (int J = 0; J < nbc; ++J) sum += std::exp(z[J] - mx);
                                    std::set<int> kept = {0, I};
                                    if (tau > 0) {
                                        for (int J = 0; J < nbc; ++J)
                                            if (std::exp(z[J] - mx) / sum >= tau) kept.insert(J);
                                    } else {
                                        const int budget = std::min(nbc, std::max(1, (int) std::ceil(rho * nbc - 1e-9)));
                                        std::vector<std::pair<double, int>> cand;
                                        for (int J = 0; J < nbc; ++J)
                                            if (J != 0 && J != I) cand.push_back({-z[J], J});
                                        std::sort(cand.begin(), cand.end());
                                        for (size_t t = 0; (int) kept.size() < budget && t < cand.size(); ++t) kept.insert(cand[t].second);
                                    }
                                    for (int J : kept) keep.insert({I, J});
                                }
                                const auto got = dense_of(s);
                                for (int i = 0; i < L; ++i)
                                    for (int j = 0; j < L; ++j) {
                                        const bool want = !(causal && j > i) && keep.count({i / B, j / B});
                                        if ((got[(size_t) i * L + j] != 0) != want) {
                                            FAIL_CHECK("L=" << L << " B=" << B << " rho=" << rho << " tau=" << tau << " pair " << i
                                                            << "," << j);
                                            return;
                                        }
                                    }
                            }
                    }
            }
}

TEST_CASE("block mass target is the dense softmax mass per block", "[trained]") {
    qkv_capture cap = random_capture(70, 2, 1, 4, {0}, 3);
    const attention_layer_io io = capture_layer_io(cap, 0);
    const std::vector<double> T = block_mass_target(head_inputs_of(io, 1), 16);
    const int nb = 5;
    for (int I = 0; I < nb; ++I) {
        std::vector<double> want(nb, 0.0);
        const int n = std::min(70, I * 16 + 16) - I * 16;
        for (int i = I * 16; i < I * 16 + n; ++i) {
            double mx = -1e300, sum = 0;
            for (int j = 0; j <= i; ++j) mx = std::max(mx, logit(io, 1, i, j));
            for (int j = 0; j <= i; ++j) sum += std::exp(logit(io, 1, i, j) - mx);
            for (int j = 0; j <= i; ++j) want[j / 16] += std::exp(logit(io, 1, i, j) - mx) / sum / n;
        }
        for (int J = 0; J < nb; ++J) CHECK(T[I * nb + J] == Approx(want[J]).margin(1e-12));
    }
}

TEST_CASE("learned_gate learns a planted block pattern and beats a random gate", "[trained]") {
    const int L = 512, B = 32, hd = 16;
    std::vector<qkv_capture> train;
    for (uint32_t s : {1, 2, 3, 4, 5, 6, 7, 8}) train.push_back(planted_capture(L, B, hd, s));
    std::vector<const qkv_capture *> ptrs;
    for (auto & c : train) ptrs.push_back(&c);
    gate_train_options o;
    o.block = B;
    o.d_g = 16;
    o.steps = 300;
    o.lr = 3e-2;
    o.keep_curves = true;
    job_progress prog;
    o.progress = &prog;
    const gate_params p = gate_train(ptrs, o);
    CHECK(prog.fraction() == 1.0);
    REQUIRE(p.curves.size() == 2);
    for (const auto & c : p.curves) {
        REQUIRE(c.size() == 300);
        // monotone-ish: every 20-step mean at most 2% above the one before
        for (size_t w = 20; w + 20 <= c.size(); w += 20) {
            double a = 0, b = 0;
            for (size_t t = 0; t < 20; ++t) {
                a += c[w - 20 + t];
                b += c[w + t];
            }
            CHECK(b <= a * 1.02 + 1e-9);
        }
        CHECK(c.back() < 0.5 * c.front());
    }
    CHECK(p.mean_final_loss() < 0.5 * p.mean_initial_loss());
    CHECK(p.prov.calib_text_sha256 == k_sha_text);
    CHECK(p.prov.model_sha256 == k_sha_model);

    // Held-out window: trained gate vs the untrained (random) gate vs block_topk, equal density.
    const qkv_capture test = planted_capture(L, B, hd, 9);
    auto trained = std::make_shared<gate_params>(p);
    auto rnd = std::make_shared<gate_params>(gate_random(2, hd, {0}, B, 16, 0));
    double r_tr = 0, r_rnd = 0, r_bt = 0;
    for (int h = 0; h < 2; ++h) {
        const head_inputs in = capture_head_of(test, 0, h).in;
        const selection st = learned_gate_method(trained, 0.3, 0, "g").select(in);
        const selection sr = learned_gate_method(rnd, 0.3, 0, "g").select(in);
        CHECK(st.n_kept_blocks() == sr.n_kept_blocks());
        r_tr += mass_recall(test, 0, h, st) / 2;
        r_rnd += mass_recall(test, 0, h, sr) / 2;
        r_bt += mass_recall(test, 0, h, method_create("block_topk:rho=0.3,B=32")->select(in)) / 2;
    }
    INFO("recall trained " << r_tr << " random " << r_rnd << " block_topk " << r_bt);
    CHECK(r_tr > r_rnd + 0.2);
    CHECK(r_tr > 0.7);
}

TEST_CASE("learned_gate file: round trip, provenance, bad fields", "[trained]") {
    std::vector<qkv_capture> train = {planted_capture(256, 16, 8, 4)};
    gate_train_options o;
    o.block = 16;
    o.d_g = 4;
    o.steps = 30;
    const gate_params p = gate_train({&train[0]}, o);
    const std::string path = tmp_path("gate.safetensors");
    gate_save(path, p);
    const gate_params q = gate_load(path);
    CHECK(q.wq == p.wq);
    CHECK(q.wk == p.wk);
    CHECK(q.final_loss == p.final_loss);
    CHECK(q.prov.calib_text_sha256 == k_sha_text);
    CHECK(q.prov.file == path);
    CHECK(q.steps == 30);
    CHECK(q.layers == p.layers);

    // Through the spec, and wrapped in the guard: identical selections, hash exposed.
    auto m = method_create("learned_gate:rho=0.3,B=16,params=" + path);
    CHECK(m->spec() == "learned_gate:rho=0.3,tau=0,B=16,params=" + path);
    CHECK(method_create(m->spec())->spec() == m->spec());
    auto * lg = dynamic_cast<learned_gate_method *>(m.get());
    REQUIRE(lg);
    CHECK(lg->calib_text_sha256() == k_sha_text);
    learned_gate_method direct(std::make_shared<gate_params>(p), 0.3, 0, "x");
    const qkv_capture ev = planted_capture(256, 16, 8, 11, "kjv:eval");
    for (int h = 0; h < 2; ++h) {
        const head_inputs in = capture_head_of(ev, 0, h).in;
        const selection a = m->select(in), b = direct.select(in);
        CHECK(a.blk_ptr == b.blk_ptr);
        CHECK(a.blk_cols == b.blk_cols);
    }
    auto guarded = method_create("max_keys:k=40,inner=learned_gate:rho=0.3|B=16|params=" + path);
    REQUIRE(method_provenance(*guarded));
    CHECK(method_provenance(*guarded)->calib_text_sha256 == k_sha_text);
    CHECK(method_provenance(*method_create("block_topk")) == nullptr);
    // A layer the gate does not know falls back to block_topk (counted).
    {
        attention_layer_io io = capture_layer_io(ev, 0);
        io.layer = 5;
        const selection s = lg->select(head_inputs_of(io, 0));
        const selection bt = method_create("block_topk:rho=0.3,B=16")->select(head_inputs_of(io, 0));
        CHECK(s.blk_cols == bt.blk_cols);
        CHECK(lg->fallbacks() == 1);
    }

    expect_input_error([&] { method_create("learned_gate:rho=0.3,B=32,params=" + path); },
                       "learned_gate:rho=0.3,B=32,params=" + path, "B");
    expect_input_error([&] { method_create("learned_gate:rho=0.3"); }, "learned_gate:rho=0.3", "params");
    expect_input_error([&] { method_create("learned_gate:rho=2,params=x"); }, "learned_gate:rho=2,params=x", "rho");
    expect_input_error([&] { gate_load("/nonexistent/gate.safetensors"); }, "/nonexistent/gate.safetensors", "file");

    const std::string bad = tmp_path("gate_bad.safetensors");
    for (const char * field : {"attnlab.kind", "calib_text_sha256", "calib_text_spec", "model_sha256", "block", "d_g", "head_dim",
                               "n_head", "layers", "steps", "lr", "seed", "ctx", "windows", "val_windows", "final_loss",
                               "format_version"}) {
        INFO("missing " << field);
        rewrite(path, bad, [&](std::map<std::string, std::string> & md) { md.erase(field); });
        expect_input_error([&] { gate_load(bad); }, bad, field);
    }
    const std::pair<const char *, const char *> bad_values[] = {
        {"calib_text_sha256", "xyz"}, {"block", "48"}, {"d_g", "-1"}, {"calib_text_spec", "kjv:eval"},
        {"layers", "3,1"}, {"lr", "nan"}, {"attnlab.kind", "asa_router"}, {"d_g", "5"}};
    for (const auto & b : bad_values) {
        INFO(b.first << " = " << b.second);
        rewrite(path, bad, [&](std::map<std::string, std::string> & md) { md[b.first] = b.second; });
        // a wrong d_g shows up as the tensor shape it contradicts
        expect_input_error([&] { gate_load(bad); }, bad, std::string(b.first) == "d_g" && std::string(b.second) == "5" ? "wq" : b.first);
    }
    for (const char * t : {"wk", "val_loss"}) {
        rewrite(path, bad, [](std::map<std::string, std::string> &) {}, t);
        expect_input_error([&] { gate_load(bad); }, bad, t);
    }
    std::remove(path.c_str());
    std::remove(bad.c_str());
}

TEST_CASE("training refuses anything but calibration text", "[trained]") {
    for (const char * spec : {"kjv:eval", "kjv", "kjv:all", "/x/kjv.txt:eval", "notes.txt", ""}) {
        INFO(spec);
        qkv_capture c = planted_capture(64, 16, 4, 1, spec);
        gate_train_options o;
        o.block = 16;
        try {
            gate_train({&c}, o);
            FAIL_CHECK("trained on " << spec);
        } catch (const input_error & e) {
            CHECK(e.field() == "text part");
        }
        CHECK_THROWS_AS(router_train({&c}, router_train_options()), input_error);
        CHECK_THROWS_AS(layer_adaptive_calibrate({&c}, {0.5}, 16), input_error);
    }
    // a calibration set mixing in an evaluation capture is refused too
    qkv_capture a = planted_capture(64, 16, 4, 1), b = planted_capture(64, 16, 4, 2, "kjv:eval");
    CHECK_THROWS_AS(gate_train({&a, &b}, gate_train_options()), input_error);
    qkv_capture other = planted_capture(64, 16, 4, 2, "/x/kjv.txt:calib");
    CHECK(text_spec_part(other.info.text_spec) == text_part::calibration);
}

TEST_CASE("training reports progress and stops on cancel", "[trained]") {
    qkv_capture c = random_capture(128, 4, 2, 8, {0, 1}, 5);
    job_progress prog;
    prog.cancel();
    gate_train_options o;
    o.block = 16;
    o.progress = &prog;
    CHECK_THROWS_AS(gate_train({&c}, o), job_cancelled);
    router_train_options ro;
    ro.progress = &prog;
    CHECK_THROWS_AS(router_train({&c}, ro), job_cancelled);
    CHECK_THROWS_AS(layer_adaptive_calibrate({&c}, {0.5}, 16, &prog), job_cancelled);
}

// ---------------------------------------------------------------- spa

namespace {

// spa's formula in float64, literally: exact exp on kept pairs, φ(q)ᵀφ(k) on
// the skipped causal pairs (no prefix sums, no stabilisers).
std::vector<double> spa_brute(const attention_layer_io & io, int h, const selection & sel, int m, uint64_t seed) {
    const int L = io.n_tokens, d = io.head_dim;
    const double s = io.scale;
    const std::vector<double> W = spa_omega(seed, io.layer, h, m, d);
    const auto phi = [&](const float * x, int l) {
        double wx = 0, xx = 0;
        for (int i = 0; i < d; ++i) {
            wx += W[(size_t) l * d + i] * x[i] * std::sqrt(s);
            xx += (double) x[i] * x[i] * s;
        }
        return std::exp(wx - xx / 2) / std::sqrt((double) m);
    };
    const auto M = dense_of(sel);
    std::vector<double> out((size_t) L * d, 0.0);
    for (int i = 0; i < L; ++i) {
        const float * q = io.q + ((size_t) i * io.n_head + h) * d;
        double den = 0;
        std::vector<double> num(d, 0);
        for (int j = 0; j <= i; ++j) {
            const float * k = io.k + ((size_t) j * io.n_head_kv + io.kv_head_of(h)) * d;
            const float * v = io.v + ((size_t) j * io.n_head_kv + io.kv_head_of(h)) * d;
            double w = 0;
            if (M[(size_t) i * L + j]) {
                w = std::exp(logit(io, h, i, j));
            } else {
                for (int l = 0; l < m; ++l) w += phi(q, l) * phi(k, l);
            }
            den += w;
            for (int x = 0; x < d; ++x) num[x] += w * v[x];
        }
        for (int x = 0; x < d; ++x) out[(size_t) i * d + x] = num[x] / den;
    }
    return out;
}

double rel_err(const std::vector<double> & a, const std::vector<float> & b, int L, int d, int64_t stride, int off) {
    double num = 0, den = 0;
    for (int i = 0; i < L; ++i)
        for (int x = 0; x < d; ++x) {
            const double e = a[(size_t) i * d + x] - b[i * stride + off + x];
            num += e * e;
            den += a[(size_t) i * d + x] * a[(size_t) i * d + x];
        }
    return std::sqrt(num / den);
}

} // namespace

TEST_CASE("spa: rho=1 is dense; the formula matches a float64 brute force", "[trained]") {
    for (int L : {1, 33, 150}) {
        qkv_capture cap = random_capture(L, 4, 2, 8, {2}, 20 + L, "kjv:calib", 0.7f);
        attention_layer_io io = capture_layer_io(cap, 0);
        std::vector<double> ref((size_t) L * 4 * 8);
        attention_dense_reference_f64(io, ref.data());
        std::vector<float> out((size_t) L * 4 * 8, NAN);
        io.out = out.data();
        sparse_attention_hook hook(std::make_shared<spa_method>(1.0, 16, 3, 16, "spa"));
        REQUIRE(hook.attend(io));
        double num = 0, den = 0;
        for (size_t x = 0; x < ref.size(); ++x) {
            num += (ref[x] - out[x]) * (ref[x] - out[x]);
            den += ref[x] * ref[x];
        }
        CHECK(std::sqrt(num / den) <= 1e-6);
        CHECK(hook.records().size() == 1);

        for (double rho : {0.2, 0.5}) {
            auto m = method_create("spa:rho=" + std::to_string(rho) + ",m=32,seed=5,B=16");
            const auto * sm = dynamic_cast<const spa_method *>(m.get());
            REQUIRE(sm);
            for (int h = 0; h < 4; ++h) {
                const head_inputs in = head_inputs_of(io, h);
                const selection sel = m->select(in);
                // the exact part is block_topk's selection
                CHECK(sel.blk_cols == method_create("block_topk:rho=" + std::to_string(rho) + ",B=16")->select(in).blk_cols);
                std::vector<float> o((size_t) L * 8);
                spa_attend(in, io.v + io.kv_head_of(h) * 8, 16, sel, 32, 5, o.data(), 8);
                CHECK(rel_err(spa_brute(io, h, sel, 32, 5), o, L, 8, 8, 0) <= 1e-6);
            }
        }
    }
}

TEST_CASE("spa: more random features, smaller error on the skipped part", "[trained]") {
    // Fixed seeds; error of the output against dense, mean over 8 feature seeds.
    const int L = 256;
    qkv_capture cap = random_capture(L, 1, 1, 8, {0}, 99, "kjv:calib", 0.6f);
    attention_layer_io io = capture_layer_io(cap, 0);
    std::vector<double> ref((size_t) L * 8);
    attention_dense_reference_f64(io, ref.data());
    const head_inputs in = head_inputs_of(io, 0);
    const selection sel = method_create("block_topk:rho=0.2,B=16")->select(in);
    std::map<int, double> err;
    for (int m : {32, 256, 2048}) {
        for (uint64_t seed = 1; seed <= 8; ++seed) {
            std::vector<float> o((size_t) L * 8);
            spa_attend(in, io.v, 8, sel, m, seed, o.data(), 8);
            err[m] += rel_err(ref, o, L, 8, 8, 0) / 8;
        }
    }
    const capture_head ch = capture_head_of(cap, 0, 0);
    const double sparse_only = head_metrics_compute(ch.in, ch.v, ch.v_stride, sel).output_rel_error;
    INFO("err m=32 " << err[32] << " m=256 " << err[256] << " m=2048 " << err[2048] << " sparse only "
                    << sparse_only);
    CHECK(err[256] < err[32]);
    CHECK(err[2048] < err[256]);
    CHECK(err[2048] < 0.5 * err[32]);
    CHECK(err[2048] < sparse_only);
}

// ---------------------------------------------------------------- layer_adaptive

TEST_CASE("layer_adaptive: greedy allocation vs brute-force optimum", "[trained]") {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> U(0.0, 1.0);
    int concave_cases = 0;
    for (int trial = 0; trial < 200; ++trial) {
        const int H = 2 + trial % 2, G = 3 + trial % 3;
        const bool concave = trial % 2 == 0;
        recall_curves c;
        c.n_head = H;
        c.n_layer = 1;
        c.layers = {0};
        for (int g = 0; g < G; ++g) c.grid.push_back(0.1 * (g + 1));
        for (int h = 0; h < H; ++h) {
            head_curve hc;
            hc.head = h;
            double r = U(rng) * 0.5;
            // concave: decreasing gains per equal density step
            std::vector<double> gains(G);
            for (auto & x : gains) x = U(rng) * 0.2;
            if (concave) std::sort(gains.rbegin(), gains.rend());
            for (int g = 0; g < G; ++g) {
                if (g) r += gains[g];
                hc.density.push_back(c.grid[g]);
                hc.recall.push_back(r);
            }
            c.heads.push_back(hc);
        }
        const double budget = c.grid[0] + U(rng) * (c.grid.back() - c.grid[0]);
        const head_allocation a = allocate_greedy(c, budget);
        CHECK(a.mean_density <= budget + 1e-9);
        // brute force over all G^H choices
        double best = -1;
        std::vector<int> k(H, 0);
        while (true) {
            double dens = 0, rec = 0;
            for (int h = 0; h < H; ++h) {
                dens += c.heads[h].density[k[h]] / H;
                rec += c.heads[h].recall[k[h]] / H;
            }
            if (dens <= budget + 1e-12) best = std::max(best, rec);
            int h = 0;
            while (h < H && ++k[h] == G) k[h++] = 0;
            if (h == H) break;
        }
        CHECK(a.mean_recall <= best + 1e-12);
        if (concave) {
            ++concave_cases;
            CHECK(a.mean_recall == Approx(best).epsilon(1e-12));
        }
    }
    CHECK(concave_cases == 100);
}

TEST_CASE("layer_adaptive: calibrated curves, table file and method", "[trained]") {
    std::vector<qkv_capture> caps = {random_capture(200, 3, 1, 8, {0, 4}, 31), random_capture(200, 3, 1, 8, {0, 4}, 32)};
    std::vector<const qkv_capture *> ptrs = {&caps[0], &caps[1]};
    const std::vector<double> grid = {0.1, 0.2, 0.4, 0.7, 1.0};
    const recall_curves c = layer_adaptive_calibrate(ptrs, grid, 16);
    REQUIRE(c.heads.size() == 6);
    CHECK(c.prov.calib_text_sha256 == k_sha_text);
    // each point is block_topk's measured mass recall and block density, averaged over windows
    for (size_t hh = 0; hh < c.heads.size(); ++hh) {
        const int li = (int) hh / 3, h = (int) hh % 3;
        for (size_t g = 0; g < grid.size(); ++g) {
            auto bt = method_create("block_topk:rho=" + std::to_string(grid[g]) + ",B=16");
            double rec = 0, dens = 0;
            for (const auto & cap : caps) {
                const selection s = bt->select(capture_head_of(cap, li, h).in);
                rec += mass_recall(cap, li, h, s) / 2;
                dens += selection_block_density(s) / 2;
            }
            CHECK(c.heads[hh].recall[g] == Approx(rec).epsilon(1e-9));
            CHECK(c.heads[hh].density[g] == Approx(dens).epsilon(1e-12));
        }
        CHECK(c.heads[hh].recall.back() == Approx(1.0).epsilon(1e-9));
    }
    const double budget = 0.5;
    const layer_adaptive_table t = layer_adaptive_build(c, budget);
    CHECK(t.greedy.mean_density <= budget + 1e-9);
    CHECK(t.uniform.mean_density <= budget + 1e-9);
    CHECK(t.uniform.mean_density == Approx(budget).margin(1e-3));
    for (double r : t.uniform.rho) CHECK(r == t.uniform.rho[0]);
    // On its own calibration curves the greedy allocation must beat uniform
    // density at the same budget (measured: greedy 0.5625, uniform 0.5587);
    // the old bound allowed greedy to lose by 0.02.
    INFO("greedy " << t.greedy.mean_recall << " uniform " << t.uniform.mean_recall);
    CHECK(t.greedy.mean_recall > t.uniform.mean_recall);
    CHECK(t.seed.rho.front() == Approx(0.45));       // layer 0
    CHECK(t.seed.rho.back() == Approx(0.125));       // the last layer (4 of 5)
    CHECK(t.seed_scaled.mean_density == Approx(budget).margin(1e-3));
    CHECK(t.greedy.mean_recall >= allocate_greedy(c, 0.3).mean_recall);

    const std::string path = tmp_path("table.json");
    layer_adaptive_save(path, t);
    const layer_adaptive_table u = layer_adaptive_load(path);
    CHECK(u.head_rho == t.head_rho);
    CHECK(u.greedy.mean_recall == Approx(t.greedy.mean_recall));
    CHECK(u.prov.calib_text_sha256 == k_sha_text);
    auto m = method_create("layer_adaptive:rho=0.5,table=" + path + ",B=16");
    REQUIRE(method_provenance(*m));
    CHECK(method_provenance(*m)->file == path);
    for (size_t li = 0; li < 2; ++li)
        for (int h = 0; h < 3; ++h) {
            const head_inputs in = capture_head_of(caps[0], li, h).in;
            const double r = t.head_rho[li * 3 + h];
            CHECK(m->select(in).blk_cols == method_create("block_topk:rho=" + std::to_string(r) + ",B=16")->select(in).blk_cols);
        }
    expect_input_error([&] { method_create("layer_adaptive:rho=0.3,table=" + path + ",B=16"); },
                       "layer_adaptive:rho=0.3,table=" + path + ",B=16", "rho");
    // a table with a field removed or broken names it
    {
        std::ifstream f(path);
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        const std::string bad = tmp_path("table_bad.json");
        const auto write = [&](const std::string & s) { std::ofstream(bad) << s; };
        write(text.substr(0, text.size() / 2));
        expect_input_error([&] { layer_adaptive_load(bad); }, bad, "json");
        std::string no_rho = text;
        no_rho.replace(no_rho.find("\"head_rho\""), 10, "\"head_rhx\"");
        write(no_rho);
        expect_input_error([&] { layer_adaptive_load(bad); }, bad, "head_rho");
        std::string eval = text;
        eval.replace(eval.find("kjv:calib"), 9, "kjv:eval_");
        write(eval);
        expect_input_error([&] { layer_adaptive_load(bad); }, bad, "calib_text_spec");
        std::remove(bad.c_str());
    }
    std::remove(path.c_str());
}

// ---------------------------------------------------------------- hybrid, max_keys

TEST_CASE("hybrid: pooled 95%-mass estimate, dense above delta", "[trained]") {
    for (int L : {1, 40, 300})
        for (int B : {16, 64}) {
            qkv_capture cap = random_capture(L, 2, 1, 8, {0}, 40 + L + B, "kjv:calib", 1.0f);
            const attention_layer_io io = capture_layer_io(cap, 0);
            for (int h = 0; h < 2; ++h) {
                const head_inputs in = head_inputs_of(io, h);
                const hybrid_estimate e = hybrid_estimate_head(in, B, 0.95, 0.5);
                // brute force
                const int nb = (L + B - 1) / B;
                std::vector<std::vector<double>> qm(nb, std::vector<double>(8, 0)), km = qm;
                for (int t = 0; t < L; ++t)
                    for (int x = 0; x < 8; ++x) {
                        const int n = std::min(L, t / B * B + B) - t / B * B;
                        qm[t / B][x] += in.q[t * in.q_stride + x] / n;
                        km[t / B][x] += in.k[t * in.k_stride + x] / n;
                    }
                int64_t kept = 0;
                for (int I = 0; I < nb; ++I) {
                    std::vector<std::pair<double, int>> w;
                    double sum = 0;
                    for (int J = 0; J <= I; ++J) {
                        double s = 0;
                        for (int x = 0; x < 8; ++x) s += qm[I][x] * km[J][x];
                        const double v = (std::min(L, J * B + B) - J * B) * std::exp(s * in.scale);
                        w.push_back({J == 0 || J == I ? 1e300 : v, J});
                        sum += v;
                    }
                    std::stable_sort(w.begin(), w.end(), [](auto a, auto b) { return a.first > b.first; });
                    double got = 0;
                    std::set<int> keep;
                    for (auto & x : w) {
                        const bool forced = x.second == 0 || x.second == I;
                        if (!forced && got >= 0.95 * sum) break;
                        keep.insert(x.second);
                        double s = 0;
                        for (int d = 0; d < 8; ++d) s += qm[I][d] * km[x.second][d];
                        got += (std::min(L, x.second * B + B) - x.second * B) * std::exp(s * in.scale);
                    }
                    kept += (int64_t) keep.size();
                    std::vector<int32_t> row(e.sparse.blk_cols.begin() + e.sparse.blk_ptr[I],
                                             e.sparse.blk_cols.begin() + e.sparse.blk_ptr[I + 1]);
                    CHECK(std::set<int>(row.begin(), row.end()) == keep);
                }
                CHECK(e.density == Approx((double) kept / causal_blocks(L, B, true)));
                auto all_dense = method_create("hybrid:delta=1e-9,B=" + std::to_string(B));
                CHECK(selection_block_density(all_dense->select(in)) == 1.0);
                auto never = method_create("hybrid:delta=1,B=" + std::to_string(B));
                CHECK(never->select(in).blk_cols == e.sparse.blk_cols);
            }
        }
}

TEST_CASE("max_keys caps each row at its best selected keys and reports the spread", "[trained]") {
    for (int L : {1, 50, 200}) {
        qkv_capture cap = random_capture(L, 2, 1, 8, {0}, 60 + L);
        const attention_layer_io io = capture_layer_io(cap, 0);
        for (int k : {1, 7, 64}) {
            const std::string inner = "block_topk:rho=0.5|B=16";
            auto m = method_create("max_keys:k=" + std::to_string(k) + ",inner=" + inner);
            CHECK(m->spec() == "max_keys:k=" + std::to_string(k) + ",inner=block_topk:rho=0.5|B=16");
            CHECK(method_create(m->spec())->spec() == m->spec());
            auto bt = method_create("block_topk:rho=0.5,B=16");
            for (int h = 0; h < 2; ++h) {
                const head_inputs in = head_inputs_of(io, h);
                const selection base = bt->select(in), s = m->select(in);
                REQUIRE(selection_check(s) == "");
                const auto b = dense_of(base), g = dense_of(s);
                int over = 0;
                std::vector<int> counts;
                for (int i = 0; i < L; ++i) {
                    std::vector<std::pair<double, int>> row;
                    for (int j = 0; j <= i; ++j)
                        if (b[(size_t) i * L + j]) row.push_back({-logit(io, h, i, j), j});
                    counts.push_back((int) row.size());
                    over += (int) row.size() > k;
                    std::sort(row.begin(), row.end());
                    std::set<int> want;
                    for (int t = 0; t < std::min<int>(k, (int) row.size()); ++t) want.insert(row[t].second);
                    for (int j = 0; j < L; ++j) CHECK((g[(size_t) i * L + j] != 0) == (want.count(j) > 0));
                }
                const max_keys_report r = max_keys_report_of(base, k);
                CHECK(r.rows_over == over);
                CHECK(r.share_over == Approx((double) over / L));
                CHECK(r.max_keys == *std::max_element(counts.begin(), counts.end()));
                CHECK(r.min_keys == *std::min_element(counts.begin(), counts.end()));
            }
        }
    }
    expect_input_error([] { method_create("max_keys:k=0"); }, "max_keys:k=0", "k");
    expect_input_error([] { method_create("max_keys:inner=nosuch"); }, "max_keys:inner=nosuch", "inner");
}

// ---------------------------------------------------------------- asa_router

TEST_CASE("asa_router: logits, mask rule, training and file", "[trained]") {
    CHECK(router_bucket(0) == 0);
    CHECK(router_bucket(3) == 3);
    CHECK(router_bucket(4) == 4);
    CHECK(router_bucket(5) == 4);
    CHECK(router_bucket(6) == 5);
    CHECK(router_bucket(8) == 6);
    CHECK(router_bucket(1 << 30) == k_router_buckets - 1);

    std::vector<qkv_capture> caps = {random_capture(160, 2, 1, 8, {1}, 70, "kjv:calib", 1.5f),
                                     random_capture(160, 2, 1, 8, {1}, 71, "kjv:calib", 1.5f)};
    router_train_options o;
    o.rank = 4;
    o.steps = 150;
    o.rows = 64;
    o.lr = 3e-2;
    const router_params p = router_train({&caps[0], &caps[1]}, o);
    CHECK(p.mean_final_loss() < p.mean_initial_loss());
    const std::string path = tmp_path("router.safetensors");
    router_save(path, p);
    const router_params q = router_load(path);
    CHECK(q.uq == p.uq);
    CHECK(q.prior == p.prior);
    CHECK(q.prov.calib_text_sha256 == k_sha_text);

    const attention_layer_io io = capture_layer_io(caps[0], 0);
    for (int h = 0; h < 2; ++h) {
        const head_inputs in = head_inputs_of(io, h);
        const std::vector<double> z = router_logits(p, 0, h, in);
        const int L = 160, d = 8, r = 4;
        // brute-force logits
        for (int i = 0; i < L; i += 13)
            for (int j = 0; j <= i; j += 7) {
                double want = 0;
                for (int a = 0; a < r; ++a) {
                    double x = 0, y = 0;
                    for (int t = 0; t < d; ++t) {
                        x += (double) in.q[i * in.q_stride + t] * p.uq[((size_t) h * d + t) * r + a];
                        y += (double) in.k[j * in.k_stride + t] * p.uk[((size_t) h * d + t) * r + a];
                    }
                    want += x * y;
                }
                want += p.prior[h * k_router_buckets + router_bucket(i - j)] + (j == 0 ? p.sink[h] : 0.0f);
                CHECK(z[(size_t) i * L + j] == Approx(want).epsilon(1e-9).margin(1e-9));
            }
        for (double theta : {0.0, 0.01, 0.2})
            for (double rho : {0.1, 0.5}) {
                auto m = method_create("asa_router:theta=" + std::to_string(theta) + ",rho=" + std::to_string(rho) +
                                           ",B=32,params=" + path);
                const selection s = m->select(in);
                REQUIRE(selection_check(s) == "");
                CHECK(s.token_level);
                const auto g = dense_of(s);
                for (int i = 0; i < L; ++i) {
                    std::set<int> want = {i};
                    double mx = -1e300, sum = 0;
                    for (int j = 0; j <= i; ++j) mx = std::max(mx, z[(size_t) i * L + j]);
                    for (int j = 0; j <= i; ++j) sum += std::exp(z[(size_t) i * L + j] - mx);
                    if (theta > 0) {
                        for (int j = 0; j <= i; ++j)
                            if (std::exp(z[(size_t) i * L + j] - mx) / sum >= theta) want.insert(j);
                    } else {
                        const int budget = std::min(i + 1, std::max(1, (int) std::ceil(rho * (i + 1) - 1e-9)));
                        std::vector<std::pair<double, int>> row;
                        for (int j = 0; j <= i; ++j)
                            if (j != i) row.push_back({-z[(size_t) i * L + j], j});
                        std::sort(row.begin(), row.end());
                        for (int t = 0; (int) want.size() < budget; ++t) want.insert(row[t].second);
                    }
                    for (int j = 0; j < L; ++j) CHECK((g[(size_t) i * L + j] != 0) == (want.count(j) > 0));
                }
                CHECK(selection_block_density(s) >= selection_token_density(s));
                CHECK(method_provenance(*m)->calib_text_sha256 == k_sha_text);
            }
    }
    const std::string bad = tmp_path("router_bad.safetensors");
    rewrite(path, bad, [](std::map<std::string, std::string> & md) { md.erase("rank"); });
    expect_input_error([&] { router_load(bad); }, bad, "rank");
    rewrite(path, bad, [](std::map<std::string, std::string> &) {}, "prior");
    expect_input_error([&] { router_load(bad); }, bad, "prior");
    std::remove(path.c_str());
    std::remove(bad.c_str());
}

TEST_CASE("trained registry: names, canonical specs, errors", "[trained]") {
    for (const char * n : {"spa", "hybrid", "max_keys"}) {
        auto m = method_create(n);
        CHECK(m->name() == n);
        CHECK(method_create(m->spec())->spec() == m->spec());
        for (const auto & p : method_find(n)->params) CHECK(m->spec().find(p.key + "=") != std::string::npos);
    }
    CHECK(method_create("spa:m=8")->spec() == "spa:rho=0.2,m=8,seed=0,B=64");
    CHECK(method_create("block_topk:rho=0.3")->spec() == "block_topk:rho=0.3,B=64");
    expect_input_error([] { method_create("spa:m=0"); }, "spa:m=0", "m");
    expect_input_error([] { method_create("spa:q=1"); }, "spa:q=1", "q");
    expect_input_error([] { method_create("hybrid:delta=0"); }, "hybrid:delta=0", "delta");
    expect_input_error([] { method_create("asa_router"); }, "asa_router", "params");
    expect_input_error([] { method_create("layer_adaptive"); }, "layer_adaptive", "table");
    // One table: a trained name is found like any other, an unknown one is refused by name.
    expect_input_error([] { method_create(method_spec_parse("nosuch_trained")); }, "nosuch_trained", "name");
}

// ---------------------------------------------------------------- real model

TEST_CASE("a gate trains on real calibration captures of the default model", "[trained]") {
    const std::string mp = attnlab_test::default_model_path();
    if (!attnlab_test::need_asset(mp) || !attnlab_test::need_asset(attnlab_test::kjv_path())) return;
    const auto t0 = std::chrono::steady_clock::now();
    llama_model m = llama_model_load(mp);
    bpe_tokenizer tok = tokenizer_load(mp);
    const text_source calib = text_load("kjv:calib");
    const std::vector<int> layers = {2, 15, 28};
    // capturing calibration windows from evaluation text is refused
    try {
        calib_capture_windows(m, tok, text_load("kjv:eval"), 64, 1, layers);
        FAIL_CHECK("captured evaluation text as calibration");
    } catch (const input_error & e) {
        CHECK(e.field() == "text part");
        CHECK(e.file() == "kjv:eval");
    }
    const auto tl = std::chrono::steady_clock::now();
    // Two windows (one trains, one is held out): a forward pass of 256 tokens
    // costs seconds on 2 cores, and the test must stay short.
    std::vector<qkv_capture> caps = calib_capture_windows(m, tok, calib, 256, 2, layers);
    const double capture_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - tl).count();
    REQUIRE(caps.size() == 2);
    CHECK(caps[0].info.text_sha256 == calib.sha256);
    CHECK(caps[0].info.token_ids != caps[1].info.token_ids);
    gate_train_options o;
    o.block = 16;
    o.d_g = 16;
    o.steps = 150;
    o.lr = 2e-2;
    const auto t1 = std::chrono::steady_clock::now();
    const gate_params p = gate_train({&caps[0], &caps[1]}, o);
    CHECK(p.val_windows == 1);
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    CHECK(p.prov.calib_text_sha256 == calib.sha256);
    CHECK(p.prov.model_sha256 == m.source_sha256);
    CHECK(p.mean_final_loss() < p.mean_initial_loss());

    // Evaluation: the first 256 tokens of the New Testament (a prefix is
    // tokenised: the whole part takes long on 2 cores).
    const text_source eval = text_load("kjv:eval");
    std::vector<int32_t> ids = tok.encode(std::string_view(eval.text).substr(0, 4096));
    if (tok.add_bos()) ids.insert(ids.begin(), tok.bos_id());
    ids.resize(256);
    capture_options co;
    co.ctx = 256;
    co.layers = layers;
    const qkv_capture ev = capture_run_ids(m, ids, co);
    auto gp = std::make_shared<gate_params>(p);
    auto rp = std::make_shared<gate_params>(gate_random(p.n_head, p.head_dim, layers, 16, 16, 0));
    auto bt = method_create("block_topk:rho=0.25,B=16");
    double r_gate = 0, r_rnd = 0, r_bt = 0;
    const int n = (int) layers.size() * p.n_head;
    for (size_t li = 0; li < layers.size(); ++li)
        for (int h = 0; h < p.n_head; ++h) {
            const head_inputs in = capture_head_of(ev, li, h).in;
            r_gate += mass_recall(ev, li, h, learned_gate_method(gp, 0.25, 0, "g").select(in)) / n;
            r_rnd += mass_recall(ev, li, h, learned_gate_method(rp, 0.25, 0, "g").select(in)) / n;
            r_bt += mass_recall(ev, li, h, bt->select(in)) / n;
        }
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    WARN("real model, ctx 256, B=16, rho=0.25, layers 2/15/28: gate recall " << r_gate << ", random gate " << r_rnd
                                                                            << ", block_topk " << r_bt << "; KL "
                                                                            << p.mean_initial_loss() << " -> "
                                                                            << p.mean_final_loss() << " (held out " << p.mean_val_loss()
                                                                            << "); load " << std::chrono::duration<double>(tl - t0).count()
                                                                            << " s, capture " << capture_s << " s, training "
                                                                            << train_s << " s, test " << total_s << " s");
    CHECK(r_gate > r_rnd);
}

// The measured figures of the report (hidden: minutes on 2 cores). Gate and
// layer_adaptive fitted on calibration windows, measured on evaluation text.
// Runs only with ATTNLAB_TRAINED_REPORT=1; ATTNLAB_REPORT_CTX / _WINDOWS
// override the sizes.
TEST_CASE("report: gate vs block_topk on real calibration -> evaluation captures", "[trained][.report]") {
    if (!std::getenv("ATTNLAB_TRAINED_REPORT")) return;
    const std::string mp = attnlab_test::default_model_path();
    if (!attnlab_test::need_asset(mp) || !attnlab_test::need_asset(attnlab_test::kjv_path())) return;
    const int ctx = std::getenv("ATTNLAB_REPORT_CTX") ? std::atoi(std::getenv("ATTNLAB_REPORT_CTX")) : 1024;
    const int windows = std::getenv("ATTNLAB_REPORT_WINDOWS") ? std::atoi(std::getenv("ATTNLAB_REPORT_WINDOWS")) : 5;
    const int B = 64;
    using clk = std::chrono::steady_clock;
    const auto secs = [](clk::time_point a) { return std::chrono::duration<double>(clk::now() - a).count(); };
    llama_model m = llama_model_load(mp);
    bpe_tokenizer tok = tokenizer_load(mp);
    auto t = clk::now();
    std::vector<qkv_capture> caps = calib_capture_windows(m, tok, text_load("kjv:calib"), ctx, windows, {});
    std::vector<const qkv_capture *> ptrs;
    for (auto & c : caps) ptrs.push_back(&c);
    std::cout << "calibration capture: " << windows << " x " << ctx << " tokens, " << secs(t) << " s\n";
    const text_source eval = text_load("kjv:eval");
    std::vector<int32_t> ids = tok.encode(std::string_view(eval.text).substr(0, (size_t) ctx * 8));
    if (tok.add_bos()) ids.insert(ids.begin(), tok.bos_id());
    ids.resize(ctx);
    capture_options co;
    co.ctx = ctx;
    qkv_capture ev = capture_run_ids(m, ids, co);

    t = clk::now();
    gate_train_options o;
    o.block = B;
    o.d_g = 32;
    o.steps = 300;
    o.lr = 1e-2;
    const gate_params p = gate_train(ptrs, o);
    const double train_s = secs(t);
    std::cout << "gate training: " << p.layers.size() * p.n_head << " heads, " << train_s << " s; KL train "
              << p.mean_initial_loss() << " -> " << p.mean_final_loss() << ", held out " << p.mean_val_loss() << "\n";
    CHECK(p.mean_final_loss() < p.mean_initial_loss());
    auto gp = std::make_shared<gate_params>(p);
    auto rp = std::make_shared<gate_params>(gate_random(p.n_head, p.head_dim, p.layers, B, 32, 0));
    const int n = (int) ev.layers.size() * p.n_head;
    for (double rho : {0.1, 0.2, 0.3}) {
        auto bt = method_create("block_topk:rho=" + std::to_string(rho) + ",B=64");
        auto orc = method_create("oracle_topk:rho=" + std::to_string(rho) + ",B=64");
        double rg = 0, rr = 0, rb = 0, dg = 0, db = 0;
        for (size_t li = 0; li < ev.layers.size(); ++li)
            for (int h = 0; h < p.n_head; ++h) {
                const head_inputs in = capture_head_of(ev, li, h).in;
                const selection sg = learned_gate_method(gp, rho, 0, "g").select(in);
                const selection sb = bt->select(in);
                rg += mass_recall(ev, li, h, sg) / n;
                rr += mass_recall(ev, li, h, learned_gate_method(rp, rho, 0, "g").select(in)) / n;
                rb += mass_recall(ev, li, h, sb) / n;
                dg += selection_block_density(sg) / n;
                db += selection_block_density(sb) / n;
            }
        std::cout << "rho " << rho << ": block density gate " << dg << " block_topk " << db << "; mass recall gate " << rg
                  << ", block_topk " << rb << ", random gate " << rr << "\n";
        // trained beats untrained at the same rho, where the budget leaves a
        // choice beyond the forced diagonal and block 0 (at ctx 1024 and
        // rho 0.1, or ctx 256, it does not: equal there; measured at ctx 1024,
        // 2 windows: 0.814 vs 0.791 at rho 0.2, 0.857 vs 0.815 at 0.3)
        CHECK(rg >= rr - 1e-12);
        if (ctx >= 1024 && rho >= 0.2) CHECK(rg > rr);
        CHECK(dg == Approx(db).margin(1e-9));   // same budget rule: same block density
    }
    t = clk::now();
    const recall_curves c = layer_adaptive_calibrate(ptrs, {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0}, B);
    const layer_adaptive_table tab = layer_adaptive_build(c, 0.3);
    std::cout << "uniform rho " << tab.uniform.rho[0] << "\n";
    std::cout << "layer_adaptive (budget block density 0.3, calibration " << secs(t) << " s): mean recall greedy "
              << tab.greedy.mean_recall << " (density " << tab.greedy.mean_density << "), uniform " << tab.uniform.mean_recall
              << " (" << tab.uniform.mean_density << "), seed schedule " << tab.seed.mean_recall << " ("
              << tab.seed.mean_density << "), seed scaled " << tab.seed_scaled.mean_recall << " ("
              << tab.seed_scaled.mean_density << ")\n";
    CHECK(tab.greedy.mean_recall >= tab.uniform.mean_recall);   // on its own curves, at the same budget
    // and measured on the evaluation capture
    const std::string path = tmp_path("report_table.json");
    layer_adaptive_save(path, tab);
    auto la = method_create("layer_adaptive:rho=0.3,table=" + path + ",B=64");
    auto u = method_create("block_topk:rho=" + std::to_string(tab.uniform.rho[0]) + ",B=64");
    double rl = 0, ru = 0, dl = 0, du = 0;
    for (size_t li = 0; li < ev.layers.size(); ++li)
        for (int h = 0; h < p.n_head; ++h) {
            const head_inputs in = capture_head_of(ev, li, h).in;
            const selection a = la->select(in), b = u->select(in);
            rl += mass_recall(ev, li, h, a) / n;
            ru += mass_recall(ev, li, h, b) / n;
            dl += selection_block_density(a) / n;
            du += selection_block_density(b) / n;
        }
    std::cout << "evaluation: layer_adaptive recall " << rl << " (block density " << dl << "), uniform block_topk " << ru
              << " (" << du << ")\n";
    std::remove(path.c_str());
}

TEST_CASE("spa patched through sparse_attention_hook applies its low-rank term", "[trained]") {
    // The hook must run spa's own compute, not block_topk's kernel on the same
    // selection: the outputs differ when something is skipped, and spa's is
    // what spa_attend computes.
    const int L = 200;
    qkv_capture cap = random_capture(L, 4, 2, 16, {0}, 77, "kjv:calib", 0.7f);
    attention_layer_io io = capture_layer_io(cap, 0);
    std::vector<float> out_spa((size_t) L * 4 * 16, NAN), out_topk((size_t) L * 4 * 16, NAN), out_ref((size_t) L * 4 * 16, NAN);
    auto spa = method_create("spa:rho=0.2,m=64,seed=5,B=16");
    auto topk = method_create("block_topk:rho=0.2,B=16");
    sparse_attention_hook hs(std::shared_ptr<const sparse_method>(std::move(spa)));
    sparse_attention_hook ht(std::shared_ptr<const sparse_method>(std::move(topk)));
    io.out = out_spa.data();
    REQUIRE(hs.attend(io));
    io.out = out_topk.data();
    REQUIRE(ht.attend(io));
    double diff = 0;
    for (size_t i = 0; i < out_spa.size(); ++i) diff = std::max(diff, (double) std::fabs(out_spa[i] - out_topk[i]));
    CHECK(diff > 1e-4);
    // the same as calling spa_attend directly on block_topk's selection
    auto spa2 = method_create("spa:rho=0.2,m=64,seed=5,B=16");
    const auto * sm = dynamic_cast<const spa_method *>(spa2.get());
    REQUIRE(sm);
    for (int h = 0; h < io.n_head; ++h) {
        head_inputs in = head_inputs_of(io, h);
        selection sel = sm->select(in);
        spa_attend(in, io.v + (int64_t) io.kv_head_of(h) * io.head_dim, (int64_t) io.n_head_kv * io.head_dim, sel,
                   sm->features(), sm->seed(), out_ref.data() + (int64_t) h * io.head_dim, (int64_t) io.n_head * io.head_dim);
    }
    double d2 = 0;
    for (size_t i = 0; i < out_spa.size(); ++i) d2 = std::max(d2, (double) std::fabs(out_spa[i] - out_ref[i]));
    CHECK(d2 <= 1e-6);
}
