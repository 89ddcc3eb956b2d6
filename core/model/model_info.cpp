#include "model/model_info.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_read.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/trace.h"
#include "model/rope_theta.h"

namespace attnlab {

static void read_gguf(model_info & f) {
    gguf_file g = gguf_file::open(f.path);
    f.gguf_version = g.version();
    f.gguf_alignment = g.alignment();
    f.file_bytes = int64_t(g.file_size());
    f.name = g.get_str_or("general.name", "");
    f.arch = g.get_str_or("general.architecture", "");
    const std::string & a = f.arch;
    f.heads = int64_t(g.get_u64_or(a + ".attention.head_count", 0));
    f.embedding = int64_t(g.get_u64_or(a + ".embedding_length", 0));
    f.layers = int64_t(g.get_u64_or(a + ".block_count", 0));
    f.kv_heads = int64_t(g.get_u64_or(a + ".attention.head_count_kv", uint64_t(f.heads)));
    f.head_dim = int64_t(g.get_u64_or(a + ".attention.key_length", f.heads > 0 ? uint64_t(f.embedding / f.heads) : 0));
    f.ffn = int64_t(g.get_u64_or(a + ".feed_forward_length", 0));
    f.context = int64_t(g.get_u64_or(a + ".context_length", 0));
    f.rope_theta = rope_theta_gguf(g, a);   // what the loader uses
    f.metadata_keys = int64_t(g.metadata().size());
    f.n_tensors = int64_t(g.tensors().size());
    for (const auto & t : g.tensors()) {
        const ggml_type_info * ti = ggml_type_info_get(uint32_t(t.type));
        const std::string type = ti ? ti->name : "?";
        f.tensor_types[type]++;
        f.type_bytes[type] += int64_t(t.nbytes);
        f.parameters += t.n_elements();
    }
}

static void read_hf(model_info & f) {
    hf_checkpoint ck = hf_checkpoint::open(f.path);
    const std::string cfg_file = f.path + "/config.json";
    const nlohmann::json cfg = json_parse(cfg_file, "json", ck.config_json());
    if (!cfg.is_object()) throw input_error(cfg_file, "json", "not an object");
    for (const char * k : {"model_type", "_name_or_path"}) {
        auto it = cfg.find(k);
        if (it != cfg.end() && !it->is_string() && !it->is_null()) {
            throw input_error(cfg_file, k, std::string("expected a string, found ") + it->type_name());
        }
    }
    auto geti = [&](const char * k, int64_t def) -> int64_t {
        auto it = cfg.find(k);
        return it != cfg.end() && it->is_number_integer() ? it->get<int64_t>() : def;
    };
    auto gets = [&](const char * k) {
        auto it = cfg.find(k);
        return it != cfg.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    f.arch = gets("model_type");
    f.name = gets("_name_or_path");
    f.heads = geti("num_attention_heads", 0);
    f.embedding = geti("hidden_size", 0);
    f.layers = geti("num_hidden_layers", 0);
    f.kv_heads = geti("num_key_value_heads", f.heads);
    f.head_dim = geti("head_dim", f.heads > 0 ? f.embedding / f.heads : 0);
    f.ffn = geti("intermediate_size", 0);
    f.context = geti("max_position_embeddings", 0);
    f.rope_theta = rope_theta_hf(cfg, f.path + "/config.json");   // what the loader uses
    f.shards = int64_t(ck.shard_paths().size());
    for (const auto & s : ck.shard_paths()) f.file_bytes += int64_t(std::filesystem::file_size(s));
    for (const auto & n : ck.tensor_names()) {
        const st_tensor * t = ck.find(n);
        f.tensor_types[st_dtype_name(t->dtype)]++;
        f.parameters += t->n_elements();
        f.n_tensors++;
    }
}

static void read_trace(model_info & f) {
    trace_info t = trace_read_info(f.path);
    f.producer = t.producer;
    f.name = t.model_id;
    f.model_sha256 = t.model_sha256;
    f.text_spec = t.text_spec;
    f.text_sha256 = t.text_sha256;
    f.arch = t.arch;
    f.layers = t.n_layer;
    f.captured_layers = t.layers;
    f.heads = t.n_head;
    f.kv_heads = t.n_head_kv;
    f.head_dim = t.head_dim;
    f.context = t.n_ctx_train;
    f.rope_theta = t.rope_theta;
    f.n_tokens = t.n_tokens();
    f.file_bytes = int64_t(std::filesystem::file_size(f.path));
    // Q, K and V of every captured layer.
    f.n_tensors = int64_t(t.layers.size()) * 3;
    f.tensor_types[st_dtype_name(t.dtype)] = f.n_tensors;
}

model_info model_info_read(const std::string & path) {
    model_info f;
    f.path = path;
    f.kind = file_kind_detect(path);
    switch (f.kind) {
        case file_kind::gguf: read_gguf(f); break;
        case file_kind::hf_checkpoint: read_hf(f); break;
        case file_kind::trace: read_trace(f); break;
        default:
            file_kind_refuse(path, "a GGUF file, a Hugging Face checkpoint directory or an AttnLab trace");
    }
    return f;
}

std::string model_info_format_line(const model_info & f) {
    switch (f.kind) {
        case file_kind::gguf: return "GGUF v" + std::to_string(f.gguf_version);
        case file_kind::hf_checkpoint: return "HF safetensors (" + std::to_string(f.shards) + " shard(s))";
        case file_kind::trace:
            return "AttnLab trace (" + std::to_string(f.n_tokens) + " tokens, " + std::to_string(f.captured_layers.size()) +
                   " layers captured)";
        default: return file_kind_name(f.kind);
    }
}

} // namespace attnlab
