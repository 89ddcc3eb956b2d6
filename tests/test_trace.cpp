// Trace files: round trips, conversions and corrupt input.
#include "base/error.h"
#include "base/half.h"
#include "base/job.h"
#include "base/sha256.h"
#include "io/trace.h"
#include "data/capture.h"
#include "model/llama.h"
#include "test_util.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <map>
#include <unistd.h>

#include <nlohmann/json.hpp>

using namespace attnlab;

static qkv_capture random_capture(int n_tokens, st_dtype dtype, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    qkv_capture cap;
    trace_info & t = cap.info;
    t.producer = "test";
    t.model_id = "tiny";
    t.model_sha256 = std::string(64, 'a');
    t.text_spec = "kjv:eval";
    t.text_sha256 = std::string(64, 'b');
    t.n_layer = 4;
    t.n_head = 6;
    t.n_head_kv = 2;
    t.head_dim = 8;
    t.n_ctx_train = 2048;
    t.rope_theta = 100000.0;
    t.layers = {0, 2, 3};
    t.dtype = dtype;
    for (int i = 0; i < n_tokens; i++) {
        t.token_ids.push_back(int32_t(rng() % 1000));
        t.token_strings.push_back(i % 7 == 0 ? std::string(" \xC3\xA9t") : "tok" + std::to_string(i));
    }
    for (int l : t.layers) {
        layer_qkv lq;
        lq.layer = l;
        lq.q.resize(size_t(n_tokens) * t.n_head * t.head_dim);
        lq.k.resize(size_t(n_tokens) * t.n_head_kv * t.head_dim);
        lq.v.resize(lq.k.size());
        for (auto * v : {&lq.q, &lq.k, &lq.v}) {
            for (float & x : *v) x = nd(rng);
        }
        cap.layers.push_back(std::move(lq));
    }
    return cap;
}

static std::string read_file(const std::string & p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST_CASE("half and bfloat16 conversions match their definitions for every 16-bit pattern", "[trace]") {
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double sign = (h & 0x8000) ? -1.0 : 1.0;
        float got = fp16_to_f32(uint16_t(h));
        if (e == 0x1f) {
            if (m == 0) REQUIRE(std::isinf(got));
            else REQUIRE(std::isnan(got));
            continue;
        }
        double want = e == 0 ? sign * std::ldexp(double(m), -24) : sign * std::ldexp(1.0 + m / 1024.0, int(e) - 15);
        REQUIRE(double(got) == want);
        REQUIRE(f32_to_fp16(got) == uint16_t(h)); // exact round trip
    }
    // bfloat16, every pattern (its NaNs included): the value by the format's
    // definition (8-bit exponent, 7-bit mantissa), an exact round trip for
    // numbers, and a NaN stays a quiet NaN of the same sign.
    for (uint32_t h = 0; h < 65536; h++) {
        const uint32_t e = (h >> 7) & 0xff, m = h & 0x7f;
        const double sign = (h & 0x8000) ? -1.0 : 1.0;
        const float b = bf16_to_f32(uint16_t(h));
        const uint16_t back = f32_to_bf16(b);
        INFO("bf16 pattern " << h);
        if (e == 0xff && m != 0) {
            REQUIRE(std::isnan(b));
            REQUIRE((back & 0x8000) == (h & 0x8000));
            REQUIRE((back & 0x7f80) == 0x7f80);
            REQUIRE((back & 0x40) != 0);
            continue;
        }
        const double want = e == 0xff ? sign * INFINITY
                            : e == 0  ? sign * std::ldexp(double(m), -133)
                                      : sign * std::ldexp(1.0 + m / 128.0, int(e) - 127);
        REQUIRE(double(b) == want);
        REQUIRE(back == uint16_t(h));
    }
    // rounding to nearest even, checked on values halfway between halves
    CHECK(f32_to_fp16(1.0f + 1.0f / 2048) == 0x3c00);           // tie, even below
    CHECK(f32_to_fp16(1.0f + 3.0f / 2048) == 0x3c02);           // tie, even above
    CHECK(f32_to_fp16(65520.0f) == 0x7c00);                     // rounds to inf
    CHECK(f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80);            // tie, even below
}

TEST_CASE("trace round trip keeps every header field and value", "[trace]") {
    for (st_dtype dt : {st_dtype::F32, st_dtype::F16, st_dtype::BF16}) {
        qkv_capture cap = random_capture(37, dt, 7);
        std::string path = "/tmp/attnlab_test_trace.safetensors";
        trace_write(path, cap);
        REQUIRE(trace_is_trace(path));
        qkv_capture back = trace_read(path);
        CHECK(back.info.token_ids == cap.info.token_ids);
        CHECK(back.info.token_strings == cap.info.token_strings);
        CHECK(back.info.layers == cap.info.layers);
        CHECK(back.info.model_sha256 == cap.info.model_sha256);
        CHECK(back.info.text_spec == cap.info.text_spec);
        CHECK(back.info.n_head_kv == 2);
        CHECK(back.info.dtype == dt);
        REQUIRE(back.layers.size() == 3);
        double tol = dt == st_dtype::F32 ? 0.0 : dt == st_dtype::F16 ? 1.0 / 1024 : 1.0 / 128;
        for (size_t li = 0; li < 3; li++) {
            const auto & a = cap.layers[li];
            const auto & b = back.layers[li];
            REQUIRE(b.layer == a.layer);
            REQUIRE(b.q.size() == a.q.size());
            for (size_t i = 0; i < a.q.size(); i++) REQUIRE(std::fabs(b.q[i] - a.q[i]) <= tol * std::fabs(a.q[i]) + 1e-7);
            for (size_t i = 0; i < a.v.size(); i++) REQUIRE(std::fabs(b.v[i] - a.v[i]) <= tol * std::fabs(a.v[i]) + 1e-7);
        }
        attention_layer_io io = capture_layer_io(back, 1);
        CHECK(io.layer == 2);
        CHECK(io.n_tokens == 37);
        CHECK(io.kv_head_of(5) == 1);
        qkv_capture only = trace_read(path, {3});
        REQUIRE(only.layers.size() == 1);
        CHECK(only.layers[0].layer == 3);
        CHECK_THROWS_AS(trace_read(path, {1}), input_error); // layer 1 was not captured
    }
}

TEST_CASE("a truncated or corrupted trace is refused with an error naming the file", "[trace]") {
    qkv_capture cap = random_capture(16, st_dtype::F16, 3);
    std::string path = "/tmp/attnlab_test_trace_src.safetensors";
    trace_write(path, cap);
    std::string bytes = read_file(path);
    std::string cut_path = "/tmp/attnlab_test_trace_cut.safetensors";
    int refused = 0;
    for (size_t cut = 0; cut < bytes.size(); cut += std::max<size_t>(1, bytes.size() / 97)) {
        std::ofstream(cut_path, std::ios::binary | std::ios::trunc) << bytes.substr(0, cut);
        try {
            trace_read(cut_path);
            FAIL("accepted a trace cut at " << cut << " of " << bytes.size());
        } catch (const input_error & e) {
            REQUIRE(e.file() == cut_path);
            refused++;
        }
    }
    CHECK(refused > 90);
    // flipped bytes in the header: parse or refuse, never crash or accept garbage sizes
    std::mt19937 rng(11);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | uint8_t(bytes[size_t(i)]);
    for (int trial = 0; trial < 300; trial++) {
        std::string b = bytes;
        size_t at = 8 + rng() % header_len;
        b[at] = char(uint8_t(b[at]) ^ uint8_t(1u << (rng() % 8)));
        std::ofstream(cut_path, std::ios::binary | std::ios::trunc) << b;
        try {
            qkv_capture c = trace_read(cut_path);
            REQUIRE(c.layers.size() == c.info.layers.size());
        } catch (const input_error & e) {
            REQUIRE(e.file() == cut_path);
        }
    }
}

TEST_CASE("trace headers with wrong fields are refused naming the field", "[trace]") {
    auto expect_field = [](const std::map<std::string, std::string> & meta, const std::string & field) {
        std::vector<float> q(2 * 2 * 4, 1.0f), kv(2 * 1 * 4, 1.0f);
        std::vector<st_write_tensor> ts = {
            {"layers.0.q", st_dtype::F32, {2, 2, 4}, q.data(), q.size() * 4},
            {"layers.0.k", st_dtype::F32, {2, 1, 4}, kv.data(), kv.size() * 4},
            {"layers.0.v", st_dtype::F32, {2, 1, 4}, kv.data(), kv.size() * 4},
        };
        std::string p = "/tmp/attnlab_test_trace_bad.safetensors";
        safetensors_write(p, ts, meta);
        try {
            trace_read(p);
            FAIL("accepted a bad trace; expected an error on " << field);
        } catch (const input_error & e) {
            INFO(e.what());
            CHECK(e.field().find(field) != std::string::npos);
        }
    };
    nlohmann::json ok = {{"format", "attnlab-trace"}, {"format_version", 1}, {"producer", "t"}, {"model_id", "m"},
                         {"model_sha256", ""}, {"text_spec", ""}, {"text_sha256", ""}, {"arch", "llama"},
                         {"n_layer", 1}, {"n_head", 2}, {"n_head_kv", 1}, {"head_dim", 4}, {"n_ctx_train", 8},
                         {"rope_theta", 1e4}, {"layers", {0}}, {"n_tokens", 2}, {"token_ids", {1, 2}},
                         {"token_strings", {"a", "b"}}, {"dtype", "F32"}};
    {   // the good header passes, so the failures below are about the one field changed
        std::vector<float> q(16, 1.0f), kv(8, 1.0f);
        std::string p = "/tmp/attnlab_test_trace_ok.safetensors";
        safetensors_write(p, {{"layers.0.q", st_dtype::F32, {2, 2, 4}, q.data(), 64},
                              {"layers.0.k", st_dtype::F32, {2, 1, 4}, kv.data(), 32},
                              {"layers.0.v", st_dtype::F32, {2, 1, 4}, kv.data(), 32}},
                          {{"attnlab.trace", ok.dump()}});
        CHECK(trace_read(p).info.n_tokens() == 2);
    }
    expect_field({}, "attnlab.trace");
    expect_field({{"attnlab.trace", "{not json"}}, "attnlab.trace");
    auto with = [&](const char * k, nlohmann::json v) { nlohmann::json j = ok; j[k] = v; return j.dump(); };
    expect_field({{"attnlab.trace", with("format_version", 9)}}, "format_version");
    expect_field({{"attnlab.trace", with("n_head_kv", 3)}}, "n_head_kv");
    expect_field({{"attnlab.trace", with("head_dim", 8)}}, "layers.0.q.shape");
    expect_field({{"attnlab.trace", with("dtype", "F16")}}, "layers.0.q.dtype");
    expect_field({{"attnlab.trace", with("layers", {0, 1})}}, "layers");
    expect_field({{"attnlab.trace", with("token_strings", {"a"})}}, "token_strings");
    expect_field({{"attnlab.trace", with("n_layer", 100000)}}, "n_layer");
    expect_field({{"attnlab.trace", with("token_ids", "x")}}, "token_ids");
}

TEST_CASE("sha256 matches FIPS 180-2 test vectors", "[trace]") {
    CHECK(sha256_hex(std::string("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex(std::string("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex(std::string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha256 h;
    std::string a(1000, 'a');
    for (int i = 0; i < 1000; i++) h.update(a.data(), a.size());
    CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("the C++ capture of a HF checkpoint agrees with tools/export_trace.py to 1e-4", "[trace]") {
    // tests/data/trace_tiny_llama.safetensors was written by tools/export_trace.py
    // (transformers, float32) from tests/data/tiny_llama; see README "Golden files".
    const std::string dir = attnlab_test::data_dir() + "/tiny_llama";
    qkv_capture ref = trace_read(attnlab_test::data_dir() + "/trace_tiny_llama.safetensors");
    REQUIRE(ref.info.producer == "tools/export_trace.py");
    llama_model m = llama_model_load(dir);
    CHECK(ref.info.model_sha256 == m.source_sha256);
    capture_options opt;
    opt.ctx = 256;
    qkv_capture ours = capture_run_ids(m, ref.info.token_ids, opt);
    REQUIRE(ours.layers.size() == ref.layers.size());
    CHECK(ours.info.n_head == ref.info.n_head);
    CHECK(ours.info.n_head_kv == ref.info.n_head_kv);
    CHECK(ours.info.head_dim == ref.info.head_dim);
    CHECK(ours.info.rope_theta == Approx(ref.info.rope_theta));
    for (size_t li = 0; li < ref.layers.size(); li++) {
        const layer_qkv & a = ours.layers[li];
        const layer_qkv & b = ref.layers[li];
        const std::vector<float> * pa[3] = {&a.q, &a.k, &a.v};
        const std::vector<float> * pb[3] = {&b.q, &b.k, &b.v};
        for (int p = 0; p < 3; p++) {
            REQUIRE(pa[p]->size() == pb[p]->size());
            double max_ref = 0, max_diff = 0;
            for (size_t i = 0; i < pb[p]->size(); i++) {
                max_ref = std::max(max_ref, double(std::fabs((*pb[p])[i])));
                max_diff = std::max(max_diff, double(std::fabs((*pa[p])[i] - (*pb[p])[i])));
            }
            INFO("layer " << a.layer << " part " << "qkv"[p] << " max|diff| " << max_diff << " max|ref| " << max_ref);
            CHECK(max_diff <= 1e-4 * max_ref);
        }
    }
}

TEST_CASE("a trace holding NaN or Inf is refused naming the file, tensor and element", "[trace]") {
    // issue 15: NaN in a trace gave plausible numbers (density 1, error 0, recall 1).
    const std::string p = "/tmp/attnlab_test_trace_nan_" + std::to_string(::getpid()) + ".safetensors";
    for (st_dtype dt : {st_dtype::F32, st_dtype::F16, st_dtype::BF16}) {
        for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
            qkv_capture cap = random_capture(10, dt, 3);
            // layer 2's K, token 7, kv head 1, dim 5
            cap.layers[1].k[(size_t(7) * cap.info.n_head_kv + 1) * cap.info.head_dim + 5] = bad;
            trace_write(p, cap);
            CHECK_NOTHROW(trace_read(p, {0}));   // the clean layers still load
            try {
                trace_read(p);
                FAIL("a non-finite trace was accepted");
            } catch (const input_error & e) {
                CHECK(e.file() == p);
                CHECK(e.field() == "layers.2.k");
                CHECK(std::string(e.what()).find(std::isnan(bad) ? "NaN" : "Inf") != std::string::npos);
                CHECK(std::string(e.what()).find("token 7, head 1, dim 5") != std::string::npos);
            }
        }
    }
    std::remove(p.c_str());
}

TEST_CASE("a cancel request stops trace_write: the old file stays, no temporary is left", "[trace]") {
    // issue 15: Ctrl-C during capture's final write was ignored.
    const std::string dir = "/tmp/attnlab_test_trace_cancel_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string p = dir + "/t.safetensors";
    const qkv_capture old = random_capture(8, st_dtype::F32, 1);
    trace_write(p, old);
    const std::string before = read_file(p);
    job_progress job;
    job.cancel();
    CHECK_THROWS_AS(trace_write(p, random_capture(64, st_dtype::F16, 2), &job), job_cancelled);
    CHECK(read_file(p) == before);
    CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
    std::filesystem::remove_all(dir);
}
