// attnlab-cli info: what a GGUF file, HF checkpoint or trace holds.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "model/model_info.h"

namespace attnlab_cli {

using nlohmann::json;

namespace {

// The keys each format has always printed (a trace has no embedding, ffn or
// parameter count; only GGUF reports its file size).
json info_json(const attnlab::model_info & f) {
    using attnlab::file_kind;
    json j;
    j["format"] = attnlab::file_kind_name(f.kind);
    j["name"] = f.name;
    j["architecture"] = f.arch;
    j["layers"] = f.layers;
    j["heads"] = f.heads;
    j["kv_heads"] = f.kv_heads;
    j["head_dim"] = f.head_dim;
    j["context"] = f.context;
    j["rope_theta"] = f.rope_theta;
    j["tensor_types"] = f.tensor_types;
    if (f.kind == file_kind::trace) {
        j["producer"] = f.producer;
        j["model_sha256"] = f.model_sha256;
        j["text_sha256"] = f.text_sha256;
        j["text"] = f.text_spec;
        j["captured_layers"] = f.captured_layers;
        j["tokens"] = f.n_tokens;
        return j;
    }
    j["embedding"] = f.embedding;
    j["ffn"] = f.ffn;
    j["tensors"] = f.n_tensors;
    j["parameters"] = f.parameters;
    if (f.kind == file_kind::gguf) {
        j["gguf_version"] = f.gguf_version;
        j["alignment"] = f.gguf_alignment;
        j["file_bytes"] = f.file_bytes;
        j["metadata_keys"] = f.metadata_keys;
    } else {
        j["shards"] = f.shards;
    }
    return j;
}

struct info_args : common_opts {
    std::string file;
};

} // namespace

void add_cmd_info(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<info_args>();
    CLI::App * sub = app.add_subcommand("info", "Describe a GGUF file, a HF safetensors checkpoint or a trace");
    sub->add_option("file", a->file, "GGUF file, checkpoint directory or trace")->required();
    a->add_json(sub);
    command_add(cmds, sub, *a, [a]() {
        json j = info_json(attnlab::model_info_read(a->file));
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
    });
}

} // namespace attnlab_cli
