// Cost simulator: arithmetic against hand-computed values, preset loader
// errors, roofline boundaries, block plans, calibration and regimes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>

#include "base/error.h"
#include "methods/method.h"
#include "lab/regime_budget.h"
#include "sim/calibration.h"
#include "sim/claims.h"
#include "sim/cost.h"
#include "sim/presets.h"
#include "sim/regimes.h"
#include "base/data_path.h"

using namespace attnlab;

namespace {

std::string presets() { return attnlab::data_path("assets/presets"); }

std::string write_temp(const std::string & name, const std::string & text) {
    std::string path = "/tmp/attnlab_test_sim_" + std::to_string(getpid()) + "_" + name;
    std::ofstream(path) << text;
    return path;
}

// The field an input_error names, or "" when f does not throw one.
template <class F>
std::string error_field(F f, std::string * msg = nullptr) {
    try {
        f();
    } catch (const input_error & e) {
        if (msg) *msg = e.what();
        return e.field();
    }
    return "";
}

const char * k_good_model = R"({"kind": "model", "name": "tiny",
  "n_layer": {"value": 2, "source": "s"}, "hidden": {"value": 64, "source": "s"},
  "n_head": {"value": 4, "source": "s"}, "n_head_kv": {"value": 2, "source": "s"},
  "head_dim": {"value": 16, "source": "s"}, "ffn": {"value": 128, "source": "s"},
  "vocab": {"value": 100, "source": "s"}, "context": {"value": 256, "source": "s"}})";

} // namespace

TEST_CASE("sim: Llama-3-8B parameter count and prefill FLOPs match the closed form", "[sim]") {
    model_preset m = model_preset_load("llama-3-8b", presets());
    hw_preset h = hw_preset_load("h100-sxm", presets());
    // hand: q 4096x4096, k and v 4096x1024, o 4096x4096, MLP 3 x 4096x14336
    const double p_layer = 4096.0 * 4096 + 2 * 4096.0 * 1024 + 4096.0 * 4096 + 3 * 4096.0 * 14336;
    REQUIRE(double(m.layer_matmul_params()) == p_layer);
    REQUIRE(p_layer == 218103808.0);
    // + 2 norms per layer, embedding and lm_head (untied), final norm: the published 8.03B
    REQUIRE(m.total_params() == 8030261248LL);

    const double L = 8192;
    sim_options o;
    o.ctx = 8192;
    o.logits_all = true;
    sim_result r = sim_run(m, h, sim_method(), o);
    // 2 * matmul params * L + causal attention 4 * head_dim * heads * L(L+1)/2 per layer
    const double matmul_params = 32 * p_layer + 128256.0 * 4096;
    const double attn = 32 * 4.0 * 128 * 32 * L * (L + 1) / 2;
    const double closed = 2 * matmul_params * L + attn;
    CHECK(r.flops == Approx(closed).epsilon(1e-12));
    CHECK(r.flops == Approx(1.4055e14).epsilon(1e-3));  // 2 x 7.50e9 x 8192 + 1.76e13

    // serving prefill: logits for the last position only
    o.logits_all = false;
    sim_result s = sim_run(m, h, sim_method(), o);
    CHECK(s.flops == Approx(2 * 32 * p_layer * L + 2 * 128256.0 * 4096 + attn).epsilon(1e-12));
    CHECK(s.label == "simulated");
}

TEST_CASE("sim: KV cache, decode FLOPs and score memory", "[sim]") {
    model_preset m = model_preset_load("llama-3-8b", presets());
    hw_preset h = hw_preset_load("h100-sxm", presets());
    // 2 (K, V) x 32 layers x 8 KV heads x 128 dims x 2 bytes = 128 KiB per token
    CHECK(sim_kv_cache_bytes(m, 8192, 2) == 1073741824.0);
    sim_options o;
    o.ctx = 8192;
    o.phase = sim_phase::decode;
    sim_result d = sim_run(m, h, sim_method(), o);
    CHECK(d.mem_kv_cache == 131072.0 * 8193);
    double attn = 0;
    for (const auto & c : d.layer) if (c.name == "attention") attn = c.flops;
    CHECK(attn == 4.0 * 128 * 32 * 8193);  // one query against L + 1 keys
    CHECK(d.layer_memory_bound);           // batch 1 decode reads every weight for one token

    // naive prefill materialises L x L per head: 128,000^2 x 2 bytes = 32.768 GB
    o.phase = sim_phase::prefill;
    o.ctx = 128000;
    o.impl = attn_impl::naive;
    sim_result n = sim_run(m, h, sim_method(), o);
    CHECK(n.score_bytes_naive_head == 32.768e9);
    CHECK(n.score_bytes_naive_layer == 32 * 32.768e9);
    CHECK_FALSE(n.fits);
    o.impl = attn_impl::flash;
    sim_result f = sim_run(m, h, sim_method(), o);
    CHECK(f.mem_scores == 32 * 128000.0 * 4);
}

TEST_CASE("sim: seed claims against exact arithmetic", "[sim]") {
    CHECK(claim_scores_bytes(128000, 2) == 32768000000.0);
    CHECK(claim_topk_bytes(131072, 256, 2) == 64.0 * 1024 * 1024);
    std::vector<claim_row> rows = seed_claims_check(presets());
    REQUIRE(rows.size() >= 10);
    CHECK(rows[0].exact == Approx(32.768).epsilon(1e-12));
    CHECK(rows[0].claimed == 25.0);
    CHECK(rows[0].verdict.find("off") == 0);
    CHECK(rows[1].exact == Approx(64.0).epsilon(1e-12));
    bool saw_70b = false, saw_13b = false;
    for (const auto & r : rows) {
        if (r.quantity.find("Llama-3-70B") != std::string::npos) {
            saw_70b = true;
            CHECK(r.exact == Approx(64 * 32.768).epsilon(1e-12));
        }
        if (r.quantity.find("Llama-2-13B weights") != std::string::npos) {
            saw_13b = true;
            CHECK(r.exact > 26.0);  // 13.0B params x 2 bytes
            CHECK(r.verdict.find("impossible") == 0);
        }
    }
    CHECK(saw_70b);
    CHECK(saw_13b);
}

TEST_CASE("sim: roofline boundary cases", "[sim]") {
    bool mem = true;
    // at the ridge point both times are equal: compute-bound by convention
    CHECK(roofline_time(1000.0, 10.0, 100.0, 1.0, &mem) == 10.0);
    CHECK_FALSE(mem);
    CHECK(roofline_time(1000.0, 10.0 + 1e-9, 100.0, 1.0, &mem) > 10.0);
    CHECK(mem);
    CHECK(roofline_time(1000.0 + 1e-6, 10.0, 100.0, 1.0, &mem) > 10.0);
    CHECK_FALSE(mem);

    hw_preset h = hw_preset_load("h100-sxm", presets());
    CHECK(h.ridge_flop_per_byte() == Approx(989.4e12 / 3350e9));
    model_preset m = model_preset_load("llama-3-8b", presets());
    sim_options o;
    o.ctx = 8192;
    sim_result r = sim_run(m, h, sim_method(), o);
    for (const auto & c : r.layer) {
        if (c.name == "linear") CHECK_FALSE(c.memory_bound);  // 8192 tokens per weight read
        CHECK(c.time_s == std::max(c.compute_s, c.memory_s));
    }
    // decode with a batch past the ridge point turns the linear layers compute-bound
    o.phase = sim_phase::decode;
    o.ctx = 1024;
    o.batch = 1;
    CHECK(sim_run(m, h, sim_method(), o).layer[0].memory_bound);
    o.batch = 1024;
    CHECK_FALSE(sim_run(m, h, sim_method(), o).layer[0].memory_bound);
}

TEST_CASE("sim: block plans", "[sim]") {
    sim_method dense;
    // L not a multiple of B: pairs stay exactly L(L+1)/2
    for (int64_t L : {1, 63, 64, 65, 1000, 4096}) {
        sim_attention_plan p = sim_attention_plan_make(dense, L, sim_phase::prefill);
        CHECK(p.pairs == double(L) * (L + 1) / 2);
        CHECK(p.block_density == 1.0);
    }
    sim_method s = sim_method_parse("density:rho=0.25");
    sim_attention_plan p = sim_attention_plan_make(s, 65536, sim_phase::prefill);
    CHECK(p.block_density == Approx(0.25).margin(0.002));
    // keeps ceil(rho (I+1)) per row, at least the diagonal and block 0
    sim_attention_plan small = sim_attention_plan_make(s, 64 * 3, sim_phase::prefill);
    CHECK(small.kept_blocks == 1 + 2 + 2);
    sim_method w = sim_method_parse("window:w=64");
    sim_attention_plan pw = sim_attention_plan_make(w, 64 * 10, sim_phase::prefill);
    CHECK(pw.kept_blocks == 1 + 9 * 2);  // rows reach back into the previous block
    CHECK(sim_attention_plan_make(w, 1000, sim_phase::decode).pairs == 64 + (1000 - 15 * 64 + 1));

    CHECK(error_field([] { sim_method_parse("density"); }) == "method.rho");
    CHECK(error_field([] { sim_method_parse("density:rho=2"); }) == "method.rho");
    CHECK(error_field([] { sim_method_parse("window:w=3,B=48"); }) == "method.B");
    CHECK(error_field([] { sim_method_parse("magic"); }) == "method");
    CHECK(sim_method_spec(sim_method_parse("block_topk:rho=0.2,overhead=0.03")) == "block_topk:rho=0.2,B=64,overhead=0.03");
}

TEST_CASE("sim: every registry method's default spec is priced or clearly refused", "[sim]") {
    for (const method_info & e : method_registry()) {
        INFO(e.name);
        std::string msg;
        sim_method m;
        const std::string field = error_field([&] { m = sim_method_parse(e.name); }, &msg);
        if (e.cost == method_cost::none) {
            CHECK(field == "method");
            CHECK(msg.find("the simulator does not model " + e.name) != std::string::npos);
            continue;
        }
        CHECK(field == "");
        CHECK(m.name == e.name);
        CHECK(m.family == e.family);
        // the registry's defaults, read by the one resolver
        const method_args a = method_args_resolve(method_spec_parse(e.name), e);
        CHECK(m.block == a.integer("B"));
        if (e.cost == method_cost::block_density) CHECK(m.density == a.real("rho"));
        if (e.cost == method_cost::window) CHECK(m.window == a.integer("w"));
        // the sim spec reads back to the same priced method
        const sim_method back = sim_method_parse(sim_method_spec(m));
        CHECK(sim_method_spec(back) == sim_method_spec(m));
    }
    // the same grammar: spaces, the density alias, the sim-only keys
    const sim_method b = sim_method_parse(" block_topk : density = 0.3 , B=128, eff=0.5 ");
    CHECK(b.density == 0.3);
    CHECK(b.block == 128);
    CHECK(b.kernel_eff == 0.5);
    CHECK(error_field([] { sim_method_parse("window:w=4,w=5"); }) == "method.w");
    CHECK(error_field([] { sim_method_parse("block_topk:eff=0"); }) == "method.eff");
    CHECK(error_field([] { sim_method_parse("dense:rho=0.5"); }) == "method.rho");
}

TEST_CASE("sim: sparse prefill saves attention, not the linear layers", "[sim]") {
    model_preset m = model_preset_load("llama-3-8b", presets());
    hw_preset h = hw_preset_load("h100-sxm", presets());
    sim_options o;
    o.ctx = 131072;
    sim_result d = sim_run(m, h, sim_method(), o);
    sim_result s = sim_run(m, h, sim_method_parse("density:rho=0.2,overhead=0.02"), o);
    CHECK(s.layer[0].flops == d.layer[0].flops);
    CHECK(s.layer[1].flops / d.layer[1].flops == Approx(s.plan.pairs / d.plan.pairs));
    CHECK(s.layer[2].name == "predictor");
    CHECK(s.layer[2].flops == Approx(0.02 * d.layer[1].flops));
    CHECK(s.time_s < d.time_s);
    // the naive implementation computes the full matrix whatever the mask
    o.impl = attn_impl::naive;
    o.ctx = 8192;
    sim_result nd = sim_run(m, h, sim_method(), o);
    sim_result ns = sim_run(m, h, sim_method_parse("density:rho=0.2"), o);
    CHECK(ns.layer[1].flops == nd.layer[1].flops);
    // cost per million tokens at a price
    o.impl = attn_impl::flash;
    o.price_per_hour = 3.6;
    sim_result c = sim_run(m, h, sim_method(), o);
    CHECK(c.cost_per_mtok == Approx(3.6 / 3600 * c.time_s / 8192 * 1e6));
}

TEST_CASE("sim: preset loader errors name the file and field", "[sim]") {
    std::string msg;
    CHECK(model_preset_parse(k_good_model, "t.json").n_head == 4);
    CHECK(error_field([] { model_preset_parse("{not json", "bad.json"); }, &msg) == "json");
    CHECK(msg.find("bad.json") == 0);
    std::string no_src = k_good_model;
    no_src.replace(no_src.find(R"("value": 4, "source": "s")"), 26, R"("value": 4})");
    CHECK(error_field([&] { model_preset_parse(no_src, "x.json"); }) == "n_head.source");
    std::string frac = k_good_model;
    frac.replace(frac.find(R"("value": 64)"), 11, R"("value": 6.5)");
    CHECK(error_field([&] { model_preset_parse(frac, "x.json"); }) == "hidden.value");
    std::string kv = k_good_model;
    kv.replace(kv.find(R"("n_head_kv": {"value": 2)"), 24, R"("n_head_kv": {"value": 3)");
    CHECK(error_field([&] { model_preset_parse(kv, "x.json"); }) == "n_head_kv");
    CHECK(error_field([] { model_preset_parse(R"({"kind": "hardware", "name": "x"})", "x.json"); }) == "kind");
    CHECK(error_field([] { model_preset_parse(R"({"kind": "model", "name": "x"})", "x.json"); }) == "n_layer");

    const char * hw = R"({"kind": "hardware", "name": "g", "precision": "bf16",
      "dense_tflops": {"value": 1979, "source": "s"}, "sparse_2to4_tflops": {"value": 1979, "source": "s"},
      "mem_bw": {"value": 3350, "source": "s"}, "mem": {"value": 80, "source": "s"}})";
    CHECK(error_field([&] { hw_preset_parse(hw, "g.json"); }, &msg) == "dense_tflops.value");
    CHECK(msg.find("2:4") != std::string::npos);
    CHECK(error_field([] { hw_preset_parse(R"({"kind": "hardware", "name": "g", "precision": "int3",
      "dense_tflops": {"value": 1, "source": "s"}, "mem_bw": {"value": 1, "source": "s"}, "mem": {"value": 1, "source": "s"}})", "g.json"); }) == "precision");
    CHECK(error_field([] { hw_preset_parse(R"({"kind": "hardware", "name": "g",
      "dense_tflops": {"value": -1, "source": "s"}, "mem_bw": {"value": 1, "source": "s"}, "mem": {"value": 1, "source": "s"}})", "g.json"); }) == "dense_tflops.value");

    CHECK(error_field([] { model_preset_load("no-such-model", presets()); }, &msg) == "models");
    CHECK(msg.find("llama-3-8b") != std::string::npos);  // lists what exists
    CHECK(error_field([] { model_preset_load("/nonexistent/m.json"); }) == "file");
    std::string p = write_temp("m.json", k_good_model);
    CHECK(model_preset_load(p).name == "tiny");
    std::remove(p.c_str());
}

TEST_CASE("sim: every shipped preset loads and is consistent", "[sim]") {
    std::vector<std::string> models = preset_list("models", presets());
    std::vector<std::string> hws = preset_list("hardware", presets());
    for (const char * want : {"smollm2-135m", "llama-3-8b", "llama-3-70b", "mistral-7b", "qwen2.5-7b"}) {
        CHECK(std::find(models.begin(), models.end(), want) != models.end());
    }
    for (const char * want : {"a100-80gb-sxm", "h100-sxm", "h200", "b200", "cpu-this-machine"}) {
        CHECK(std::find(hws.begin(), hws.end(), want) != hws.end());
    }
    for (const auto & n : models) {
        model_preset m = model_preset_load(n, presets());
        CHECK(m.sources.size() >= 8);
    }
    for (const auto & n : hws) {
        hw_preset h = hw_preset_load(n, presets());
        if (h.sparse_2to4_tflops > 0) CHECK(h.dense_tflops * 2 == Approx(h.sparse_2to4_tflops).epsilon(0.01));
    }
    CHECK(hw_preset_load("cpu-this-machine", presets()).measured);
    // published sizes: SmolLM2 135M (tied), Llama-3-70B 70.6B, Qwen2.5-7B 7.62B, Mistral-7B 7.24B
    CHECK(model_preset_load("smollm2-135m", presets()).total_params() == Approx(134.5e6).epsilon(0.01));
    CHECK(model_preset_load("llama-3-70b", presets()).total_params() == Approx(70.55e9).epsilon(0.005));
    CHECK(model_preset_load("qwen2.5-7b", presets()).total_params() == Approx(7.615e9).epsilon(0.005));
    CHECK(model_preset_load("mistral-7b", presets()).total_params() == Approx(7.24e9).epsilon(0.005));
}

TEST_CASE("sim: calibration from bench rows", "[sim]") {
    hw_preset h = hw_preset_load("h100-sxm", presets());
    const double peak = h.dense_tflops * 1e12;
    // synthetic rows whose efficiency depends on density only: 0.6, 0.5, 0.4
    std::string rows = "[";
    const double rho[3] = {1.0, 0.5, 0.25};
    const double eff[3] = {0.6, 0.5, 0.4};
    const char * kern[3] = {"flash_dense", "block_sparse", "block_sparse"};
    bool first = true;
    for (int L : {4096, 8192, 16384}) {
        for (int k = 0; k < 3; k++) {
            bench_row r;
            r.L = L;
            r.head_dim = 128;
            r.density = rho[k];
            r.batch = 1;
            r.heads = 32;
            const double work = bench_row_work(r);  // from the block plan: no tflops given
            const double ms = work / (peak * eff[k]) * 1e3;
            char buf[400];
            std::snprintf(buf, sizeof(buf),
                          R"(%s{"device": "NVIDIA H100 80GB HBM3", "L": %d, "head_dim": 128, "causal": true, "density": %g, "kernel": "%s", "ms": %.17g, "tflops": %.17g, "batch": 1, "heads": 32})",
                          first ? "" : ",", L, rho[k], kern[k], ms, work / ms / 1e9);
            rows += buf;
            first = false;
        }
    }
    rows += R"(, {"device": "NVIDIA A100-SXM4-80GB", "L": 4096, "head_dim": 128, "causal": true, "density": 1, "kernel": "flash_dense", "ms": 1, "tflops": 100}])";
    std::vector<bench_row> br = bench_rows_parse(rows, "bench.json");
    REQUIRE(br.size() == 10);
    sim_calibration c = calibration_fit(br, h, 128);
    REQUIRE(c.points.size() == 3);
    CHECK(c.efficiency(1.0) == Approx(0.6));
    CHECK(c.efficiency(0.25) == Approx(0.4));
    CHECK(c.efficiency(0.375) == Approx(0.45));  // linear between points
    CHECK(c.efficiency(0.1) == Approx(0.4));     // clamped
    std::vector<calib_point> pts = calibration_check(br, h);
    REQUIRE(pts.size() == 9);  // the A100 row is not this hardware's
    for (const auto & p : pts) {
        CHECK(p.leave_one_out);
        CHECK(std::fabs(p.error) < 1e-9);
        CHECK(p.datasheet_error < -0.3);  // the datasheet peak predicts too fast
    }
    // the calibrated simulator uses peak x measured efficiency for attention
    model_preset m = model_preset_load("llama-3-8b", presets());
    sim_options o;
    o.ctx = 8192;
    o.calib = &c;
    sim_result r = sim_run(m, h, sim_method_parse("density:rho=0.5"), o);
    CHECK(r.layer[1].peak_used_tflops == Approx(h.dense_tflops * c.efficiency(r.plan.block_density)));
    CHECK(r.calibrated);

    CHECK(c.dense_kernel == "flash_dense");
    CHECK(c.sparse_kernel == "block_sparse");

    // bench/gpu/bench.py's layout: device, B, H, block in meta; D, method, time_ms
    // in rows; the gate row (null density and tflops) is skipped. Two dense
    // kernels: the faster one calibrates dense attention.
    const char * gpu = R"J({"meta": {"device": "NVIDIA H100 80GB HBM3", "B": 1, "H": 16, "block": 128},
      "rows": [
        {"L": 4096, "D": 128, "causal": true, "density": 1.0, "method": "cudnn dense", "time_ms": 0.5, "tflops": 400},
        {"L": 4096, "D": 128, "causal": true, "density": 1.0, "method": "ours dense", "time_ms": 0.8, "tflops": 250},
        {"L": 4096, "D": 128, "causal": true, "density": null, "method": "ours gate (block_topk)", "time_ms": 0.01, "tflops": null},
        {"L": 4096, "D": 128, "causal": true, "density": 0.2, "method": "ours block-sparse", "time_ms": 0.2, "tflops": 200},
        {"L": 8192, "D": 128, "causal": true, "density": 0.2, "method": "ours block-sparse", "time_ms": 0.7, "tflops": 220},
        {"L": 8192, "D": 128, "causal": false, "density": 1.0, "method": "cudnn dense", "time_ms": 1.0, "tflops": 500}]})J";
    int skipped = 0;
    std::vector<bench_row> g = bench_rows_parse(gpu, "gpu.json", &skipped);
    CHECK(skipped == 1);
    REQUIRE(g.size() == 5);
    CHECK(g[0].heads == 16);
    CHECK(g[0].block == 128);
    CHECK(g[0].head_dim == 128);
    CHECK(bench_row_work(g[0]) == Approx(400e12 * 0.5e-3));
    sim_calibration gc = calibration_fit(g, h, 128);
    CHECK(gc.dense_kernel == "cudnn dense");
    CHECK(gc.sparse_kernel == "ours block-sparse");
    REQUIRE(gc.points.size() == 2);
    CHECK(gc.points[1].efficiency == Approx(400.0 / 989.4));
    CHECK(gc.points[1].overhead_ms == 0.0);  // one length: no intercept
    // two lengths: the line through both rows, (work 4e10, 0.2 ms) and (1.54e11, 0.7 ms)
    const double slope = (0.7 - 0.2) / (220e12 * 0.7e-3 - 200e12 * 0.2e-3);
    CHECK(gc.points[0].overhead_ms == Approx(0.2 - 200e12 * 0.2e-3 * slope));
    CHECK(gc.points[0].efficiency == Approx(1e3 / (slope * 989.4e12)));
    CHECK(gc.points[0].lengths == 2);
    CHECK(calibration_fit(g, h, 128, true, "ours").dense_kernel == "ours dense");
    std::vector<calib_point> gp = calibration_check(g, h);
    REQUIRE(gp.size() == 5);
    CHECK(gp[2].leave_one_out);  // the 4096 sparse row predicted from the 8192 one, and back
    CHECK(gp[2].predicted_ms == Approx(200e12 * 0.2e-3 / 220e12 * 1e3));
    CHECK(gp[3].predicted_ms == Approx(220e12 * 0.7e-3 / 200e12 * 1e3));
    CHECK(gp[3].error == Approx(0.1));
    CHECK_FALSE(gp[0].leave_one_out);

    // A kernel with a fixed cost per launch: ms = 0.05 + work / (0.45 peak) at
    // four lengths. The fit recovers both terms, so every leave-one-out
    // prediction is exact, and the simulator adds the overhead once per layer.
    {
        std::string ov = "[";
        for (int L : {4096, 8192, 16384, 32768}) {
            bench_row r;
            r.L = L; r.head_dim = 128; r.density = 0.2; r.batch = 1; r.heads = 16;
            const double work = bench_row_work(r);
            const double ms = 0.05 + work / (peak * 0.45) * 1e3;
            char buf[400];
            std::snprintf(buf, sizeof(buf),
                          R"(%s{"device": "NVIDIA H100 80GB HBM3", "L": %d, "head_dim": 128, "causal": true, "density": 0.2, "kernel": "sparse", "ms": %.17g, "tflops": %.17g, "batch": 1, "heads": 16})",
                          L == 4096 ? "" : ",", L, ms, work / ms / 1e9);
            ov += buf;
        }
        ov += "]";
        std::vector<bench_row> orows = bench_rows_parse(ov, "overhead.json");
        std::vector<kernel_rate_point> curve = kernel_rate_curve(orows, h, "sparse", 128, true);
        REQUIRE(curve.size() == 1);
        CHECK(curve[0].overhead_ms == Approx(0.05));
        CHECK(curve[0].efficiency == Approx(0.45));
        CHECK(curve[0].lengths == 4);
        for (const calib_point & p : calibration_check(orows, h)) {
            CHECK(p.leave_one_out);
            CHECK(std::fabs(p.error) < 1e-6);
        }
        sim_calibration oc = calibration_fit(orows, h, 128);
        sim_options oo;
        oo.ctx = 32768;
        oo.calib = &oc;
        sim_result orr = sim_run(model_preset_load("llama-3-8b", presets()), h, sim_method_parse("density:rho=0.2"), oo);
        const sim_component & att = orr.layer[1];
        CHECK(att.name == "attention");
        CHECK(att.time_s == Approx(std::max(att.compute_s, att.memory_s) + 0.05e-3));
    }

    std::string msg;
    CHECK(error_field([] { bench_rows_read("/nonexistent/bench/results"); }, &msg) == "bench_results");
    CHECK(msg.find("run the kernel benchmarks") != std::string::npos);
    CHECK(error_field([] { bench_rows_parse(R"([{"device": "x", "L": 1}])", "b.json"); }) == "rows[0].kernel");
    CHECK(error_field([] { bench_rows_parse(R"([{"device": "x", "kernel": "k", "L": 64, "head_dim": 64, "causal": true, "density": 1, "ms": 1}])", "b.json"); }) == "rows[0].tflops");
    CHECK(error_field([] { bench_rows_parse(R"({"rows": [{"device": "x", "kernel": "k", "L": 64, "head_dim": 64, "causal": true, "density": 1.5, "ms": 1, "tflops": 1}]})", "b.json"); }) == "rows[0].density");
    hw_preset b = hw_preset_load("b200", presets());
    CHECK(error_field([&] { calibration_fit(br, b, 128); }) == "device");
}

TEST_CASE("sim: regimes", "[sim]") {
    CHECK(seed_rule_family(1024) == "dense");
    CHECK(seed_rule_family(8191) == "dense");
    CHECK(seed_rule_family(8192) == "window");
    CHECK(seed_rule_family(32768) == "window");
    CHECK(seed_rule_family(32769) == "block_sparse");
    CHECK(seed_rule_family(131072) == "block_sparse");
    CHECK(seed_rule_family(131073) == "learned");
    CHECK(regime_default_contexts().size() == 11);

    model_preset m = model_preset_load("llama-3-8b", presets());
    hw_preset h = hw_preset_load("h100-sxm", presets());
    regime_table only_dense = regime_table_parse(R"({"kind": "regimes", "methods": [{"name": "dense", "method": "dense"}]})", "t.json");
    for (const auto & r : regimes_compute(m, h, only_dense, sim_options(), regime_default_contexts())) CHECK(r.cheapest == "dense");

    regime_table t = regime_table_parse(R"({"kind": "regimes", "methods": [
        {"name": "dense", "method": "dense"},
        {"name": "bs", "method": "block_topk:rho=0.1,fixed_us=50"},
        {"name": "bs_ctx", "method": "block_topk:rho=1,fixed_us=50", "min_density_by_ctx": [[1024, 0.8], [1048576, 0.2]]}]})", "t.json");
    CHECK(regime_density_at(t.methods[2], 32768) == Approx(0.8 + 0.5 * (0.2 - 0.8)));
    std::vector<regime_row> rows = regimes_compute(m, h, t, sim_options(), {1024, 1048576});
    CHECK(rows[0].cheapest == "dense");  // 50 us per layer outweighs attention at 1k
    CHECK(rows[1].cheapest == "bs");
    CHECK(rows[1].speedup_vs_dense > 3.0);
    CHECK(error_field([] { regime_table_parse(R"({"kind": "regimes", "methods": [{"name": "x", "method": "nope"}]})", "t.json"); }) == "methods[0].method");
    regime_table def = regime_table_load("default", presets());
    CHECK(def.methods.size() >= 4);
}

TEST_CASE("sim: regime budgets measured by a sweep", "[sim]") {
    auto row = [](const char * name, double bd, double dppl) {
        sweep_row r;
        r.method_name = name;
        r.method = name;
        r.ctx = 2048;
        r.block_density = bd;
        r.delta_ppl_rel = dppl;
        r.model_id = "m";
        r.text_spec = "kjv:eval";
        return r;
    };
    std::vector<sweep_row> rows = {row("block_topk", 0.15, 0.85), row("block_topk", 0.23, 0.37), row("block_topk", 0.43, 0.14),
                                   row("block_topk", 0.62, 0.058), row("window", 0.28, 1.68), row("sinks_window", 0.33, 0.11),
                                   row("dense", 1.0, 0.0)};
    bool interp = false;
    // the sparsest row already within budget: that row
    CHECK(least_density_within(rows, "sinks_window", 2048, 0.2, &interp) == Approx(0.33));
    CHECK_FALSE(interp);
    CHECK(least_density_within(rows, "block_topk", 2048, 0.9, &interp) == Approx(0.15));
    CHECK_FALSE(interp);
    // otherwise the crossing of the line from the densest failing row: (0.23, 0.37) -> (0.43, 0.14) at 0.15
    CHECK(least_density_within(rows, "block_topk", 2048, 0.15, &interp) == Approx(0.23 + (0.37 - 0.15) / (0.37 - 0.14) * 0.2));
    CHECK(interp);
    // between rows: the straight line (0.43, 0.14) -> (0.62, 0.058) crosses 0.10 at
    const double f = (0.14 - 0.10) / (0.14 - 0.058);
    CHECK(least_density_within(rows, "block_topk", 2048, 0.10, &interp) == Approx(0.43 + f * (0.62 - 0.43)));
    CHECK(interp);
    CHECK(least_density_within(rows, "block_topk", 2048, 0.01) == -1.0);
    CHECK(least_density_within(rows, "block_topk", 4096, 0.5) == -1.0);  // no rows at that ctx

    regime_table base = regime_table_load("default", presets());
    std::vector<regime_budget_entry> rep;
    regime_table t = regime_table_from_sweep(base, rows, 0.12, "sweepdir", &rep);
    // window family: sinks_window passes at 0.33 (window never does); block_topk
    // interpolated; learned_gate not in the sweep: kept, marked not measured
    std::map<std::string, const regime_method *> by;
    for (const auto & m : t.methods) by[m.name] = &m;
    REQUIRE(by.count("window"));
    REQUIRE(by["window"]->min_density_by_ctx.size() == 1);
    CHECK(by["window"]->min_density_by_ctx[0].second == Approx(0.33));
    REQUIRE(by.count("block_topk"));
    const double tb = (0.14 - 0.12) / (0.14 - 0.058);
    CHECK(by["block_topk"]->min_density_by_ctx[0].second == Approx(0.43 + tb * (0.62 - 0.43)));
    REQUIRE(by.count("learned_gate"));
    CHECK(by["learned_gate"]->source.rfind("not measured", 0) == 0);
    CHECK(by.count("dense"));
    // a budget nothing sparse meets drops the measured methods
    regime_table strict = regime_table_from_sweep(base, rows, 0.01, "sweepdir");
    for (const auto & m : strict.methods) CHECK((m.name == "dense" || m.name == "learned_gate"));
    CHECK(error_field([&] { regime_table_from_sweep(base, {}, 0.05, "sweepdir"); }) == "results.jsonl");
    CHECK(error_field([&] { regime_table_from_sweep(base, rows, 0.0, "sweepdir"); }) == "budget");
}
