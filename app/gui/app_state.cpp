#include "app_state.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "base/sha256.h"
#include "data/capture.h"
#include "data/corpus.h"
#include "model/model_files.h"

namespace attnlab_gui {

namespace fs = std::filesystem;

model_facts model_facts_read(const std::string & path) {
    using namespace attnlab;
    model_facts f;
    f.path = path;
    switch (file_kind_detect(path)) {
        case file_kind::gguf: {
            gguf_file g = gguf_file::open(path);
            f.format = "GGUF v" + std::to_string(g.version());
            f.arch = g.get_str_or("general.architecture", "");
            f.name = g.get_str_or("general.name", "");
            const std::string & a = f.arch;
            f.heads = int(g.get_u64_or(a + ".attention.head_count", 0));
            f.embd = int(g.get_u64_or(a + ".embedding_length", 0));
            f.layers = int(g.get_u64_or(a + ".block_count", 0));
            f.kv_heads = int(g.get_u64_or(a + ".attention.head_count_kv", uint64_t(f.heads)));
            f.head_dim = int(g.get_u64_or(a + ".attention.key_length", f.heads > 0 ? uint64_t(f.embd / f.heads) : 0));
            f.ffn = int(g.get_u64_or(a + ".feed_forward_length", 0));
            f.context = int(g.get_u64_or(a + ".context_length", 0));
            f.rope_theta = g.get_f64_or(a + ".rope.freq_base", 0.0);
            f.file_bytes = int64_t(g.file_size());
            f.n_tensors = int64_t(g.tensors().size());
            for (const auto & t : g.tensors()) {
                const ggml_type_info * ti = ggml_type_info_get(uint32_t(t.type));
                std::string n = ti ? ti->name : "?";
                f.tensor_types[n]++;
                f.type_bytes[n] += int64_t(t.nbytes);
                f.params += t.n_elements();
            }
            break;
        }
        case file_kind::hf_checkpoint: {
            hf_checkpoint ck = hf_checkpoint::open(path);
            nlohmann::json cfg;
            try {
                cfg = nlohmann::json::parse(ck.config_json());
            } catch (const std::exception & e) {
                throw input_error(path + "/config.json", "json", e.what());
            }
            auto geti = [&](const char * k, int64_t def) -> int64_t {
                auto it = cfg.find(k);
                return it != cfg.end() && it->is_number_integer() ? it->get<int64_t>() : def;
            };
            f.format = "HF safetensors (" + std::to_string(ck.shard_paths().size()) + " shard(s))";
            f.arch = cfg.value("model_type", "");
            f.name = cfg.value("_name_or_path", "");
            f.heads = int(geti("num_attention_heads", 0));
            f.embd = int(geti("hidden_size", 0));
            f.layers = int(geti("num_hidden_layers", 0));
            f.kv_heads = int(geti("num_key_value_heads", f.heads));
            f.head_dim = int(geti("head_dim", f.heads > 0 ? f.embd / f.heads : 0));
            f.ffn = int(geti("intermediate_size", 0));
            f.context = int(geti("max_position_embeddings", 0));
            f.rope_theta = cfg.value("rope_theta", 10000.0);
            for (const auto & n : ck.tensor_names()) {
                const st_tensor * t = ck.find(n);
                f.tensor_types[st_dtype_name(t->dtype)]++;
                f.params += t->n_elements();
                f.n_tensors++;
            }
            for (const auto & s : ck.shard_paths()) f.file_bytes += int64_t(fs::file_size(s));
            break;
        }
        case file_kind::trace: {
            trace_info t = trace_read_info(path);
            f.format = "AttnLab trace (" + std::to_string(t.n_tokens()) + " tokens, " +
                       std::to_string(t.layers.size()) + " layers captured)";
            f.arch = t.arch;
            f.name = t.model_id;
            f.layers = t.n_layer;
            f.heads = t.n_head;
            f.kv_heads = t.n_head_kv;
            f.head_dim = t.head_dim;
            f.context = t.n_ctx_train;
            f.rope_theta = t.rope_theta;
            f.file_bytes = int64_t(fs::file_size(path));
            f.tensor_types[st_dtype_name(t.dtype)] = int64_t(t.layers.size()) * 3;
            f.n_tensors = int64_t(t.layers.size()) * 3;
            break;
        }
        default:
            throw input_error(path, "file", "not a GGUF file, a Hugging Face checkpoint directory or an AttnLab trace");
    }
    return f;
}

app_state::app_state() { load_recent(); }

static std::string recent_path() {
    const char * home = std::getenv("HOME");
    return std::string(home ? home : ".") + "/.config/attnlab/recent.txt";
}

void app_state::load_recent() {
    recent.clear();
    std::ifstream in(recent_path());
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && recent.size() < 12) recent.push_back(line);
    }
}

void app_state::save_recent() const {
    std::error_code ec;
    fs::create_directories(fs::path(recent_path()).parent_path(), ec);
    std::ofstream out(recent_path());
    for (const auto & r : recent) out << r << "\n";
}

void app_state::add_recent(const std::string & path) {
    recent.erase(std::remove(recent.begin(), recent.end(), path), recent.end());
    recent.insert(recent.begin(), path);
    if (recent.size() > 12) recent.resize(12);
    save_recent();
}

void app_state::open_path(const std::string & path) {
    using namespace attnlab;
    load_error.clear();
    model_facts f;
    try {
        f = model_facts_read(path);
    } catch (const std::exception & e) {
        load_error = e.what();
        return;
    }
    add_recent(path);
    tasks.cancel_group("capture");
    if (file_kind_detect(path) == file_kind::trace) {
        tasks.submit("load trace " + fs::path(path).filename().string(), "load", [this, path, f](job_progress & p) {
            p.report(0.1, "reading trace");
            auto c = std::make_shared<const qkv_capture>(trace_read(path));
            return apply_fn([this, c, path, f]() {
                source_path = path;
                facts = f;
                model.reset();
                tok.reset();
                cap = c;
                layer_index = 0;
                head = 0;
                bus.publish({event_kind::model_loaded});
                bus.publish({event_kind::capture_loaded});
            });
        });
        return;
    }
    tasks.submit("load model " + fs::path(path).filename().string(), "load", [this, path, f](job_progress & p) {
        auto m = std::make_shared<const llama_model>(llama_model_load(path, &p));
        p.report(1.0, "tokenizer");
        auto t = std::make_shared<const bpe_tokenizer>(tokenizer_load(path));
        tokenizer_check_model(*t, *m, path);
        return apply_fn([this, m, t, path, f]() {
            source_path = path;
            facts = f;
            model = m;
            tok = t;
            bus.publish({event_kind::model_loaded});
        });
    });
}

// The capture stays on the CPU even with a GPU: it needs every layer's Q, K
// and V on the host (qkv_capture), and the GPU forward pass (core/model/
// llama_gpu.h) returns only logits or per-token NLLs, with no attention hook.
// The app computes no perplexity; the GPU serves the Kernels view.
void app_state::start_capture() {
    using namespace attnlab;
    capture_error.clear();
    if (!model || !tok) {
        capture_error = "load a model first (a trace is already a capture)";
        return;
    }
    auto m = model;
    auto t = tok;
    std::string spec = text_spec, typed = typed_text, lspec = layers_spec;
    int c = ctx;
    tasks.submit("capture " + spec + " ctx " + std::to_string(c), "capture",
                 [this, m, t, spec, typed, lspec, c](job_progress & p) {
                     p.report(0.0, "loading text");
                     text_source src;
                     if (spec == "typed") {
                         src.spec = "typed text";
                         src.text = typed;
                         src.sha256 = sha256_hex(typed);
                     } else {
                         src = text_load(spec);
                     }
                     capture_options opt;
                     opt.ctx = c;
                     opt.progress = &p;
                     if (!lspec.empty()) opt.layers = parse_layer_list(lspec, m->cfg.n_layer, "layers");
                     auto t0 = std::chrono::steady_clock::now();
                     auto cp = std::make_shared<const qkv_capture>(capture_run(*m, *t, src, opt));
                     double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                     return apply_fn([this, cp, secs]() {
                         cap = cp;
                         capture_seconds = secs;
                         layer_index = std::min(layer_index, int(cp->layers.size()) - 1);
                         head = std::min(head, cp->info.n_head - 1);
                         bus.publish({event_kind::capture_loaded});
                     });
                 });
}

void app_state::cancel_capture() { tasks.cancel_group("capture"); }

void app_state::select_head(int li, int h) {
    if (!cap) return;
    li = std::max(0, std::min(li, int(cap->layers.size()) - 1));
    h = std::max(0, std::min(h, cap->info.n_head - 1));
    if (li == layer_index && h == head) return;
    layer_index = li;
    head = h;
    bus.publish({event_kind::head_selected, li, h});
}

void app_state::set_method(const std::string & spec) {
    if (spec == method_spec) return;
    method_spec = spec;
    bus.publish({event_kind::method_changed, 0, 0, spec});
}

std::string printable_piece(const std::string & s) {
    std::string o;
    for (unsigned char ch : s) {
        if (ch == '\n') o += "\\n";
        else if (ch == '\t') o += "\\t";
        else if (ch == '\r') o += "\\r";
        else if (ch < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", ch);
            o += b;
        } else o += char(ch);
    }
    return o;
}

std::string app_state::token_text(int t) const {
    if (!cap || t < 0 || t >= cap->info.n_tokens()) return "";
    if (t < int(cap->info.token_strings.size())) return printable_piece(cap->info.token_strings[t]);
    return std::to_string(cap->info.token_ids[t]);
}

} // namespace attnlab_gui
