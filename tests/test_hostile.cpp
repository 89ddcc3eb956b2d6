// Hostile inputs (issue 15, part A): overflowing header products, deep JSON,
// deep method specs, resource budgets checked before allocating, FIFOs and
// devices, snapshot thread counts and clear errors. Each case failed (crash,
// hang, huge allocation or an unclear error) before its fix.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <omp.h>

#include <nlohmann/json.hpp>

#include "base/checked.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/read_file.h"
#include "data/corpus.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/trace.h"
#include "lab/scenario.h"
#include "lab/snapshot.h"
#include "methods/method.h"
#include "methods/method_spec.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/model_info.h"
#include "model/tokenizer.h"
#include "test_util.h"

using namespace attnlab;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct scratch {
    std::string path;
    scratch() {
        char tmpl[] = "/tmp/attnlab_hostile_XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~scratch() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string & name) const { return path + "/" + name; }
};

void write_text(const std::string & path, const std::string & s) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << s;
}

// f must throw an input_error naming `file`, its field containing field_part
// and its message containing msg_part. Returns the message.
std::string expect_refused(const std::function<void()> & f, const std::string & file, const std::string & field_part,
                           const std::string & msg_part = "") {
    try {
        f();
    } catch (const input_error & e) {
        INFO("error: " << e.what());
        CHECK(e.file() == file);
        CHECK(e.field().find(field_part) != std::string::npos);
        CHECK(std::string(e.what()).find(msg_part) != std::string::npos);
        return e.what();
    }
    FAIL("expected input_error for " << file << " (field " << field_part << ")");
    return "";
}

// Runs f in a child process, which must end within `seconds` with f having
// thrown input_error naming `file`: a reader that blocks on a FIFO fails
// here instead of hanging the suite.
void expect_refused_in_time(const std::function<void()> & f, const std::string & file, int seconds = 20) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int rc = 3;
        try {
            f();
            rc = 1;
        } catch (const input_error & e) {
            rc = e.file() == file ? 0 : 2;
        } catch (...) {
            rc = 4;
        }
        _exit(rc);
    }
    int st = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            FAIL(file << ": still blocked after " << seconds << " s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    INFO(file << ": child exit status " << st << " (0 refused naming the file, 1 accepted, 2 named another file)");
    CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
}

// Hand-made GGUF: metadata (u32 and string values) and tensor infos.
struct gguf_w {
    std::vector<uint8_t> b;
    void raw(const void * p, size_t n) { b.insert(b.end(), (const uint8_t *)p, (const uint8_t *)p + n); }
    void u32(uint32_t v) { raw(&v, 4); }
    void u64(uint64_t v) { raw(&v, 8); }
    void str(const std::string & s) { u64(s.size()); raw(s.data(), s.size()); }
    void header(uint64_t n_tensors, uint64_t n_kv) { raw("GGUF", 4); u32(3); u64(n_tensors); u64(n_kv); }
    void kv_u32(const std::string & k, uint32_t v) { str(k); u32((uint32_t)gguf_value_type::UINT32); u32(v); }
    void kv_str(const std::string & k, const std::string & v) { str(k); u32((uint32_t)gguf_value_type::STRING); str(v); }
    void tensor(const std::string & name, const std::vector<uint64_t> & ne, uint64_t offset) {
        str(name);
        u32((uint32_t)ne.size());
        for (uint64_t d : ne) u64(d);
        u32((uint32_t)ggml_type::F32);
        u64(offset);
    }
    void data(size_t bytes) {
        while (b.size() % 32) b.push_back(0);
        b.resize(b.size() + bytes, 0);
    }
    void save(const std::string & p) const {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out.write((const char *)b.data(), (std::streamsize)b.size());
    }
};

// A llama GGUF header with the given shapes and only token_embd.weight
// ([n_embd, n_vocab] F32) as a tensor.
void llama_gguf(const std::string & p, uint32_t layers, uint32_t embd, uint32_t heads, uint32_t head_dim, uint32_t vocab) {
    gguf_w g;
    g.header(1, 8);
    g.kv_str("general.architecture", "llama");
    g.kv_u32("llama.block_count", layers);
    g.kv_u32("llama.embedding_length", embd);
    g.kv_u32("llama.attention.head_count", heads);
    g.kv_u32("llama.attention.head_count_kv", heads);
    g.kv_u32("llama.attention.key_length", head_dim);
    g.kv_u32("llama.feed_forward_length", embd);
    g.kv_u32("llama.vocab_size", vocab);
    g.tensor("token_embd.weight", {embd, vocab}, 0);
    g.data(size_t(embd) * vocab * 4);
    g.save(p);
}

std::string tiny_hf() { return attnlab_test::data_dir() + "/tiny_llama"; }

json read_json(const std::string & p) {
    std::ifstream in(p);
    return json::parse(in);
}

// A copy of the tiny HF checkpoint with config.json edited.
std::string hf_with(const scratch & s, const std::string & name, const std::function<void(json &)> & edit) {
    const std::string d = s / name;
    fs::create_directories(d);
    fs::copy_file(tiny_hf() + "/model.safetensors", d + "/model.safetensors");
    json c = read_json(tiny_hf() + "/config.json");
    edit(c);
    write_text(d + "/config.json", c.dump(1));
    return d;
}

std::string deep_json(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

} // namespace

// ---------------------------------------------------------------- item 1: checked products

TEST_CASE("checked arithmetic names the file and field on overflow", "[hostile]") {
    CHECK(checked_mul<int64_t>(3, 4, "f", "x") == 12);
    CHECK(checked_mul_int(46340, 46340, "f", "x") == 2147395600);
    expect_refused([] { checked_mul_int(65536, 65536, "f.gguf", "heads"); }, "f.gguf", "heads", "does not fit");
    expect_refused([] { checked_mul<int64_t>(INT64_MAX / 2, 3, "f", "n"); }, "f", "n", "overflows");
    expect_refused([] { checked_add<uint64_t>(UINT64_MAX, 1, "f", "n"); }, "f", "n", "overflows");
}

TEST_CASE("heads x head dim overflowing an int is refused (GGUF and HF)", "[hostile]") {
    scratch s;
    const std::string p = s / "heads.gguf";
    llama_gguf(p, 1, 64, 65536, 65536, 4);
    expect_refused([&] { llama_model_load(p); }, p, "llama.attention.head_count", "does not fit");

    const std::string d = hf_with(s, "hf_heads", [](json & c) {
        c["num_attention_heads"] = 65536;
        c["num_key_value_heads"] = 65536;
        c["head_dim"] = 65536;
    });
    expect_refused([&] { llama_model_load(d); }, d + "/config.json", "num_attention_heads", "does not fit");
}

// ---------------------------------------------------------------- item 4: budgets

TEST_CASE("a layer count the file cannot hold is refused before allocating", "[hostile]") {
    scratch s;
    const std::string p = s / "layers.gguf";
    llama_gguf(p, 1u << 24, 64, 4, 16, 4);
    expect_refused([&] { llama_model_load(p); }, p, "llama.block_count", "layers of");

    const std::string d = hf_with(s, "hf_layers", [](json & c) { c["num_hidden_layers"] = 1 << 24; });
    expect_refused([&] { llama_model_load(d); }, d + "/config.json", "num_hidden_layers", "layers of");
    // the real checkpoint still loads
    CHECK(llama_model_load(tiny_hf()).layers.size() == (size_t)read_json(tiny_hf() + "/config.json")["num_hidden_layers"]);
}

TEST_CASE("GGUF tensors sharing data are refused, naming both", "[hostile]") {
    scratch s;
    const std::string p = s / "overlap.gguf";
    gguf_w g;
    g.header(3, 0);
    g.tensor("a", {64}, 0);
    g.tensor("b", {64}, 0);    // the same 256 bytes as a
    g.tensor("c", {8}, 256);
    g.data(288);
    g.save(p);
    const std::string msg = expect_refused([&] { gguf_file::open(p); }, p, "tensor_infos[", "overlaps tensor");
    CHECK(msg.find("\"a\"") != std::string::npos);
    CHECK(msg.find("\"b\"") != std::string::npos);

    // partial overlap past an empty tensor
    gguf_w h;
    h.header(3, 0);
    h.tensor("x", {64}, 0);
    h.tensor("empty", {0}, 64);
    h.tensor("y", {8}, 128);   // inside x's bytes [0, 256)
    h.data(288);
    h.save(p);
    const std::string m2 = expect_refused([&] { gguf_file::open(p); }, p, "tensor_infos[2]", "overlaps tensor \"x\"");
    CHECK(m2.find("\"y\"") != std::string::npos);
}

TEST_CASE("safetensors overlap error names both tensors", "[hostile]") {
    scratch s;
    const std::string p = s / "overlap.safetensors";
    const std::string hdr = R"({"w1":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w2":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    std::string file(8, '\0');
    const uint64_t n = hdr.size();
    std::memcpy(&file[0], &n, 8);
    file += hdr + std::string(12, '\0');
    write_text(p, file);
    const std::string msg = expect_refused([&] { safetensors_file::open(p); }, p, "tensors[w2]", "overlaps tensor \"w1\"");
    CHECK(msg.find("\"\"") == std::string::npos);
}

TEST_CASE("tokenizer.json ids far past the listed tokens are refused", "[hostile]") {
    scratch s;
    json t = read_json(attnlab_test::data_dir() + "/tokenizer_small.json");
    t["model"]["vocab"]["zzhuge"] = 1 << 24;
    const std::string p = s / "tokenizer.json";
    write_text(p, t.dump());
    expect_refused([&] { bpe_tokenizer::from_tokenizer_json(p); }, p, "model.vocab", "unused ids");
    // the unedited file still loads
    CHECK(bpe_tokenizer::from_tokenizer_json(attnlab_test::data_dir() + "/tokenizer_small.json").n_vocab() > 0);
}

TEST_CASE("texts over the size cap are refused; the cap is overridable", "[hostile]") {
    scratch s;
    const std::string p = s / "t.txt";
    write_text(p, std::string(200, 'a'));
    setenv("ATTNLAB_MAX_TEXT_BYTES", "100", 1);
    expect_refused([&] { text_load(p); }, p, "file", "ATTNLAB_MAX_TEXT_BYTES");
    setenv("ATTNLAB_MAX_TEXT_BYTES", "1000", 1);
    CHECK(text_load(p).text.size() == 200);
    setenv("ATTNLAB_MAX_TEXT_BYTES", "-5", 1);
    expect_refused([&] { text_load(p); }, "$ATTNLAB_MAX_TEXT_BYTES", "value");
    unsetenv("ATTNLAB_MAX_TEXT_BYTES");
    CHECK(text_max_bytes() == (64ull << 20));
}

// ---------------------------------------------------------------- item 5: regular files only

TEST_CASE("FIFOs and devices are refused, never read or blocked on", "[hostile]") {
    scratch s;
    const std::string fifo = s / "fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    expect_refused_in_time([&] { gguf_file::open(fifo); }, fifo);
    expect_refused_in_time([&] { safetensors_file::open(fifo); }, fifo);
    expect_refused_in_time([&] { trace_read_info(fifo); }, fifo);
    expect_refused_in_time([&] { llama_model_load(fifo); }, fifo);
    expect_refused_in_time([&] { file_kind_detect(fifo); }, fifo);
    expect_refused_in_time([&] { text_load(fifo); }, fifo);
    expect_refused_in_time([&] { bpe_tokenizer::from_tokenizer_json(fifo); }, fifo);
    expect_refused_in_time([&] { json_read_file(fifo, "json"); }, fifo);
    expect_refused_in_time([&] { text_load("/dev/zero"); }, "/dev/zero");
    expect_refused([&] { text_load(fifo); }, fifo, "file", "a FIFO");
    expect_refused([&] { text_load("/dev/zero"); }, "/dev/zero", "file", "character device");
}

// ---------------------------------------------------------------- item 2: JSON depth

TEST_CASE("deeply nested JSON is refused in every JSON input, naming the file", "[hostile]") {
    scratch s;
    const std::string deep = deep_json(200000);
    CHECK(json_depth_ok("[[\"[[[[\"]]", 10));
    CHECK_FALSE(json_depth_ok(deep.data(), deep.size()));

    const std::string tok = s / "tokenizer.json";
    write_text(tok, "{\"model\":" + deep + "}");
    expect_refused([&] { bpe_tokenizer::from_tokenizer_json(tok); }, tok, "json", "nested deeper");

    const std::string hf = hf_with(s, "hf_deep", [](json &) {});
    write_text(hf + "/config.json", "{\"x\":" + deep + "}");
    expect_refused([&] { llama_model_load(hf); }, hf + "/config.json", "config", "nested deeper");
    expect_refused([&] { model_info_read(hf); }, hf + "/config.json", "config", "nested deeper");

    const std::string sc = s / "scenario.json";
    write_text(sc, deep);
    expect_refused([&] { scenario_load(sc, false, {"heatmap"}); }, sc, "json", "nested deeper");

    const std::string snap = s / "snap";
    fs::create_directories(snap);
    write_text(snap + "/manifest.json", "{\"schema\":" + deep + "}");
    expect_refused([&] { snapshot_read(snap); }, snap + "/manifest.json", "json", "nested deeper");
}

// ---------------------------------------------------------------- item 3: spec nesting

TEST_CASE("method specs nest at most 8 deep", "[hostile]") {
    auto nested = [](int depth) {
        std::string s;
        for (int i = 1; i < depth; ++i) s += "max_keys:inner=";
        return s + "block_topk:B=64";
    };
    CHECK(method_spec_parse(nested(k_method_spec_max_depth)).name == "max_keys");
    CHECK(method_create(nested(k_method_spec_max_depth))->name() == "max_keys");
    const std::string nine = nested(k_method_spec_max_depth + 1);
    expect_refused([&] { method_spec_parse(nine); }, nine.substr(0, 80) + "...", "nesting", "at most 8");
    // wrapped values (method_spec_nest's "(...)") nest the same
    std::string wrapped_nine = "block_topk:B=64";
    for (int i = 1; i <= k_method_spec_max_depth; ++i) wrapped_nine = "max_keys:k=4,inner=(" + wrapped_nine + ")";
    expect_refused([&] { method_spec_parse(wrapped_nine); }, wrapped_nine.substr(0, 80) + "...", "nesting", "at most 8");
    // 8,500 levels: one scan and a short error, not gigabytes
    const std::string huge = nested(8500);
    try {
        method_create(huge);
        FAIL("accepted an 8500-level spec");
    } catch (const input_error & e) {
        CHECK(e.field() == "nesting");
        CHECK(std::string(e.what()).size() < 300);
    }
}

// ---------------------------------------------------------------- item 6 and 7: snapshots

namespace {

void write_manifest(const std::string & dir, const json & threads) {
    fs::create_directories(dir);
    json m = {{"schema", snapshot_schema},
              {"program", {{"name", "attnlab"}, {"version", "0"}, {"git_commit", "x"}}},
              {"created_utc", "2026-01-01T00:00:00Z"},
              {"metrics", {{"m", 1.0}}},
              {"scenario", {{"kind", "stub"}}},
              {"files", json::array()}};
    if (!threads.is_null()) m["threads"] = threads;
    write_text(dir + "/manifest.json", m.dump());
}

} // namespace

TEST_CASE("snapshot threads: a checked integer, capped to the machine", "[hostile]") {
    scratch s;
    const std::string d = s / "snap";
    const std::string mpath = d + "/manifest.json";
    write_manifest(d, 1);
    REQUIRE_NOTHROW(snapshot_read(d)); // the stub manifest is a valid snapshot
    for (const json & bad : {json(4294967297ull), json(100000), json(0), json(-1), json(2.5), json("4")}) {
        INFO(bad.dump());
        write_manifest(d, bad);
        expect_refused([&] { snapshot_read(d); }, mpath, "threads");
    }

    // A large (allowed) count runs with at most the machine's threads.
    write_manifest(d, k_snapshot_max_threads);
    int seen = -1;
    const snapshot_runner runner = [&](const json &, const std::string & out, job_progress *) {
        seen = omp_get_max_threads();
        write_manifest(out, k_snapshot_max_threads);
    };
    const int hw = std::max(1, (int)std::thread::hardware_concurrency());
    const snapshot_verify_result r = snapshot_verify(d, runner);
    CHECK(seen == std::min<int>(hw, (int)k_snapshot_max_threads));
    CHECK(r.threads == seen);
    CHECK(r.notes.size() == (hw < k_snapshot_max_threads ? 1u : 0u));
}

TEST_CASE("snapshot symlink errors name the link", "[hostile]") {
    scratch s;
    const std::string d = s / "snap";
    write_manifest(d, 1);
    const std::string target = s / "elsewhere.txt";
    write_text(target, "x");
    fs::create_directories(d + "/sub");
    fs::create_symlink(target, d + "/sub/link.txt");
    expect_refused([&] { snapshot_read(d); }, d + "/sub/link.txt", "file", "not a regular file");
}

TEST_CASE("config.json model_type of the wrong type is a clear error", "[hostile]") {
    scratch s;
    const std::string d = hf_with(s, "hf_type", [](json & c) { c["model_type"] = 5; });
    expect_refused([&] { llama_model_load(d); }, d + "/config.json", "model_type", "expected a string");
    expect_refused([&] { model_info_read(d); }, d + "/config.json", "model_type", "expected a string");
}

TEST_CASE("CLI: tokenize -t /dev/zero and a FIFO model exit 2 at once", "[hostile]") {
    const char * cli = std::getenv("ATTNLAB_CLI");
    if (!cli) {
        WARN("skipped: ATTNLAB_CLI not set");
        return;
    }
    if (!attnlab_test::need_asset(attnlab_test::default_model_path())) return;
    scratch s;
    const std::string fifo = s / "fifo.gguf";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    for (const std::string & args : {"tokenize -m " + attnlab_test::default_model_path() + " -t /dev/zero", "info " + fifo}) {
        const std::string cmd = "timeout 30 " + std::string(cli) + " " + args + " >/dev/null 2>&1";
        const int st = std::system(cmd.c_str());
        INFO(cmd);
        CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 2));
    }
}
