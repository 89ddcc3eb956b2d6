// The sweep's bookkeeping (plan, resume, row files, Pareto front), its real
// runner on the tiny model, the figures, and the evaluation-only rule.
#include "base/error.h"
#include "data/corpus.h"
#include "lab/figures.h"
#include "base/job.h"
#include "lab/sweep.h"
#include "methods/method.h"
#include "metrics/perplexity.h"
#include "model/llama.h"
#include "test_util.h"

#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <unistd.h>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

using namespace attnlab;

namespace {

void rm_rf(const std::string & d) {
    if (std::system(("rm -rf '" + d + "'").c_str()) != 0) WARN("could not remove " << d);
}

std::string fresh_dir(const std::string & name) {
    std::string d = "/tmp/attnlab_test_sweep_" + std::to_string(getpid()) + "_" + name;
    rm_rf(d);
    return d;
}

std::vector<std::string> read_lines(const std::string & path) {
    std::ifstream f(path);
    std::vector<std::string> r;
    std::string l;
    while (std::getline(f, l)) r.push_back(l);
    return r;
}

// A fake row: numbers derived from the task, so a resumed row can be checked.
sweep_row fake_row(const sweep_task & t) {
    sweep_row r;
    r.model_sha256 = "m";
    r.text_sha256 = "t";
    r.text_spec = "kjv:eval";
    r.tokens = 100;
    r.windows = 1;
    r.ppl_dense = 10.0;
    const double d = t.density_set > 0 ? t.density_set : 0.5;
    r.ppl = 10.0 + 1.0 / d;
    r.delta_ppl = r.ppl - r.ppl_dense;
    r.delta_ppl_rel = r.delta_ppl / r.ppl_dense;
    r.top1_agreement = 0.9;
    r.token_density = d * 0.9;
    r.block_density = d;
    r.mass_recall = 0.5 + d / 2;
    r.layer_block_density = {d, d, d};
    r.layer_token_density = {d * 0.9, d * 0.9, d * 0.9};
    r.seconds = 0.01;
    return r;
}

// Counts rows between `a` and `b` (CSV line split with quotes respected).
std::vector<std::string> csv_split(const std::string & line) {
    std::vector<std::string> f;
    std::string cur;
    bool q = false;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (q) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
            else if (c == '"') q = false;
            else cur += c;
        } else if (c == '"') {
            q = true;
        } else if (c == ',') {
            f.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    f.push_back(cur);
    return f;
}

} // namespace

TEST_CASE("sweep_plan expands densities for methods with a density key only", "[sweep]") {
    const auto tasks = sweep_plan({"dense", "window:w=128", "block_topk:B=32", "oracle_topk"}, {0.1, 0.4}, {64, 128}, "T",
                                  "M", 0);
    // per ctx: dense, window, block_topk x2, oracle_topk x2
    REQUIRE(tasks.size() == 12);
    CHECK(tasks[0].ctx == 64);
    CHECK(tasks[6].ctx == 128);   // ctx-major
    CHECK(tasks[0].method == "dense:B=64");
    CHECK(tasks[0].density_set == -1.0);
    CHECK(tasks[1].method == "window:w=128,B=64");
    CHECK(tasks[2].method == "block_topk:rho=0.1,B=32");
    CHECK(tasks[3].method == "block_topk:rho=0.4,B=32");
    CHECK(tasks[3].density_set == 0.4);
    CHECK(tasks[5].method == "oracle_topk:rho=0.4,B=64");
    std::set<std::string> keys;
    for (const auto & t : tasks) keys.insert(t.key);
    CHECK(keys.size() == tasks.size());
    // The key changes with everything a row depends on.
    const std::string k = sweep_row_key("dense:B=64", 64, "T", "M", 0, "softmax");
    CHECK(k != sweep_row_key("dense:B=64", 128, "T", "M", 0, "softmax"));
    CHECK(k != sweep_row_key("dense:B=64", 64, "T2", "M", 0, "softmax"));
    CHECK(k != sweep_row_key("dense:B=64", 64, "T", "M2", 0, "softmax"));
    CHECK(k != sweep_row_key("dense:B=64", 64, "T", "M", 4096, "softmax"));
    // An explicit density in the spec is replaced by the swept ones.
    const auto t2 = sweep_plan({"block_topk:rho=0.9"}, {0.2}, {64}, "T", "M", 0);
    REQUIRE(t2.size() == 1);
    CHECK(t2[0].method == "block_topk:rho=0.2,B=64");
    // Without --densities a method keeps its own.
    const auto t3 = sweep_plan({"block_topk:rho=0.3"}, {}, {64}, "T", "M", 0);
    REQUIRE(t3.size() == 1);
    CHECK(t3[0].density_set == 0.3);
    CHECK_THROWS_AS(sweep_plan({"nonsense"}, {0.1}, {64}, "T", "M", 0), input_error);
    CHECK_THROWS_AS(sweep_plan({"dense"}, {1.5}, {64}, "T", "M", 0), input_error);
    CHECK_THROWS_AS(sweep_plan({"dense"}, {0.1}, {1}, "T", "M", 0), input_error);
    CHECK_THROWS_AS(sweep_plan({}, {0.1}, {64}, "T", "M", 0), input_error);
}

TEST_CASE("sweep resumes after an interruption without redoing finished rows", "[sweep]") {
    const std::string dir = fresh_dir("resume");
    const auto tasks = sweep_plan({"dense", "window", "block_topk", "oracle_topk"}, {0.1, 0.2, 0.4}, {64}, "T", "M", 0);
    REQUIRE(tasks.size() == 8);
    for (int k : {0, 3, 7}) {
        rm_rf(dir);
        int calls = 0;
        job_progress job;
        // Interrupted after k rows: the (k+1)-th row is cancelled mid-way.
        auto interrupting = [&](const sweep_task & t, job_progress * p) {
            if (calls == k) {
                p->cancel();
                job_step(p, t.progress_lo, "x");
            }
            calls++;
            return fake_row(t);
        };
        CHECK_THROWS_AS(sweep_execute(tasks, dir, interrupting, &job), job_cancelled);
        CHECK(sweep_load_rows(dir).size() == size_t(k));
        CHECK(read_lines(dir + "/results.csv").size() == size_t(k + 1));

        std::vector<std::string> ran;
        auto counting = [&](const sweep_task & t, job_progress *) {
            ran.push_back(t.key);
            return fake_row(t);
        };
        sweep_outcome o = sweep_execute(tasks, dir, counting, nullptr);
        CHECK(o.reused == k);
        CHECK(o.ran == 8 - k);
        REQUIRE(ran.size() == size_t(8 - k));
        for (size_t i = 0; i < ran.size(); ++i) CHECK(ran[i] == tasks[size_t(k) + i].key);
        REQUIRE(o.rows.size() == 8);
        for (size_t i = 0; i < 8; ++i) CHECK(o.rows[i].key == tasks[i].key);
        // A third run does nothing at all.
        ran.clear();
        o = sweep_execute(tasks, dir, counting, nullptr);
        CHECK(ran.empty());
        CHECK(o.reused == 8);
        CHECK(sweep_load_rows(dir).size() == 8);
        CHECK(read_lines(dir + "/results.csv").size() == 9);
    }
    rm_rf(dir);
}

TEST_CASE("a row cut short by a crash is dropped and redone", "[sweep]") {
    const std::string dir = fresh_dir("crash");
    const auto tasks = sweep_plan({"block_topk"}, {0.1, 0.2, 0.4}, {64}, "T", "M", 0);
    sweep_execute(tasks, dir, [](const sweep_task & t, job_progress *) { return fake_row(t); });
    // Simulate a crash half-way through writing the third JSONL line, after
    // the CSV had already been appended twice over.
    std::vector<std::string> lines = read_lines(dir + "/results.jsonl");
    REQUIRE(lines.size() == 3);
    {
        std::ofstream f(dir + "/results.jsonl", std::ios::trunc);
        f << lines[0] << "\n" << lines[1] << "\n" << lines[2].substr(0, lines[2].size() / 2);
        std::ofstream c(dir + "/results.csv", std::ios::app);
        c << "garbage,row\n";
    }
    CHECK(sweep_load_rows(dir).size() == 2);
    int calls = 0;
    sweep_outcome o = sweep_execute(tasks, dir, [&](const sweep_task & t, job_progress *) {
        calls++;
        return fake_row(t);
    });
    CHECK(calls == 1);
    CHECK(o.reused == 2);
    CHECK(read_lines(dir + "/results.jsonl").size() == 3);
    CHECK(read_lines(dir + "/results.csv").size() == 4);   // rebuilt from the JSONL
    // A corrupt line in the middle is an error naming the file and line.
    {
        std::ofstream f(dir + "/results.jsonl", std::ios::trunc);
        f << "{not json}\n" << lines[1] << "\n";
    }
    CHECK_THROWS_AS(sweep_load_rows(dir), input_error);
    rm_rf(dir);
}

TEST_CASE("sweep row formats: CSV columns and JSON round trip", "[sweep]") {
    const auto tasks = sweep_plan({"window:w=32,B=16"}, {}, {64}, "T", "M", 0);
    sweep_row r = fake_row(tasks[0]);
    r.key = tasks[0].key;
    r.method = tasks[0].method;
    r.method_name = "window";
    r.ctx = 64;
    r.model_id = "tiny \"model\", v1";
    const std::vector<std::string> head = csv_split(sweep_csv_header());
    const std::vector<std::string> f = csv_split(sweep_csv_line(r));
    REQUIRE(head.size() == f.size());
    const auto col = [&](const std::string & name) {
        for (size_t i = 0; i < head.size(); ++i) {
            if (head[i] == name) return f[i];
        }
        FAIL("no column " << name);
        return std::string();
    };
    CHECK(col("method") == "window:w=32,B=16");   // quoted, the comma survives
    CHECK(col("model_id") == "tiny \"model\", v1");
    CHECK(col("ctx") == "64");
    CHECK(std::stod(col("ppl")) == Approx(r.ppl));
    CHECK(std::stod(col("block_density")) == Approx(r.block_density));
    CHECK(col("key") == r.key);
    const nlohmann::json j = sweep_row_to_json(r);
    for (const char * k : {"key", "method", "ctx", "ppl", "ppl_dense", "delta_ppl", "top1_agreement", "token_density",
                           "block_density", "predictor_s", "kernel_s", "mass_recall", "passkey_accuracy",
                           "layer_block_density", "model_sha256", "text_sha256"}) {
        CHECK(j.contains(k));
    }
    const sweep_row back = sweep_row_from_json(nlohmann::json::parse(j.dump()));
    CHECK(sweep_row_to_json(back) == j);
    // a GPU row: device, its name and memory survive both formats
    r.device = "cuda";
    r.device_name = "NVIDIA H100 80GB HBM3";
    r.device_bytes_peak = 5123456789;
    r.dense_device_bytes_peak = 5000000000;
    r.selection_bytes = 12345;
    const std::vector<std::string> g = csv_split(sweep_csv_line(r));
    REQUIRE(g.size() == head.size());
    for (size_t i = 0; i < head.size(); ++i) {
        if (head[i] == "device") CHECK(g[i] == "cuda");
        if (head[i] == "device_bytes_peak") CHECK(g[i] == "5123456789");
        if (head[i] == "selection_bytes") CHECK(g[i] == "12345");
    }
    const sweep_row gb = sweep_row_from_json(nlohmann::json::parse(sweep_row_to_json(r).dump()));
    CHECK(gb.device == "cuda");
    CHECK(gb.device_name == r.device_name);
    CHECK(gb.device_bytes_peak == r.device_bytes_peak);
    CHECK(gb.dense_device_bytes_peak == r.dense_device_bytes_peak);
    CHECK(gb.selection_bytes == r.selection_bytes);
    // rows written before the GPU sweep read as CPU rows with nothing measured
    nlohmann::json old = j;
    for (const char * k : {"device", "device_name", "device_bytes_peak", "dense_device_bytes_peak", "selection_bytes"}) old.erase(k);
    const sweep_row ob = sweep_row_from_json(old);
    CHECK(ob.device == "cpu");
    CHECK(ob.device_bytes_peak == -1);
}

TEST_CASE("GPU sweep rows have keys of their own; CPU keys are unchanged", "[sweep]") {
    const auto cpu = sweep_plan({"window:w=32,B=16", "block_topk"}, {0.2}, {64}, "T", "M", 0);
    const auto cuda = sweep_plan({"window:w=32,B=16", "block_topk"}, {0.2}, {64}, "T", "M", 0, "softmax", "cuda");
    REQUIRE(cpu.size() == cuda.size());
    for (size_t i = 0; i < cpu.size(); ++i) {
        CHECK(cpu[i].key != cuda[i].key);
        CHECK(cpu[i].method == cuda[i].method);
        // the CPU key is the one written before devices existed (old directories resume)
        CHECK(cpu[i].key == sweep_row_key(cpu[i].method, 64, "T", "M", 0, "softmax"));
    }
    CHECK_THROWS_AS(sweep_plan({"dense"}, {}, {64}, "T", "M", 0, "softmax", "tpu"), input_error);
}

TEST_CASE("pareto_front equals the brute-force definition", "[sweep]") {
    std::mt19937 rng(11);
    for (int trial = 0; trial < 200; ++trial) {
        const int n = 1 + int(rng() % 30);
        std::vector<double> x(n), y(n);
        for (int i = 0; i < n; ++i) {
            // coarse values make ties and duplicates common
            x[i] = double(rng() % 8) / 8;
            y[i] = double(rng() % 8);
        }
        std::vector<int> brute;
        for (int i = 0; i < n; ++i) {
            bool dominated = false;
            for (int j = 0; j < n; ++j) {
                if (x[j] <= x[i] && y[j] <= y[i] && (x[j] < x[i] || y[j] < y[i])) dominated = true;
            }
            if (!dominated) brute.push_back(i);
        }
        std::vector<int> got = pareto_front(x, y);
        std::vector<int> g2 = got, b2 = brute;
        std::sort(g2.begin(), g2.end());
        std::sort(b2.begin(), b2.end());
        REQUIRE(g2 == b2);
        for (size_t i = 1; i < got.size(); ++i) CHECK(x[got[i - 1]] <= x[got[i]]);
    }
}

TEST_CASE("figures: PNG files of the expected size with data in the plot area", "[sweep]") {
    const std::string dir = fresh_dir("figs");
    const auto tasks = sweep_plan({"dense", "window", "block_topk", "oracle_topk"}, {0.1, 0.2, 0.4}, {64}, "T", "M", 0);
    sweep_outcome o = sweep_execute(tasks, dir, [](const sweep_task & t, job_progress *) { return fake_row(t); });
    const std::vector<std::string> paths = sweep_write_figures(dir, o.rows);
    REQUIRE(paths.size() == 3);
    for (const auto & p : paths) {
        int w = 0, h = 0, ch = 0;
        unsigned char * img = stbi_load(p.c_str(), &w, &h, &ch, 3);
        REQUIRE(img);
        CHECK(w == plot_spec().width);
        CHECK(h == plot_spec().height);
        stbi_image_free(img);
    }
    // A plot of known points: coloured pixels inside the area, where the points are.
    plot_spec sp;
    sp.title = "test";
    sp.x_label = "x";
    sp.y_label = "y";
    plot_series s;
    s.label = "s";
    s.color = 0xd62728;
    s.x = {0, 1, 2};
    s.y = {0, 1, 4};
    sp.series.push_back(s);
    sp.width = 500;
    sp.height = 400;
    const std::string path = dir + "/one.png";
    const plot_area a = plot_write_png(path, sp);
    int w = 0, h = 0, ch = 0;
    unsigned char * img = stbi_load(path.c_str(), &w, &h, &ch, 3);
    REQUIRE(img);
    CHECK(w == 500);
    CHECK(h == 400);
    CHECK(a.x0 > 0);
    CHECK(a.x1 < w);
    CHECK(a.y0 > 0);
    CHECK(a.y1 < h);
    int64_t coloured = 0, non_bg = 0;
    for (int y = a.y0 + 1; y < a.y1; ++y) {
        for (int x = a.x0 + 1; x < a.x1; ++x) {
            const unsigned char * p = img + (size_t(y) * w + x) * 3;
            const uint32_t c = (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2];
            non_bg += c != k_plot_background;
            coloured += c == 0xd62728;
        }
    }
    CHECK(coloured > 200);   // the line and three markers
    CHECK(non_bg > coloured);  // grid lines too
    // Text outside the plot area (title, ticks, labels).
    int64_t dark_outside = 0;
    for (int y = 0; y < a.y0; ++y) {
        for (int x = 0; x < w; ++x) dark_outside += img[(size_t(y) * w + x) * 3] < 64;
    }
    CHECK(dark_outside > 20);
    stbi_image_free(img);
    rm_rf(dir);
}

TEST_CASE("sweep metrics are refused on calibration text", "[sweep]") {
    text_source calib;
    calib.spec = "kjv:calib";
    calib.part = text_part::calibration;
    calib.text = "In the beginning";
    CHECK_THROWS_AS(sweep_require_evaluation(calib, "the sweep"), input_error);
    text_source whole = calib;
    whole.spec = "kjv";
    whole.part = text_part::whole;
    CHECK_THROWS_AS(sweep_require_evaluation(whole, "the sweep"), input_error);
    text_source eval = calib;
    eval.spec = "kjv:eval";
    eval.part = text_part::evaluation;
    CHECK_NOTHROW(sweep_require_evaluation(eval, "the sweep"));
    llama_model m = llama_model_load(attnlab_test::data_dir() + "/tiny_llama");
    CHECK_THROWS_AS(sweep_model_runner(m, nullptr, calib, {1, 2, 3}, sweep_model_options()), input_error);
    if (attnlab_test::need_asset(attnlab_test::kjv_path())) {
        text_source real = text_load("kjv:calib");
        CHECK_THROWS_AS(sweep_model_runner(m, nullptr, real, {1, 2, 3}, sweep_model_options()), input_error);
    }
}

TEST_CASE("sweep runner on the tiny model matches perplexity_compare", "[sweep]") {
    llama_model m = llama_model_load(attnlab_test::data_dir() + "/tiny_llama");
    std::mt19937 rng(3);
    std::vector<int32_t> ids(200);
    for (auto & x : ids) x = int32_t(rng() % m.cfg.n_vocab);
    text_source src;
    src.spec = "random ids";
    src.part = text_part::evaluation;
    src.sha256 = "ids";
    sweep_model_runner run(m, nullptr, src, ids, sweep_model_options());
    const auto tasks = sweep_plan({"dense:B=16", "block_topk:B=16", "window:w=8,B=16"}, {0.3}, {64}, "ids", m.source_sha256, 0);
    REQUIRE(tasks.size() == 3);
    const sweep_row d = run(tasks[0], nullptr);
    CHECK(d.ppl == d.ppl_dense);
    CHECK(d.top1_agreement == 1.0);
    CHECK(d.block_density == 1.0);
    CHECK(d.mass_recall == Approx(1.0).epsilon(1e-6));
    CHECK(d.windows == 4);
    CHECK(d.layer_block_density.size() == size_t(m.cfg.n_layer));
    const perplexity_result dense = perplexity_eval(m, ids, 64);
    CHECK(d.ppl_dense == Approx(dense.ppl).epsilon(1e-12));
    for (int i : {1, 2}) {
        const sweep_row r = run(tasks[size_t(i)], nullptr);
        sparse_attention_hook hook(std::shared_ptr<const sparse_method>(method_create(tasks[size_t(i)].method)));
        const perplexity_comparison c = perplexity_compare(m, ids, 64, &hook);
        CHECK(r.ppl == Approx(c.sparse.ppl).epsilon(1e-12));
        CHECK(r.ppl_dense == Approx(c.dense.ppl).epsilon(1e-12));
        CHECK(r.top1_agreement == Approx(c.top1_agreement).epsilon(1e-12));
        CHECK(r.block_density < 1.0);
        CHECK(r.mass_recall > 0.0);
        CHECK(r.mass_recall < 1.0);
    }
}

// ---- export: FlexAttention block lists ----

#include "io/safetensors.h"
#include "io/trace.h"
#include "lab/export_flex.h"
#include "data/capture.h"

TEST_CASE("export block lists equal a brute-force rebuild from the selection", "[sweep]") {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int L : {100, 128, 203}) {
        const int d = 16;
        std::vector<float> q(size_t(L) * d), k(size_t(L) * d);
        for (auto & x : q) x = nd(rng);
        for (auto & x : k) x = nd(rng);
        head_inputs in;
        in.n_tokens = L;
        in.head_dim = d;
        in.scale = 0.25f;
        in.q = q.data();
        in.q_stride = d;
        in.k = k.data();
        in.k_stride = d;
        for (const char * spec : {"block_topk:rho=0.3,B=16", "window:w=20,B=16", "oracle_topk:rho=0.2,B=32", "dense:B=32",
                                  "strided:m=7,w=5,B=16", "block_local:B=16"}) {
            const selection s = method_create(spec)->select(in);
            const int nb = s.n_blocks();
            std::vector<int32_t> kn(nb), ki(size_t(nb) * nb, -1), fn(nb), fi(size_t(nb) * nb, -1);
            flex_head_lists(s, kn.data(), ki.data(), fn.data(), fi.data());
            for (int I = 0; I < nb; ++I) {
                std::set<int> listed_p, listed_f;
                for (int t = 0; t < kn[I]; ++t) listed_p.insert(ki[size_t(I) * nb + t]);
                for (int t = 0; t < fn[I]; ++t) listed_f.insert(fi[size_t(I) * nb + t]);
                for (int t = 1; t < kn[I]; ++t) CHECK(ki[size_t(I) * nb + t - 1] < ki[size_t(I) * nb + t]);
                for (int t = kn[I]; t < nb; ++t) CHECK(ki[size_t(I) * nb + t] == 0);   // padding
                for (int t = fn[I]; t < nb; ++t) CHECK(fi[size_t(I) * nb + t] == 0);
                for (int J = 0; J < nb; ++J) {
                    int64_t sel = 0, all = 0;
                    for (int i = I * s.block; i < std::min(L, (I + 1) * s.block); ++i) {
                        for (int j = J * s.block; j < std::min(L, (J + 1) * s.block); ++j) {
                            all++;
                            sel += selection_contains(s, i, j);
                        }
                    }
                    // kept in the selection's block mask (a superset of the blocks holding selected pairs)
                    bool kept = false;
                    for (int32_t p = s.blk_ptr[size_t(I)]; p < s.blk_ptr[size_t(I) + 1]; ++p) kept |= s.blk_cols[size_t(p)] == J;
                    if (sel > 0) CHECK(kept);
                    const bool full = kept && sel == all;
                    INFO(spec << " L=" << L << " I=" << I << " J=" << J);
                    CHECK(listed_f.count(J) == size_t(full));
                    CHECK(listed_p.count(J) == size_t(kept && !full));
                }
            }
        }
    }
}

TEST_CASE("export of a trace: shapes, metadata and the reference head", "[sweep]") {
    const qkv_capture cap = trace_read(attnlab_test::data_dir() + "/trace_tiny_llama.safetensors");
    const std::string dir = fresh_dir("export");
    if (std::system(("mkdir -p '" + dir + "'").c_str()) != 0) FAIL("mkdir");
    auto m = method_create("block_topk:rho=0.5,B=16");
    flex_export_options opt;
    opt.check_head = 1;
    opt.minference_json = dir + "/mi.json";
    const flex_export_result r = flex_export(cap, *m, dir + "/sel.safetensors", opt);
    const int L = cap.info.n_tokens(), nb = (L + 15) / 16, nl = int(cap.layers.size()), nh = cap.info.n_head;
    safetensors_file f = safetensors_file::open(dir + "/sel.safetensors");
    REQUIRE(f.find("kv_num_blocks"));
    CHECK(f.find("kv_num_blocks")->shape == std::vector<int64_t>{nl, nh, nb});
    CHECK(f.find("kv_indices")->shape == std::vector<int64_t>{nl, nh, nb, nb});
    CHECK(f.find("full_kv_num_blocks")->shape == std::vector<int64_t>{nl, nh, nb});
    CHECK(f.find("full_kv_indices")->shape == std::vector<int64_t>{nl, nh, nb, nb});
    const nlohmann::json meta = nlohmann::json::parse(f.metadata().at("attnlab.flex"));
    CHECK(meta["block_size"] == 16);
    CHECK(meta["method"] == "block_topk:rho=0.5,B=16");
    CHECK(meta["model_sha256"] == cap.info.model_sha256);
    // Counts in the file equal the lists of the export (and the selection's kept blocks).
    const int32_t * kn = reinterpret_cast<const int32_t *>(f.find("kv_num_blocks")->data);
    const int32_t * fn = reinterpret_cast<const int32_t *>(f.find("full_kv_num_blocks")->data);
    int64_t kept = 0;
    for (int64_t i = 0; i < int64_t(nl) * nh * nb; ++i) {
        CHECK(kn[i] == r.lists.kv_num_blocks[size_t(i)]);
        kept += kn[i] + fn[i];
    }
    int64_t want = 0;
    for (size_t li = 0; li < cap.layers.size(); ++li) {
        for (int h = 0; h < nh; ++h) want += m->select(head_inputs_of(capture_layer_io(cap, li), h)).n_kept_blocks();
    }
    CHECK(kept == want);
    // The reference head: its mask is the method's selection (read from the
    // CSR arrays), and its output is float64 softmax attention over exactly
    // the masked keys of the file's own q, k, v.
    safetensors_file ref = safetensors_file::open(r.ref_path);
    REQUIRE(ref.find("out"));
    CHECK(ref.find("out")->shape == std::vector<int64_t>{L, cap.info.head_dim});
    CHECK(ref.find("token_mask")->shape == std::vector<int64_t>{L, L});
    const nlohmann::json rm = nlohmann::json::parse(ref.metadata().at("attnlab.flex_ref"));
    CHECK(rm["head"] == 1);
    {
        const int d = cap.info.head_dim;
        const size_t li = rm["layer_index"].get<size_t>();
        const std::vector<char> want_mask =
            attnlab_test::selection_mask(m->select(head_inputs_of(capture_layer_io(cap, li), 1)));
        const uint8_t * mask = reinterpret_cast<const uint8_t *>(ref.find("token_mask")->data);
        const float * q = reinterpret_cast<const float *>(ref.find("q")->data);
        const float * k = reinterpret_cast<const float *>(ref.find("k")->data);
        const float * v = reinterpret_cast<const float *>(ref.find("v")->data);
        const float * out = reinterpret_cast<const float *>(ref.find("out")->data);
        const double scale = rm["scale"].get<double>();
        double worst = 0.0;
        for (int i = 0; i < L; ++i) {
            for (int j = 0; j < L; ++j) REQUIRE(bool(mask[size_t(i) * L + j]) == bool(want_mask[size_t(i) * L + j]));
            std::vector<double> p(size_t(L), 0.0);
            double mx = -1e300, sum = 0.0;
            for (int j = 0; j < L; ++j) {
                if (!mask[size_t(i) * L + j]) continue;
                double dot = 0.0;
                for (int t = 0; t < d; ++t) dot += double(q[size_t(i) * d + t]) * double(k[size_t(j) * d + t]);
                p[size_t(j)] = dot * scale;
                mx = std::max(mx, p[size_t(j)]);
            }
            for (int j = 0; j < L; ++j) {
                p[size_t(j)] = mask[size_t(i) * L + j] ? std::exp(p[size_t(j)] - mx) : 0.0;
                sum += p[size_t(j)];
            }
            for (int t = 0; t < d; ++t) {
                double o = 0.0;
                for (int j = 0; j < L; ++j) o += p[size_t(j)] * double(v[size_t(j) * d + t]);
                worst = std::max(worst, std::fabs(o / sum - double(out[size_t(i) * d + t])));
            }
        }
        INFO("worst |out - float64| " << worst);
        CHECK(worst < 3e-6);   // fp32 kernel vs float64: measured 2.8e-7, ~10x margin
    }
    const nlohmann::json mi = nlohmann::json::parse(std::ifstream(dir + "/mi.json"));
    CHECK(mi["layers"].size() == size_t(nl));
    CHECK(mi["layers"][0].size() == size_t(nh));
    rm_rf(dir);
}
