// attnlab-cli info: what a GGUF file, HF checkpoint or trace holds.
#include <iostream>
#include <map>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/trace.h"
#include "model/model_files.h"

namespace attnlab_cli {

using nlohmann::json;

namespace {

json info_gguf(const std::string & path) {
    using namespace attnlab;
    gguf_file f = gguf_file::open(path);
    std::string arch = f.get_str_or("general.architecture", "");
    json j;
    j["format"] = "gguf";
    j["gguf_version"] = f.version();
    j["alignment"] = f.alignment();
    j["file_bytes"] = f.file_size();
    j["name"] = f.get_str_or("general.name", "");
    j["architecture"] = arch;
    int64_t heads = int64_t(f.get_u64_or(arch + ".attention.head_count", 0));
    int64_t embd = int64_t(f.get_u64_or(arch + ".embedding_length", 0));
    j["layers"] = f.get_u64_or(arch + ".block_count", 0);
    j["heads"] = heads;
    j["kv_heads"] = f.get_u64_or(arch + ".attention.head_count_kv", uint64_t(heads));
    j["head_dim"] = f.get_u64_or(arch + ".attention.key_length", heads > 0 ? uint64_t(embd / heads) : 0);
    j["embedding"] = embd;
    j["ffn"] = f.get_u64_or(arch + ".feed_forward_length", 0);
    j["context"] = f.get_u64_or(arch + ".context_length", 0);
    j["rope_theta"] = f.get_f64_or(arch + ".rope.freq_base", 0.0);
    j["metadata_keys"] = f.metadata().size();
    j["tensors"] = f.tensors().size();
    std::map<std::string, int64_t> types;
    int64_t params = 0;
    for (const auto & t : f.tensors()) {
        const ggml_type_info * ti = ggml_type_info_get(uint32_t(t.type));
        types[ti ? ti->name : "?"]++;
        params += t.n_elements();
    }
    j["tensor_types"] = types;
    j["parameters"] = params;
    return j;
}

json info_hf(const std::string & path) {
    using namespace attnlab;
    hf_checkpoint ck = hf_checkpoint::open(path);
    json cfg;
    try {
        cfg = json::parse(ck.config_json());
    } catch (const std::exception & e) {
        throw input_error(path + "/config.json", "json", e.what());
    }
    auto geti = [&](const char * k, int64_t def) -> int64_t {
        auto it = cfg.find(k);
        return it != cfg.end() && it->is_number_integer() ? it->get<int64_t>() : def;
    };
    json j;
    j["format"] = "hf_checkpoint";
    j["architecture"] = cfg.value("model_type", "");
    j["name"] = cfg.value("_name_or_path", "");
    int64_t heads = geti("num_attention_heads", 0), embd = geti("hidden_size", 0);
    j["layers"] = geti("num_hidden_layers", 0);
    j["heads"] = heads;
    j["kv_heads"] = geti("num_key_value_heads", heads);
    j["head_dim"] = geti("head_dim", heads > 0 ? embd / heads : 0);
    j["embedding"] = embd;
    j["ffn"] = geti("intermediate_size", 0);
    j["context"] = geti("max_position_embeddings", 0);
    j["rope_theta"] = cfg.value("rope_theta", 10000.0);
    j["shards"] = ck.shard_paths().size();
    std::map<std::string, int64_t> types;
    int64_t params = 0;
    std::vector<std::string> names = ck.tensor_names();
    for (const auto & n : names) {
        const st_tensor * t = ck.find(n);
        types[st_dtype_name(t->dtype)]++;
        params += t->n_elements();
    }
    j["tensors"] = names.size();
    j["tensor_types"] = types;
    j["parameters"] = params;
    return j;
}

json info_trace(const std::string & path) {
    using namespace attnlab;
    trace_info t = trace_read_info(path);
    json j;
    j["format"] = "trace";
    j["producer"] = t.producer;
    j["name"] = t.model_id;
    j["model_sha256"] = t.model_sha256;
    j["text_sha256"] = t.text_sha256;
    j["text"] = t.text_spec;
    j["architecture"] = t.arch;
    j["layers"] = t.n_layer;
    j["captured_layers"] = t.layers;
    j["heads"] = t.n_head;
    j["kv_heads"] = t.n_head_kv;
    j["head_dim"] = t.head_dim;
    j["context"] = t.n_ctx_train;
    j["rope_theta"] = t.rope_theta;
    j["tokens"] = t.n_tokens();
    j["tensor_types"] = {{st_dtype_name(t.dtype), int64_t(t.layers.size()) * 3}};
    return j;
}

struct info_args {
    std::string file;
    bool json = false;
};

} // namespace

void add_cmd_info(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<info_args>();
    CLI::App * sub = app.add_subcommand("info", "Describe a GGUF file, a HF safetensors checkpoint or a trace");
    sub->add_option("file", a->file, "GGUF file, checkpoint directory or trace")->required();
    sub->add_flag("--json", a->json, "JSON output");
    command c;
    c.sub = sub;
    c.json = &a->json;
    c.run = [a]() {
        using namespace attnlab;
        json j;
        switch (file_kind_detect(a->file)) {
            case file_kind::gguf: j = info_gguf(a->file); break;
            case file_kind::hf_checkpoint: j = info_hf(a->file); break;
            case file_kind::trace: j = info_trace(a->file); break;
            default:
                throw input_error(a->file, "file", "not a GGUF file, a Hugging Face checkpoint directory or an AttnLab trace");
        }
        j["path"] = a->file;
        if (a->json) {
            print_json(j);
            return 0;
        }
        for (auto it = j.begin(); it != j.end(); ++it) {
            std::printf("%-16s %s\n", it.key().c_str(),
                        it->is_string() ? it->get<std::string>().c_str() : it->dump().c_str());
        }
        return 0;
    };
    cmds.push_back(c);
}

} // namespace attnlab_cli
