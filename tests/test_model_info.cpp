// model_info_read (the facts `attnlab-cli info` and the app show) against facts
// known independently of the reader: the fixture's config.json read here, and
// parameter counts worked out from the shapes by hand.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"
#include "model/model_info.h"
#include "test_util.h"

using namespace attnlab;

// Parameters of a Llama of these shapes: embedding (and an untied output),
// per layer q/k/v/o, gate/up/down and two norms, and the final norm.
static int64_t llama_parameters(int64_t vocab, int64_t embd, int64_t layers, int64_t heads, int64_t kv_heads,
                                int64_t head_dim, int64_t ffn, bool tied) {
    const int64_t attn = embd * heads * head_dim * 2 + embd * kv_heads * head_dim * 2;
    const int64_t mlp = 3 * embd * ffn;
    return vocab * embd * (tied ? 1 : 2) + layers * (attn + mlp + 2 * embd) + embd;
}

TEST_CASE("model_info_read: the tiny HF checkpoint as its config.json says", "[model]") {
    const std::string dir = attnlab_test::data_dir() + "/tiny_llama";
    nlohmann::json cfg = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
    const model_info f = model_info_read(dir);
    CHECK(f.kind == file_kind::hf_checkpoint);
    CHECK(f.arch == "llama");
    CHECK(f.layers == cfg["num_hidden_layers"].get<int64_t>());
    CHECK(f.heads == cfg["num_attention_heads"].get<int64_t>());
    CHECK(f.kv_heads == cfg["num_key_value_heads"].get<int64_t>());
    CHECK(f.head_dim == cfg["head_dim"].get<int64_t>());
    CHECK(f.embedding == cfg["hidden_size"].get<int64_t>());
    CHECK(f.ffn == cfg["intermediate_size"].get<int64_t>());
    CHECK(f.context == cfg["max_position_embeddings"].get<int64_t>());
    // transformers 5 keeps it in rope_parameters: what the loader uses.
    CHECK(f.rope_theta == cfg["rope_parameters"]["rope_theta"].get<double>());
    CHECK(f.shards == 1);
    CHECK(f.file_bytes == int64_t(std::filesystem::file_size(dir + "/model.safetensors")));
    // 2 layers x 4 heads of 16, 2 kv heads, 64 wide, ffn 128, vocab 300, untied.
    CHECK(f.parameters == llama_parameters(300, 64, 2, 4, 2, 16, 128, false));
    CHECK(f.parameters == 112448);
    CHECK(f.n_tensors == 2 + 1 + 2 * 9);
    CHECK(f.tensor_types.at("BF16") == f.n_tensors);
    CHECK(f.valid());
    CHECK(model_info_format_line(f) == "HF safetensors (1 shard(s))");
}

TEST_CASE("model_info_read: the tiny trace carries its model's shapes", "[model]") {
    const std::string path = attnlab_test::data_dir() + "/trace_tiny_llama.safetensors";
    const model_info f = model_info_read(path);
    CHECK(f.kind == file_kind::trace);
    // Exported from tests/data/tiny_llama (tools/export_trace.py), all layers.
    CHECK(f.layers == 2);
    CHECK(f.heads == 4);
    CHECK(f.kv_heads == 2);
    CHECK(f.head_dim == 16);
    CHECK(f.context == 256);
    CHECK(f.rope_theta == 5000.0);
    CHECK(f.captured_layers == std::vector<int>{0, 1});
    CHECK(f.n_tensors == 6);
    CHECK(f.file_bytes == int64_t(std::filesystem::file_size(path)));
    CHECK(f.producer == "tools/export_trace.py");
    CHECK(f.parameters == 0);
}

TEST_CASE("model_info_read: the default model (SmolLM2-135M)", "[model]") {
    const std::string path = attnlab_test::default_model_path();
    if (!attnlab_test::need_asset(path)) return;
    const model_info f = model_info_read(path);
    CHECK(f.kind == file_kind::gguf);
    CHECK(f.arch == "llama");
    CHECK(f.layers == 30);
    CHECK(f.heads == 9);
    CHECK(f.kv_heads == 3);
    CHECK(f.head_dim == 64);
    CHECK(f.embedding == 576);
    CHECK(f.ffn == 1536);
    CHECK(f.context == 8192);
    CHECK(f.rope_theta == 100000.0);
    CHECK(f.gguf_version == 3);
    CHECK(f.file_bytes == int64_t(std::filesystem::file_size(path)));
    // Tied embeddings: token embedding, output norm, 9 tensors a layer.
    CHECK(f.n_tensors == 2 + 30 * 9);
    CHECK(f.parameters == llama_parameters(49152, 576, 30, 9, 3, 64, 1536, true));
    int64_t counted = 0, bytes = 0;
    for (const auto & t : f.tensor_types) counted += t.second;
    for (const auto & t : f.type_bytes) bytes += t.second;
    CHECK(counted == f.n_tensors);
    CHECK(bytes > 0);
    CHECK(bytes < f.file_bytes);
    CHECK(model_info_format_line(f) == "GGUF v3");
}

TEST_CASE("model_info_read refuses what is not a model or a trace", "[model]") {
    const std::string path = attnlab_test::data_dir() + "/tokenizer_small.json";
    CHECK_THROWS_AS(model_info_read(path), input_error);
    CHECK_THROWS_AS(model_info_read(attnlab_test::data_dir() + "/no_such_file.gguf"), input_error);
}

// A missing file was reported as "not a GGUF file, ..." (issue 14): the
// error says what is wrong, for the app's Source view and the CLI alike.
TEST_CASE("a missing file is reported as missing, a wrong one as wrong", "[model]") {
    const std::string missing = attnlab_test::data_dir() + "/no_such_file.gguf";
    const input_error e = attnlab_test::expect_input_error([&] { model_info_read(missing); });
    CHECK(std::string(e.what()).find("no such file or directory") != std::string::npos);
    CHECK(std::string(e.what()).find("not a GGUF") == std::string::npos);
    CHECK(std::string(e.what()).find(missing) != std::string::npos);
    const input_error t = attnlab_test::expect_input_error([&] { tokenizer_load(missing); });
    CHECK(std::string(t.what()).find("no such file or directory") != std::string::npos);
    const input_error w = attnlab_test::expect_input_error(
        [&] { model_info_read(attnlab_test::data_dir() + "/tokenizer_small.json"); });
    CHECK(std::string(w.what()).find("not a GGUF file") != std::string::npos);
    const input_error d = attnlab_test::expect_input_error([&] { model_info_read(attnlab_test::data_dir()); });
    CHECK(std::string(d.what()).find("a directory without config.json") != std::string::npos);
}

TEST_CASE("model_info_read shows the RoPE base the loader runs with, one reading for both", "[model]") {
    // issue 15: info showed rope_theta 10000 where the loader used 5000 from
    // rope_parameters; both now read it through model/rope_theta.h.
    const std::string src = attnlab_test::data_dir() + "/tiny_llama";
    const std::string dir = "/tmp/attnlab_test_rope_theta_" + std::to_string(::getpid());
    const nlohmann::json base = nlohmann::json::parse(std::ifstream(src + "/config.json"));
    const auto with = [&](const nlohmann::json & cfg) {
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        std::filesystem::copy_file(src + "/model.safetensors", dir + "/model.safetensors");
        std::ofstream(dir + "/config.json") << cfg.dump();
    };
    std::vector<nlohmann::json> same;
    same.push_back(base);
    nlohmann::json both = base;   // a transformers 4 key beside a transformers 5 one
    both["rope_theta"] = 10000.0;
    both["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 5000.0}};
    both["rope_scaling"] = nullptr;
    same.push_back(both);
    nlohmann::json old = base;
    old.erase("rope_parameters");
    old["rope_theta"] = 20000.0;
    same.push_back(old);
    nlohmann::json none = old;
    none.erase("rope_theta");
    same.push_back(none);
    for (const auto & cfg : same) {
        INFO(cfg.dump());
        with(cfg);
        const double loaded = llama_model_load(dir).cfg.rope_theta;
        CHECK(model_info_read(dir).rope_theta == loaded);
    }
    CHECK(model_info_read(dir).rope_theta == 10000.0);
    // a value the loader refuses is refused by info too, not shown as 10000
    for (const char * key : {"rope_theta", "rope_parameters"}) {
        nlohmann::json bad = base;
        if (std::string(key) == "rope_theta") bad[key] = "5000";
        else bad[key] = {{"rope_type", "default"}, {"rope_theta", "5000"}};
        with(bad);
        CHECK_THROWS_AS(llama_model_load(dir), input_error);
        CHECK_THROWS_AS(model_info_read(dir), input_error);
    }
    std::filesystem::remove_all(dir);
}
