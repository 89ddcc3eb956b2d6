#pragma once
// Shared helpers for the test suite: where the default model and text live,
// and how a test that needs them behaves when they are absent.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <array>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/selection.h"
#include "base/data_path.h"
#include "base/error.h"

#include <catch2/catch.hpp>
#include <sys/wait.h>

namespace attnlab_test {

// The checkout, found as the program finds its data (base/data_path.h): no
// build-time path is baked into the test binaries either.
inline std::string source_dir() { return attnlab::data_root(); }
inline std::string data_dir() { return attnlab::data_path("tests/data"); }

inline bool file_exists(const std::string & p) { return std::ifstream(p).good(); }

inline std::string default_model_path() {
    if (const char * e = std::getenv("ATTNLAB_MODEL")) return e;
    return source_dir() + "/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}
inline std::string kjv_path() { return source_dir() + "/assets/text/kjv.txt"; }

// Tests that need the default model or the KJV text call this first. Without
// the asset they are skipped with a message, unless ATTNLAB_REQUIRE_ASSETS is
// set (CI sets it, after installing them), where a missing asset fails.
inline bool need_asset(const std::string & path) {
    if (file_exists(path)) return true;
    if (std::getenv("ATTNLAB_REQUIRE_ASSETS")) {
        FAIL("required asset missing: " << path << " (run scripts/setup.sh)");
    }
    WARN("skipped: asset missing: " << path << " (run scripts/setup.sh)");
    return false;
}

// One layer's random attention inputs with the output poisoned (NaN), so a
// kernel that skips an element fails. q_scale > 1 makes softmax rows peaked,
// which exercises the running-max rescaling of flash-style kernels.
struct attn_case {
    std::vector<float> q, k, v, out;
    attnlab::attention_layer_io io;
};

inline attn_case attn_case_random(int L, int n_head, int n_head_kv, int hd, bool causal, uint32_t seed,
                                  float q_scale = 1.0f, float k_scale = 1.0f, int layer = 0) {
    attn_case c;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    c.q.resize(size_t(L) * n_head * hd);
    c.k.resize(size_t(L) * n_head_kv * hd);
    c.v.resize(size_t(L) * n_head_kv * hd);
    c.out.assign(size_t(L) * n_head * hd, NAN);
    for (auto & x : c.q) x = nd(rng) * q_scale;
    for (auto & x : c.k) x = nd(rng) * k_scale;
    for (auto & x : c.v) x = nd(rng);
    c.io.layer = layer;
    c.io.n_tokens = L;
    c.io.n_head = n_head;
    c.io.n_head_kv = n_head_kv;
    c.io.head_dim = hd;
    c.io.scale = 1.0f / std::sqrt(float(hd));
    c.io.causal = causal;
    c.io.q = c.q.data();
    c.io.k = c.k.data();
    c.io.v = c.v.data();
    c.io.out = c.out.data();
    return c;
}

// A selection as an L x L boolean, read straight from its CSR arrays (the
// definition the tests hold every kernel and method to): block lists expand
// to whole blocks, clipped to the causal triangle.
inline std::vector<char> selection_mask(const attnlab::selection & s) {
    const int L = s.n_tokens, B = s.block;
    std::vector<char> m((size_t) L * L, 0);
    if (s.token_level) {
        for (int i = 0; i < L; ++i)
            for (int64_t t = s.tok_ptr[i]; t < s.tok_ptr[i + 1]; ++t) m[(size_t) i * L + s.tok_cols[t]] = 1;
        return m;
    }
    for (int I = 0; I < s.n_blocks(); ++I)
        for (int32_t t = s.blk_ptr[I]; t < s.blk_ptr[I + 1]; ++t)
            for (int i = I * B; i < std::min(L, I * B + B); ++i)
                for (int j = s.blk_cols[t] * B; j < std::min(L, s.blk_cols[t] * B + B); ++j)
                    if (!(s.causal && j > i)) m[(size_t) i * L + j] = 1;
    return m;
}

// ---- running commands (the CLI tests) ----

struct run_result {
    int code = -1;
    std::string out;   // stdout, and stderr unless discarded
};

// The CLI under test: $ATTNLAB_CLI (ctest sets it), else build/attnlab-cli.
inline std::string cli_path() {
    const char * e = std::getenv("ATTNLAB_CLI");
    return e ? e : attnlab::data_path("build/attnlab-cli");
}

// A shell command's exit code and output (stderr merged, or discarded).
inline run_result run_sh(const std::string & cmd, bool merge_stderr = true) {
    run_result r;
    FILE * p = popen((cmd + (merge_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
    REQUIRE(p);
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int st = pclose(p);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// The input_error f throws (a test failure when it throws none), for
// checking the file and field an error names.
template <typename F> attnlab::input_error expect_input_error(F && f) {
    try {
        f();
    } catch (const attnlab::input_error & e) {
        return e;
    }
    FAIL("no input_error thrown");
    return attnlab::input_error("", "", "");
}

} // namespace attnlab_test
