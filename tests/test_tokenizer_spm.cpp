// SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma) from
// tokenizer.json, token for token against Hugging Face `tokenizers`
// (tools/gen_spm_tokenizer_golden.py): three shapes of the same model
// (Prepend + Replace normalizer, Metaspace, Replace only) on tricky text.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/model_files.h"
#include "model/tokenizer.h"
#include "test_util.h"

using namespace attnlab;
using json = nlohmann::json;

TEST_CASE("SentencePiece-style BPE (byte fallback) matches tokenizers token for token", "[tokenizer]") {
    std::ifstream in(attnlab_test::data_dir() + "/tokenizer_spm_golden.json");
    REQUIRE(in.good());
    const json g = json::parse(in);
    REQUIRE(g["variants"].size() == 3);
    for (const auto & [variant, cases] : g["variants"].items()) {
        const bpe_tokenizer tok =
            bpe_tokenizer::from_tokenizer_json(attnlab_test::data_dir() + "/tokenizer_spm_" + variant + ".json");
        CHECK(tok.pre_type() == "spm");
        CHECK(tok.add_bos());
        CHECK(tok.bos_id() == 1);
        int n_cases = 0, byte_ids = 0;
        for (const json & c : cases) {
            const std::string text = c["text"];
            INFO(variant << ": '" << text << "'");
            const auto want = c["ids"].get<std::vector<int32_t>>();
            const std::vector<int32_t> got = tok.encode(text);
            CHECK(got == want);
            for (int32_t id : want) byte_ids += id >= 3 && id < 259;
            // decode(encode(x)) gives the text back (BOS and literal specials aside).
            if (text.find("<s>") == std::string::npos && text.find("\xe2\x96\x81") == std::string::npos) {
                std::vector<int32_t> body(got.begin() + 1, got.end());
                CHECK(tok.decode(body) == c["decoded"].get<std::string>());
            }
            ++n_cases;
        }
        CHECK(n_cases == 13);
        CHECK(byte_ids > 10);   // the CJK, emoji and Arabic cases went through byte fallback
    }
}

TEST_CASE("byte fallback without a SentencePiece normalizer is refused", "[tokenizer]") {
    std::ifstream in(attnlab_test::data_dir() + "/tokenizer_spm_llama.json");
    json d = json::parse(in);
    d["normalizer"] = nullptr;
    d["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    const std::string path =
        (std::filesystem::temp_directory_path() / ("attnlab_spm_bad_" + std::to_string(::getpid()) + ".json")).string();
    std::ofstream(path) << d.dump();
    const input_error e = attnlab_test::expect_input_error([&] { bpe_tokenizer::from_tokenizer_json(path); });
    CHECK(e.field() == "model.byte_fallback");
    d = json::parse(std::ifstream(attnlab_test::data_dir() + "/tokenizer_spm_llama.json"));
    d["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xe2\x96\x81"}, {"split", true}};
    d["normalizer"] = nullptr;
    std::ofstream(path) << d.dump();
    CHECK(attnlab_test::expect_input_error([&] { bpe_tokenizer::from_tokenizer_json(path); }).field() == "pre_tokenizer");
    std::remove(path.c_str());
}

TEST_CASE("GGUF SentencePiece vocabulary (scores, llama.cpp's merging) matches tokenizers", "[tokenizer]") {
    std::ifstream in(attnlab_test::data_dir() + "/tokenizer_spm_golden.json");
    REQUIRE(in.good());
    const json g = json::parse(in);
    const bpe_tokenizer tok = tokenizer_load(attnlab_test::data_dir() + "/tokenizer_spm_llama.gguf");
    CHECK(tok.pre_type() == "spm");
    CHECK(tok.add_bos());
    int n = 0;
    for (const json & c : g["variants"]["llama"]) {
        const std::string text = c["text"];
        INFO("'" << text << "'");
        CHECK(tok.encode(text) == c["ids"].get<std::vector<int32_t>>());
        ++n;
    }
    CHECK(n == 13);
}
