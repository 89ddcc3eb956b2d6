#include "app_state.h"

#include <cstdio>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/atomic_write.h"
#include "base/error.h"
#include "base/sha256.h"
#include "data/capture.h"
#include "data/corpus.h"
#include "metrics/head_map.h"
#include "model/llama_gpu_api.h"
#include "model/model_files.h"

namespace attnlab_gui {

namespace fs = std::filesystem;

app_state::app_state() { load_recent(); }

// A GPU copy of the capture's Q and K when a GPU backend is present (worker
// thread). Upload failures fail the task: the app never quietly drops to the CPU.
static std::shared_ptr<const attnlab::gpu_capture> keep_on_gpu(std::shared_ptr<const attnlab::qkv_capture> c,
                                                               attnlab::job_progress & p) {
    attnlab::gpu_attention_backend * b = attnlab::gpu_backend_get();
    if (!b) return nullptr;
    p.report(1.0, "keeping Q/K on the GPU");
    return attnlab::gpu_capture_upload(*b, std::move(c));
}

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
    std::string text;
    for (const auto & r : recent) text += r + "\n";
    try {
        attnlab::dir_create_all(fs::path(recent_path()).parent_path().string(), "recent");
        attnlab::write_file_atomic(recent_path(), text);
    } catch (const std::exception & e) {
        std::fprintf(stderr, "attnlab: recent list not saved: %s\n", e.what());   // the app goes on without it
    }
}

void app_state::add_recent(const std::string & path) {
    recent.erase(std::remove(recent.begin(), recent.end(), path), recent.end());
    recent.insert(recent.begin(), path);
    if (recent.size() > 12) recent.resize(12);
    save_recent();
}

void app_state::open_path(std::string path) {
    using namespace attnlab;
    load_error.clear();
    model_info f;
    try {
        f = model_info_read(path);
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
            auto gc = keep_on_gpu(c, p);
            return apply_fn([this, c, gc, path, f]() {
                source_path = path;
                source_sha256.clear();
                facts = f;
                model.reset();
                tok.reset();
                cap = c;
                gpu_cap = gc;
                capture_device = "trace file";
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
        p.report(1.0, "sha256");
        std::string sha = fs::is_regular_file(path) ? sha256_file(path) : std::string();
        return apply_fn([this, m, t, path, f, sha]() {
            source_path = path;
            source_sha256 = sha;
            facts = f;
            model = m;
            tok = t;
            bus.publish({event_kind::model_loaded});
        });
    });
}

// With a GPU (llama_gpu::available() and a registered backend) the forward
// pass runs there (capture_options::gpu: the same post-RoPE Q/K/V as
// `attnlab-cli capture --device cuda`), and the Q/K stay on the GPU for the
// maps; without one, everything runs on the CPU as before.
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
                     std::unique_ptr<llama_gpu> g;
                     std::string dev = "CPU";
                     if (gpu_backend_get() && llama_gpu::available()) {
                         p.report(0.0, "weights to the GPU");
                         g = llama_gpu::create(*m);
                         opt.gpu = g.get();
                         dev = "GPU " + gpu_backend_get()->device_name();
                     }
                     auto cp = std::make_shared<const qkv_capture>(capture_run(*m, *t, src, opt));
                     g.reset();   // the weights' GPU memory, before the capture's
                     auto gc = keep_on_gpu(cp, p);
                     double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                     return apply_fn([this, cp, gc, secs, dev]() {
                         cap = cp;
                         gpu_cap = gc;
                         capture_device = dev;
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
