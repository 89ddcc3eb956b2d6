// Byte-level BPE tokenizer against golden ids from Hugging Face tokenizers
// (tools/gen_tokenizer_golden.py), plus round trips and bad-input errors.
#include "base/error.h"
#include "io/gguf.h"
#include "model/tokenizer.h"
#include "model/unicode.h"
#include "test_util.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <unistd.h>

using attnlab::bpe_tokenizer;
using attnlab::gguf_file;
using attnlab::input_error;
using nlohmann::json;

namespace {

json load_json(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return json::parse(in);
}

const json & golden() {
    static const json g = load_json(attnlab_test::data_dir() + "/tokenizer_golden.json");
    return g;
}

std::string read_file(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string & path, const std::string & s) {
    std::ofstream out(path, std::ios::binary);
    out << s;
    REQUIRE(out.good());
}

std::string tmp_path(const std::string & name) {
    const char * d = std::getenv("TMPDIR");
    return std::string(d && *d ? d : "/tmp") + "/attnlab_tok_" + std::to_string(::getpid()) + "_" + name;
}

// The shared model is opened once; the tokenizer is built once per process.
const bpe_tokenizer & smollm2() {
    static const gguf_file f = gguf_file::open(attnlab_test::default_model_path());
    static const bpe_tokenizer t = bpe_tokenizer::from_gguf(f);
    return t;
}

void check_cases(const bpe_tokenizer & tok, const char * key) {
    for (const json & c : golden()["cases"]) {
        const std::string text = c["text"].get<std::string>();
        const std::vector<int32_t> want = c[key].get<std::vector<int32_t>>();
        INFO("case " << c["name"].get<std::string>() << " (" << key << ")");
        CHECK(tok.encode(text) == want);
        // decode(encode(x)) == x, except where the vocabulary lacks a byte
        if (c["name"] != "dropped_bytes") CHECK(tok.decode(want) == text);
    }
}

// A minimal GGUF v3 writer (metadata only, no tensors) for bad-input tests.
struct gguf_writer {
    std::string buf;
    uint64_t n_kv = 0;
    template <typename T> void raw(T v) { buf.append(reinterpret_cast<const char *>(&v), sizeof v); }
    void str(const std::string & s) { raw<uint64_t>(s.size()); buf += s; }
    void kv_str(const std::string & k, const std::string & v) { str(k); raw<uint32_t>(8); str(v); ++n_kv; }
    void kv_u32(const std::string & k, uint32_t v) { str(k); raw<uint32_t>(4); raw<uint32_t>(v); ++n_kv; }
    void kv_str_array(const std::string & k, const std::vector<std::string> & v) {
        str(k); raw<uint32_t>(9); raw<uint32_t>(8); raw<uint64_t>(v.size());
        for (const auto & s : v) str(s);
        ++n_kv;
    }
    void kv_i32_array(const std::string & k, const std::vector<int32_t> & v) {
        str(k); raw<uint32_t>(9); raw<uint32_t>(5); raw<uint64_t>(v.size());
        for (int32_t x : v) raw<int32_t>(x);
        ++n_kv;
    }
    void save(const std::string & path) const {
        std::string out = "GGUF";
        auto put = [&](auto v) { out.append(reinterpret_cast<const char *>(&v), sizeof v); };
        put(uint32_t(3));
        put(uint64_t(0));
        put(n_kv);
        out += buf;
        write_file(path, out);
    }
};

// A tiny valid byte-level vocabulary: the 256 byte symbols, then "Ġt", "he", "Ġthe".
struct tiny_vocab {
    std::vector<std::string> tokens;
    std::vector<std::string> merges = {"Ġ t", "h e", "Ġt he"};
    tiny_vocab() {
        tokens.push_back("<|endoftext|>");
        uint32_t extra = 0; // GPT-2's byte-level alphabet, written out independently
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            std::string s;
            attnlab::unicode::utf8_append(s, printable ? uint32_t(b) : 256 + extra++);
            tokens.push_back(s);
        }
        for (const char * t : {"Ġt", "he", "Ġthe"}) tokens.push_back(t);
    }
};

void write_tiny_gguf(const std::string & path, const std::string & model, const std::string & pre,
                     const std::vector<std::string> * merges, bool bad_types = false) {
    tiny_vocab v;
    gguf_writer w;
    w.kv_str("general.architecture", "llama");
    w.kv_str("tokenizer.ggml.model", model);
    if (!pre.empty()) w.kv_str("tokenizer.ggml.pre", pre);
    w.kv_str_array("tokenizer.ggml.tokens", v.tokens);
    std::vector<int32_t> types(v.tokens.size(), 1);
    types[0] = 3;
    if (bad_types) types.pop_back();
    w.kv_i32_array("tokenizer.ggml.token_type", types);
    if (merges) w.kv_str_array("tokenizer.ggml.merges", *merges);
    w.kv_u32("tokenizer.ggml.bos_token_id", 0);
    w.kv_u32("tokenizer.ggml.eos_token_id", 0);
    w.save(path);
}

// Expects from_gguf / from_tokenizer_json to throw input_error naming path and field.
template <typename F> void expect_input_error(F && f, const std::string & path, const std::string & field) {
    bool thrown = false;
    try {
        f();
    } catch (const input_error & e) {
        thrown = true;
        INFO("what: " << e.what());
        CHECK(e.file() == path);
        CHECK(e.field() == field);
    }
    CHECK(thrown);
}

uint64_t fnv1a64(const std::vector<int32_t> & ids) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int32_t id : ids) {
        h ^= uint64_t(uint32_t(id));
        h *= 0x100000001b3ull;
    }
    return h;
}

} // namespace

TEST_CASE("tokenizer: SmolLM2 from GGUF matches Hugging Face tokenizers ids", "[tokenizer]") {
    if (!attnlab_test::need_asset(attnlab_test::default_model_path())) return;
    const bpe_tokenizer & tok = smollm2();
    CHECK(tok.n_vocab() == 49152);
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);
    CHECK_FALSE(tok.add_bos());
    CHECK(tok.pre_type() == "smollm");
    check_cases(tok, "ids");
}

TEST_CASE("tokenizer: specials, pieces and byte round trips", "[tokenizer]") {
    if (!attnlab_test::need_asset(attnlab_test::default_model_path())) return;
    const bpe_tokenizer & tok = smollm2();
    CHECK(tok.token_piece(1) == "<|im_start|>");
    CHECK(tok.encode("<|im_start|>") == std::vector<int32_t>{1});
    CHECK(tok.encode("<|im_end|><|im_start|>") == std::vector<int32_t>{2, 1});
    CHECK(tok.encode("") .empty());

    // Every token's piece is what decoding that single id gives; pieces are
    // never empty (every token stands for some bytes).
    for (int32_t id = 0; id < tok.n_vocab(); ++id) {
        const std::string p = tok.token_piece(id);
        REQUIRE_FALSE(p.empty());
        REQUIRE(tok.decode({id}) == p);
    }
    // Every single byte is one token whose piece is that byte, except the
    // bytes SmolLM2's vocabulary lacks (0xC0, 0xC1, 0xF1, 0xF2, 0xF5..0xFF and
    // six control bytes): they are dropped, as Hugging Face's BPE does.
    int missing = 0;
    for (int b = 0; b < 256; ++b) {
        const std::string s(1, char(b));
        const std::vector<int32_t> ids = tok.encode(s);
        INFO("byte " << b);
        if (ids.empty()) { ++missing; continue; }
        REQUIRE(ids.size() == 1);
        CHECK(tok.token_piece(ids[0]) == s);
    }
    CHECK(missing == 21);
    CHECK(tok.encode("\xff").empty());
    // The dropped byte still separates pre-tokens (golden case dropped_bytes too).
    CHECK(tok.encode("a\x04" "b") == std::vector<int32_t>{tok.encode("a")[0], tok.encode("b")[0]});
    // Piece of a common word token, and encode of it back.
    const std::vector<int32_t> the = tok.encode(" the");
    REQUIRE(the.size() == 1);
    CHECK(tok.token_piece(the[0]) == " the");

    CHECK_THROWS_AS(tok.token_piece(-1), input_error);
    CHECK_THROWS_AS(tok.token_piece(tok.n_vocab()), input_error);
    CHECK_THROWS_AS(tok.decode({0, 49152}), input_error);
}

// Invalid UTF-8 has no reference (HF takes str). Our rule: each byte that is
// not part of valid UTF-8 stands alone, like punctuation, and goes through the
// byte-level alphabet, so encoding is lossless as long as the vocabulary has
// the byte (bytes it lacks are dropped, as for valid text).
TEST_CASE("tokenizer: invalid UTF-8 is kept byte for byte", "[tokenizer]") {
    if (!attnlab_test::need_asset(attnlab_test::default_model_path())) return;
    const bpe_tokenizer & tok = smollm2();
    const std::vector<std::string> inputs = {
        "\xc3", "abc\xc3(def", "\xe2\x82", "x\xed\xa0\x80y", "\xe0\x80\xaf overlong", "\xf4\x90\x80\x80",
        "ok \xc3\xc3 ok", "\x80\x80\x80", "caf\xc3\xa9\xc3", std::string("nul\0byte", 8), "\xf0\x9f\x99",
    };
    for (const std::string & s : inputs) {
        INFO("input bytes: " << s.size());
        const bool valid_text = attnlab::unicode::utf8_valid(s.data(), s.size()) && s.find('\0') == std::string::npos;
        REQUIRE_FALSE(valid_text);
        const std::vector<int32_t> ids = tok.encode(s);
        CHECK(tok.decode(ids) == s);
    }
    // A lone invalid byte is exactly its byte token.
    const std::vector<int32_t> lone = tok.encode("\x80");
    REQUIRE(lone.size() == 1);
    CHECK(tok.token_piece(lone[0]) == "\x80");
    // It splits words: "a\x80b" -> "a", "\x80", "b".
    const std::vector<int32_t> mid = tok.encode("a\x80" "b");
    REQUIRE(mid.size() == 3);
    CHECK(tok.token_piece(mid[1]) == "\x80");
    // Valid text around it is unaffected.
    const std::vector<int32_t> hello = tok.encode("Hello world");
    std::vector<int32_t> both = tok.encode("Hello world\xc3");
    REQUIRE(both.size() == hello.size() + 1);
    CHECK(std::vector<int32_t>(both.begin(), both.end() - 1) == hello);
    // A byte the vocabulary lacks is dropped, invalid or not.
    CHECK(tok.decode(tok.encode("x\xffy")) == "xy");
}

TEST_CASE("tokenizer: GPT-2 pre-tokenizer on the full vocabulary via tokenizer.json", "[tokenizer]") {
    if (!attnlab_test::need_asset(attnlab_test::default_model_path())) return;
    // Write the GGUF's vocabulary as a tokenizer.json with a plain ByteLevel
    // pre-tokenizer and "a b" string merges; the golden ids_gpt2 come from
    // the tokenizers library on the same vocabulary.
    const gguf_file f = gguf_file::open(attnlab_test::default_model_path());
    const std::vector<std::string> tokens = f.get_str_array("tokenizer.ggml.tokens");
    const std::vector<int64_t> types = f.get_int_array("tokenizer.ggml.token_type");
    json vocab = json::object();
    json added = json::array();
    for (size_t i = 0; i < tokens.size(); ++i) {
        vocab[tokens[i]] = i;
        if (types[i] == 3) added.push_back({{"id", i}, {"content", tokens[i]}, {"special", true}});
    }
    json doc = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", f.get_str_array("tokenizer.ggml.merges")}}},
    };
    const std::string path = tmp_path("gpt2_full.json");
    write_file(path, doc.dump());
    const bpe_tokenizer tok = bpe_tokenizer::from_tokenizer_json(path);
    std::remove(path.c_str());
    CHECK(tok.pre_type() == "gpt2");
    CHECK(tok.n_vocab() == 49152);
    check_cases(tok, "ids_gpt2");
}

TEST_CASE("tokenizer: small tokenizer.json matches the tokenizers library", "[tokenizer]") {
    const std::string path = attnlab_test::data_dir() + "/tokenizer_small.json";
    const bpe_tokenizer tok = bpe_tokenizer::from_tokenizer_json(path);
    CHECK(tok.pre_type() == "smollm");
    CHECK(tok.n_vocab() == 1273);
    CHECK_FALSE(tok.add_bos());
    check_cases(tok, "ids_small");

    SECTION("merges in the \"a b\" string form give the same ids") {
        json doc = load_json(path);
        json merges = json::array();
        for (const json & m : doc["model"]["merges"]) merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        doc["model"]["merges"] = merges;
        const std::string p2 = tmp_path("small_str_merges.json");
        write_file(p2, doc.dump());
        const bpe_tokenizer tok2 = bpe_tokenizer::from_tokenizer_json(p2);
        std::remove(p2.c_str());
        check_cases(tok2, "ids_small");
    }
}

TEST_CASE("tokenizer: llama3 Split pre-tokenizer matches the tokenizers library", "[tokenizer]") {
    const bpe_tokenizer tok = bpe_tokenizer::from_tokenizer_json(attnlab_test::data_dir() + "/tokenizer_small_llama3.json");
    CHECK(tok.pre_type() == "llama-bpe");
    check_cases(tok, "ids_small_llama3");
}

TEST_CASE("tokenizer: KJV encode speed and exact ids", "[tokenizer]") {
    if (!attnlab_test::need_asset(attnlab_test::default_model_path())) return;
    if (!attnlab_test::need_asset(attnlab_test::kjv_path())) return;
    const bpe_tokenizer & tok = smollm2();
    const std::string kjv = read_file(attnlab_test::kjv_path());
    const json & want = golden()["kjv_full"];
    REQUIRE(kjv.size() == want["bytes"].get<size_t>());

    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tok.encode(kjv);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    WARN("KJV: " << kjv.size() << " bytes -> " << ids.size() << " tokens in " << s << " s ("
                 << (ids.size() / s) << " tokens/s, " << (kjv.size() / s / 1e6) << " MB/s)");
    CHECK(ids.size() == want["n_tokens"].get<size_t>());
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long) fnv1a64(ids));
    CHECK(std::string(hex) == want["fnv1a64"].get<std::string>());
    CHECK(tok.decode(ids) == kjv);
    CHECK(s < 60.0); // seconds, not minutes (even in sanitizer builds)
}

TEST_CASE("tokenizer: bad tokenizer.json inputs give input_error naming the file", "[tokenizer]") {
    const json small = load_json(attnlab_test::data_dir() + "/tokenizer_small.json");
    auto try_doc = [&](const std::string & name, const std::string & text, const std::string & field) {
        const std::string path = tmp_path(name);
        write_file(path, text);
        INFO("case " << name);
        expect_input_error([&] { bpe_tokenizer::from_tokenizer_json(path); }, path, field);
        std::remove(path.c_str());
    };
    {
        json d = small;
        d["model"].erase("merges");
        try_doc("no_merges.json", d.dump(), "model.merges");
    }
    {
        json d = small;
        d["model"]["merges"][1] = json::array({"Ġ", "nosuchtoken"});
        try_doc("merge_not_in_vocab.json", d.dump(), "model.merges[1]");
    }
    {
        json d = small;
        d["model"]["merges"][2] = "justone";
        try_doc("merge_malformed.json", d.dump(), "model.merges[2]");
    }
    {
        json d = small;
        d["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "▁"}};
        try_doc("unknown_pre.json", d.dump(), "pre_tokenizer");
    }
    {
        json d = small;
        d["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}},
                                                   {"behavior", "Isolated"}, {"invert", false}};
        d["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = false;
        try_doc("unknown_split.json", d.dump(), "pre_tokenizer.pretokenizers[0].pattern");
    }
    {
        json d = small;
        d["model"] = {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", json::array({json::array({"<unk>", 0.0})})}};
        try_doc("unigram.json", d.dump(), "model.type");
    }
    {
        json d = small;
        d["normalizer"] = {{"type", "NFC"}};
        try_doc("normalizer.json", d.dump(), "normalizer");
    }
    try_doc("malformed.json", small.dump().substr(0, 5000), "json");
    try_doc("not_json.json", "this is not json", "json");
    try_doc("array.json", "[1, 2, 3]", "json");
    {
        const std::string path = tmp_path("does_not_exist.json");
        expect_input_error([&] { bpe_tokenizer::from_tokenizer_json(path); }, path, "file");
    }
}

TEST_CASE("tokenizer: bad GGUF tokenizer metadata gives input_error naming the file", "[tokenizer]") {
    tiny_vocab v;
    auto try_gguf = [&](const std::string & name, const std::string & model, const std::string & pre,
                        const std::vector<std::string> * merges, const std::string & field, bool bad_types = false) {
        const std::string path = tmp_path(name);
        write_tiny_gguf(path, model, pre, merges, bad_types);
        INFO("case " << name);
        const gguf_file f = gguf_file::open(path);
        expect_input_error([&] { bpe_tokenizer::from_gguf(f); }, path, field);
        std::remove(path.c_str());
    };

    // The tiny vocabulary itself is fine.
    {
        const std::string path = tmp_path("tiny_ok.gguf");
        write_tiny_gguf(path, "gpt2", "gpt2", &v.merges);
        const gguf_file f = gguf_file::open(path);
        const bpe_tokenizer tok = bpe_tokenizer::from_gguf(f);
        std::remove(path.c_str());
        CHECK(tok.n_vocab() == 260);
        CHECK(tok.encode(" the") == std::vector<int32_t>{259});
        CHECK(tok.encode("<|endoftext|> the") == std::vector<int32_t>{0, 259});
        CHECK(tok.decode(tok.encode("the thee\n\t x")) == "the thee\n\t x");
    }
    try_gguf("no_merges.gguf", "gpt2", "gpt2", nullptr, "tokenizer.ggml.merges");
    const std::vector<std::string> bad = {"Ġ t", "h x", "Ġt he"}; // "hx" is not a token
    try_gguf("merge_not_in_vocab.gguf", "gpt2", "gpt2", &bad, "tokenizer.ggml.merges[1]");
    const std::vector<std::string> nospace = {"Ġ t", "hx"};
    try_gguf("merge_malformed.gguf", "gpt2", "gpt2", &nospace, "tokenizer.ggml.merges[1]");
    try_gguf("unknown_pre.gguf", "gpt2", "deepseek-coder", &v.merges, "tokenizer.ggml.pre");
    try_gguf("missing_pre.gguf", "gpt2", "", &v.merges, "tokenizer.ggml.pre");
    try_gguf("spm.gguf", "llama", "default", &v.merges, "tokenizer.ggml.scores");   // SentencePiece needs its scores
    try_gguf("bert.gguf", "bert", "default", &v.merges, "tokenizer.ggml.model");
    try_gguf("types.gguf", "gpt2", "gpt2", &v.merges, "tokenizer.ggml.token_type", true);
}
