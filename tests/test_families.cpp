// Every family of the architecture table (model/llm_arch.h) against
// transformers: tiny random models with the family's real switches on, in
// both formats (tests/data/families/<family>/{hf, model.gguf}), goldens from
// tools/gen_family_golden.py. Each family also has a knockout: turning its
// feature off must move the logits far past the tolerance, so the golden
// really exercises it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention.h"
#include "base/error.h"
#include "model/llama.h"
#include "model/rope.h"
#include "test_util.h"

using namespace attnlab;
using json = nlohmann::json;

namespace {

const double k_logit_tol = 1e-4;   // of max|ref|, the CPU bound
const double k_qk_tol = 1e-4;

struct golden {
    json meta;
    std::vector<float> bin;
    std::vector<float> arr(const std::string & name, std::vector<int64_t> * shape = nullptr) const {
        const json & e = meta["bin_index"][name];
        const auto sh = e["shape"].get<std::vector<int64_t>>();
        size_t n = 1;
        for (int64_t s : sh) n *= (size_t) s;
        const size_t off = e["offset"].get<size_t>();
        REQUIRE(off + n <= bin.size());
        if (shape) *shape = sh;
        return std::vector<float>(bin.begin() + (long) off, bin.begin() + (long) (off + n));
    }
};

std::string family_dir(const std::string & fam) { return attnlab_test::data_dir() + "/families/" + fam; }

golden load_golden(const std::string & fam) {
    golden g;
    std::ifstream in(family_dir(fam) + "/golden.json");
    REQUIRE(in.good());
    g.meta = json::parse(in);
    std::ifstream b(family_dir(fam) + "/golden.bin", std::ios::binary | std::ios::ate);
    REQUIRE(b.good());
    const auto n = (size_t) b.tellg();
    g.bin.resize(n / 4);
    b.seekg(0);
    b.read(reinterpret_cast<char *>(g.bin.data()), (std::streamsize) n);
    return g;
}

struct qk_capture : attention_hook {
    std::vector<int> layers, rows;
    std::vector<std::vector<float>> q, k;
    void on_qkv(const attention_layer_io & io) override {
        for (size_t i = 0; i < layers.size(); ++i) {
            if (io.layer != layers[i]) continue;
            const int qs = io.n_head * io.head_dim, ks = io.n_head_kv * io.head_dim;
            for (int r : rows) {
                q[i].insert(q[i].end(), io.q + (size_t) r * qs, io.q + (size_t) (r + 1) * qs);
                k[i].insert(k[i].end(), io.k + (size_t) r * ks, io.k + (size_t) (r + 1) * ks);
            }
        }
    }
};

double rel_err(const std::vector<float> & a, const std::vector<float> & ref) {
    REQUIRE(a.size() == ref.size());
    double md = 0.0, mr = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        md = std::max(md, (double) std::abs(a[i] - ref[i]));
        mr = std::max(mr, (double) std::abs(ref[i]));
    }
    return md / mr;
}

// max|logits - ref| / max|ref| over the golden's full-logit rows.
double logit_err(const matrix_rm & logits, const golden & g) {
    std::vector<int64_t> sh;
    const std::vector<float> ref = g.arr("logits", &sh);
    const auto pos = g.meta["logit_positions"].get<std::vector<int>>();
    std::vector<float> got;
    for (int p : pos)
        for (int j = 0; j < logits.cols(); ++j) got.push_back(logits(p, j));
    return rel_err(got, ref);
}

// Loads one format of a family and checks logits, argmax and Q/K.
void check_family(const std::string & fam, const std::string & path, const std::function<void(llama_model &)> & knockout) {
    const golden g = load_golden(fam);
    INFO(fam << ": " << path);
    llama_model m = llama_model_load(path);
    const auto ids = g.meta["token_ids"].get<std::vector<int32_t>>();
    REQUIRE(m.cfg.n_vocab == g.meta["n_vocab"].get<int>());

    qk_capture cap;
    const int last = m.cfg.n_layer - 1;
    cap.layers = {0, last};
    cap.rows = g.meta["qk_positions"].get<std::vector<int>>();
    cap.q.resize(2);
    cap.k.resize(2);
    forward_options fo;
    fo.hook = &cap;
    const matrix_rm logits = llama_forward(m, ids, fo);

    const double err = logit_err(logits, g);
    WARN(fam << " " << (path.size() > 5 && path.substr(path.size() - 5) == ".gguf" ? "gguf" : "hf") <<
         ": logits max|diff|/max|ref| = " << err);
    CHECK(err <= k_logit_tol);
    const auto argmax = g.meta["argmax"].get<std::vector<int>>();
    int same = 0;
    for (int t = 0; t < (int) ids.size(); ++t) {
        Eigen::Index j = 0;
        logits.row(t).maxCoeff(&j);
        same += (int) j == argmax[t];
    }
    CHECK(same == (int) ids.size());
    for (int i = 0; i < 2; ++i) {
        const int layer = cap.layers[i];
        CHECK(rel_err(cap.q[i], g.arr("q_layer" + std::to_string(layer))) <= k_qk_tol);
        CHECK(rel_err(cap.k[i], g.arr("k_layer" + std::to_string(layer))) <= k_qk_tol);
    }

    // The knockout: the family's feature off must miss the golden by far.
    knockout(m);
    const double off = logit_err(llama_forward(m, ids), g);
    INFO("knockout: " << off);
    CHECK(off > 100 * k_logit_tol);
}

void check_both(const std::string & fam, const std::function<void(llama_model &)> & knockout) {
    check_family(fam, family_dir(fam) + "/hf", knockout);
    check_family(fam, family_dir(fam) + "/model.gguf", knockout);
}

} // namespace

TEST_CASE("families: Llama 3 (rope scaling llama3) matches transformers", "[model][families]") {
    const llama_model m = llama_model_load(family_dir("llama3") + "/hf");
    CHECK(m.cfg.rope.type == rope_scaling_type::llama3);
    const llama_model mg = llama_model_load(family_dir("llama3") + "/model.gguf");
    CHECK(mg.cfg.rope.type == rope_scaling_type::llama3);
    CHECK(mg.cfg.rope.freq_factors.size() == 8);
    check_both("llama3", [](llama_model & x) { x.cfg.rope = rope_scaling{}; });
}

TEST_CASE("families: Qwen2 (q/k/v bias, YaRN) matches transformers", "[model][families]") {
    const llama_model m = llama_model_load(family_dir("qwen2") + "/hf");
    CHECK(m.cfg.has(LLM_FEAT_QKV_BIAS));
    CHECK(m.cfg.rope.type == rope_scaling_type::yarn);
    CHECK(m.cfg.layer_window(0) == 0);
    check_both("qwen2", [](llama_model & x) {
        for (auto & L : x.layers) L.bq.setZero(), L.bk.setZero(), L.bv.setZero();
    });
    // YaRN alone: its ramp and attention factor move the logits too.
    llama_model y = llama_model_load(family_dir("qwen2") + "/model.gguf");
    const golden g = load_golden("qwen2");
    y.cfg.rope = rope_scaling{};
    CHECK(logit_err(llama_forward(y, g.meta["token_ids"].get<std::vector<int32_t>>()), g) > 100 * k_logit_tol);
}

TEST_CASE("families: Qwen3 (q/k norm, head_dim 32 != hidden/heads, linear rope) matches transformers", "[model][families]") {
    const llama_model m = llama_model_load(family_dir("qwen3") + "/hf");
    CHECK(m.cfg.has(LLM_FEAT_QK_NORM));
    CHECK(m.cfg.head_dim == 32);
    CHECK(m.cfg.rope.type == rope_scaling_type::linear);
    check_both("qwen3", [](llama_model & x) {
        for (auto & L : x.layers) L.q_norm.setOnes(), L.k_norm.setOnes();
    });
}

TEST_CASE("families: Mistral (sliding window 48 < 256 tokens) matches transformers", "[model][families]") {
    const llama_model m = llama_model_load(family_dir("mistral") + "/hf");
    CHECK(m.cfg.sliding_window == 48);
    CHECK(m.cfg.layer_window(0) == 48);
    CHECK(m.cfg.layer_window(1) == 48);
    check_both("mistral", [](llama_model & x) { x.cfg.sliding_window = 0; });
}

TEST_CASE("families: Gemma 2 (softcaps, alternating windows, GeGLU, post norms) matches transformers", "[model][families]") {
    const llama_model m = llama_model_load(family_dir("gemma2") + "/hf");
    CHECK(m.cfg.has(LLM_FEAT_SOFTCAP));
    CHECK(m.cfg.attn_softcap == 1.5f);
    CHECK(m.cfg.final_softcap == 2.0f);
    CHECK(m.cfg.layer_window(0) == 48);
    CHECK(m.cfg.layer_window(1) == 0);
    CHECK(m.cfg.embd_scale == 8.0f);
    check_both("gemma2", [](llama_model & x) { x.cfg.attn_softcap = 0.0f; });
    llama_model y = llama_model_load(family_dir("gemma2") + "/model.gguf");
    const golden g = load_golden("gemma2");
    const auto ids = g.meta["token_ids"].get<std::vector<int32_t>>();
    y.cfg.final_softcap = 0.0f;
    CHECK(logit_err(llama_forward(y, ids), g) > 100 * k_logit_tol);
    y = llama_model_load(family_dir("gemma2") + "/model.gguf");
    y.cfg.sliding_window = 0;
    CHECK(logit_err(llama_forward(y, ids), g) > 100 * k_logit_tol);
}

TEST_CASE("families: Gemma 3 (q/k norm, local/global rope bases, linear scaling on global) matches transformers",
          "[model][families]") {
    const llama_model m = llama_model_load(family_dir("gemma3") + "/hf");
    CHECK(m.cfg.has(LLM_FEAT_QK_NORM));
    CHECK(m.cfg.rope_theta == 100000.0f);
    CHECK(m.cfg.rope_theta_local == 10000.0f);
    CHECK(m.cfg.layer_window(0) == 48);
    CHECK(m.cfg.layer_window(1) == 0);
    check_both("gemma3", [](llama_model & x) { x.cfg.rope_theta_local = 0.0f; });
}

TEST_CASE("families: Phi-3 (fused qkv and gate/up, longrope past the original context) matches transformers",
          "[model][families]") {
    const llama_model m = llama_model_load(family_dir("phi3") + "/hf");
    CHECK(m.cfg.rope.type == rope_scaling_type::longrope);
    CHECK(m.cfg.rope.orig_ctx == 64);
    check_both("phi3", [](llama_model & x) { x.cfg.rope.long_factors = x.cfg.rope.short_factors; });
}

TEST_CASE("families: a sparse method on a model's own window is refused, not silently wrong", "[model][families]") {
    struct replacer : attention_hook {
        bool attend(const attention_layer_io & io) override {
            attention_dense_flash(io);
            return true;
        }
    } r;
    const llama_model m = llama_model_load(family_dir("mistral") + "/hf");
    forward_options fo;
    fo.hook = &r;
    CHECK_THROWS_WITH(llama_forward(m, {1, 2, 3}, fo), Catch::Contains("sliding window"));
}

TEST_CASE("rope_inv_freq: every scaling type against transformers' ROPE_INIT_FUNCTIONS", "[model][families]") {
    std::ifstream in(attnlab_test::data_dir() + "/rope_inv_freq.json");
    REQUIRE(in.good());
    const json g = json::parse(in);
    REQUIRE(g["cases"].size() == 8);
    for (const json & cs : g["cases"]) {
        const json & rp = cs["rope_parameters"];
        const std::string type = rp["rope_type"];
        INFO(type << " at " << cs["seq_len"]);
        llama_config c;
        c.head_dim = cs["head_dim"];
        c.n_ctx_train = cs["max_position_embeddings"];
        c.rope_theta = rp["rope_theta"];
        rope_scaling & s = c.rope;
        s.factor = rp.value("factor", 1.0);
        s.orig_ctx = rp.value("original_max_position_embeddings", 0);
        if (type == "linear") s.type = rope_scaling_type::linear;
        if (type == "dynamic") s.type = rope_scaling_type::dynamic;
        if (type == "yarn") {
            s.type = rope_scaling_type::yarn;
            s.beta_fast = rp.value("beta_fast", 32.0);
            s.beta_slow = rp.value("beta_slow", 1.0);
        }
        if (type == "llama3") {
            s.type = rope_scaling_type::llama3;
            s.low_freq_factor = rp["low_freq_factor"];
            s.high_freq_factor = rp["high_freq_factor"];
        }
        if (type == "longrope") {
            s.type = rope_scaling_type::longrope;
            s.long_factors = rp["long_factor"].get<std::vector<float>>();
            s.short_factors = rp["short_factor"].get<std::vector<float>>();
            s.factor = double(c.n_ctx_train) / s.orig_ctx;   // what the loaders set
        }
        const std::vector<double> inv = rope_inv_freq(c, cs["seq_len"].get<int>());
        const auto ref = cs["inv_freq"].get<std::vector<double>>();
        REQUIRE(inv.size() == ref.size());
        for (size_t i = 0; i < inv.size(); ++i) CHECK(inv[i] == Approx(ref[i]).epsilon(1e-6));
        CHECK(rope_attn_factor(c) == Approx(cs["attention_factor"].get<double>()).epsilon(1e-9));
    }
}

TEST_CASE("attnlab-cli info and ppl open every family in both formats, alike", "[cli][families]") {
    for (const char * fam : {"llama3", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "phi3"}) {
        INFO(fam);
        const std::string d = family_dir(fam);
        const golden g = load_golden(fam);
        const auto info = attnlab_test::run_sh(attnlab_test::cli_path() + " info " + d + "/model.gguf");
        CHECK(info.code == 0);
        CHECK(info.out.find(g.meta["gguf_arch"].get<std::string>()) != std::string::npos);
        double ppl[2] = {0.0, 0.0};
        for (int i = 0; i < 2; ++i) {
            const auto r = attnlab_test::run_sh(attnlab_test::cli_path() + " ppl -q --json -c 128 -n 256 -m " + d +
                                                (i ? "/model.gguf" : "/hf"));
            REQUIRE(r.code == 0);
            const json j = json::parse(r.out);
            ppl[i] = j["ppl"].get<double>();
            CHECK(j["ppl"].get<double>() > 1.0);
        }
        // Same weights and tokenizer; GGUF carries RoPE factors (rope_freqs,
        // longrope's attn_factor) as float32 where the HF config gives double.
        CHECK(ppl[0] == Approx(ppl[1]).epsilon(1e-6));
    }
}
