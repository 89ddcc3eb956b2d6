#pragma once
// Shared helpers for the test suite: where the default model and text live,
// and how a test that needs them behaves when they are absent.
#include <cstdlib>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

namespace attnlab_test {

inline std::string source_dir() { return ATTNLAB_SOURCE_DIR; }
inline std::string data_dir() { return ATTNLAB_TEST_DATA; }

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

} // namespace attnlab_test
