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
    json j = {{"format", attnlab::file_kind_name(f.kind)}, {"name", f.name}, {"architecture", f.arch},
              {"layers", f.layers}, {"heads", f.heads}, {"kv_heads", f.kv_heads}, {"head_dim", f.head_dim},
              {"context", f.context}, {"rope_theta", f.rope_theta}, {"tensor_types", f.tensor_types}};
    if (f.kind == file_kind::trace) {
        j.update({{"producer", f.producer}, {"model_sha256", f.model_sha256}, {"text_sha256", f.text_sha256},
                  {"text", f.text_spec}, {"captured_layers", f.captured_layers}, {"tokens", f.n_tokens}});
        return j;
    }
    j.update({{"embedding", f.embedding}, {"ffn", f.ffn}, {"tensors", f.n_tensors}, {"parameters", f.parameters}});
    if (f.kind == file_kind::gguf) {
        j.update({{"gguf_version", f.gguf_version}, {"alignment", f.gguf_alignment}, {"file_bytes", f.file_bytes},
                  {"metadata_keys", f.metadata_keys}});
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
