#include "data/capture.h"
#include "model/llama_gpu_api.h"
#include "attention/attention.h"
#include "base/error.h"
#include "base/job.h"
#include "model/llama.h"
#include "model/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace attnlab {

attention_layer_io capture_layer_io(const qkv_capture & cap, size_t index) {
    const layer_qkv & l = cap.layers.at(index);
    attention_layer_io io;
    io.layer = l.layer;
    io.n_tokens = cap.info.n_tokens();
    io.n_head = cap.info.n_head;
    io.n_head_kv = cap.info.n_head_kv;
    io.head_dim = cap.info.head_dim;
    io.scale = 1.0f / std::sqrt(float(cap.info.head_dim));
    io.causal = true;
    io.q = l.q.data();
    io.k = l.k.data();
    io.v = l.v.data();
    return io;
}


namespace {

// Copies Q/K/V of the wanted layers out of the forward pass.
class capture_hook : public attention_hook {
public:
    capture_hook(qkv_capture & cap, const std::vector<int> & layers) : cap_(cap), layers_(layers) {}

    void on_qkv(const attention_layer_io & io) override {
        if (std::find(layers_.begin(), layers_.end(), io.layer) == layers_.end()) return;
        layer_qkv l;
        l.layer = io.layer;
        size_t nq = size_t(io.n_tokens) * io.n_head * io.head_dim;
        size_t nkv = size_t(io.n_tokens) * io.n_head_kv * io.head_dim;
        l.q.assign(io.q, io.q + nq);
        l.k.assign(io.k, io.k + nkv);
        l.v.assign(io.v, io.v + nkv);
        cap_.layers.push_back(std::move(l));
    }

private:
    qkv_capture & cap_;
    const std::vector<int> & layers_;
};

} // namespace

std::vector<int> parse_layer_list(const std::string & spec, int n_layer, const std::string & what) {
    std::vector<int> out;
    std::stringstream ss(spec);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        size_t dash = item.find('-');
        int lo = 0, hi = 0;
        try {
            size_t used = 0;
            if (dash == std::string::npos) {
                lo = hi = std::stoi(item, &used);
                if (used != item.size()) throw std::invalid_argument(item);
            } else {
                lo = std::stoi(item.substr(0, dash), &used);
                if (used != dash) throw std::invalid_argument(item);
                hi = std::stoi(item.substr(dash + 1), &used);
                if (used != item.size() - dash - 1) throw std::invalid_argument(item);
            }
        } catch (const std::exception &) {
            throw input_error(what, "layers", "cannot parse '" + item + "' (use e.g. 0,3,10-12)");
        }
        if (lo < 0 || hi >= n_layer || lo > hi) {
            throw input_error(what, "layers", "'" + item + "' is outside 0.." + std::to_string(n_layer - 1));
        }
        for (int l = lo; l <= hi; l++) out.push_back(l);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    if (out.empty()) throw input_error(what, "layers", "no layers selected");
    return out;
}

// Checks the options, runs the forward pass over ids and fills the header
// fields that come from the model.
static qkv_capture capture_ids(const llama_model & m, const std::vector<int32_t> & ids_in, const capture_options & opt) {
    const llama_config & c = m.cfg;
    llama_check_ctx(m, opt.ctx);
    std::vector<int> layers = opt.layers;
    if (layers.empty()) {
        for (int l = 0; l < c.n_layer; l++) layers.push_back(l);
    }
    for (int l : layers) {
        if (l < 0 || l >= c.n_layer) throw input_error(m.source_path, "layers", "layer " + std::to_string(l) + " does not exist");
    }
    // A trace replays attention as softmax(q k / sqrt(head_dim)) over the causal
    // past; a model whose own attention differs cannot be captured faithfully yet.
    if (c.sliding_window > 0 || c.attn_softcap > 0.0f || c.score_scale() != 1.0f / std::sqrt(float(c.head_dim)))
        throw input_error(m.source_path, "architecture",
                          c.arch + ": sliding-window, softcapped or rescaled attention is not recorded in traces yet");
    std::vector<int32_t> ids = ids_in;
    if (ids.size() < 2) throw input_error(m.source_path, "tokens", "fewer than 2 tokens to capture");
    if (int(ids.size()) > opt.ctx) ids.resize(size_t(opt.ctx));

    qkv_capture cap;
    trace_info & t = cap.info;
    t.producer = "attnlab-cli capture";
    t.model_id = m.model_id;
    t.model_sha256 = m.source_sha256;
    t.arch = c.arch;
    t.n_layer = c.n_layer;
    t.n_head = c.n_head;
    t.n_head_kv = c.n_head_kv;
    t.head_dim = c.head_dim;
    t.n_ctx_train = c.n_ctx_train;
    t.rope_theta = c.rope_theta;
    t.layers = layers;
    t.token_ids = ids;
    t.dtype = opt.dtype;

    capture_hook hook(cap, layers);
    if (opt.gpu) {
        t.producer = "attnlab-cli capture --device cuda (" + opt.gpu->device_name() + ")";
        job_step(opt.progress, 0.0, "forward pass on the GPU");
        opt.gpu->set_observer(&hook);
        try {
            opt.gpu->forward(ids, false);
        } catch (...) {
            opt.gpu->set_observer(nullptr);
            throw;
        }
        opt.gpu->set_observer(nullptr);
        if (opt.progress && opt.progress->cancelled()) throw job_cancelled();
    } else {
        forward_options fo;
        fo.hook = &hook;
        fo.progress = opt.progress;
        fo.all_logits = false;
        llama_forward(m, ids, fo);
    }
    job_step(opt.progress, 1.0, "captured");
    return cap;
}

qkv_capture capture_run_ids(const llama_model & m, const std::vector<int32_t> & ids, const capture_options & opt) {
    qkv_capture cap = capture_ids(m, ids, opt);
    for (int32_t id : cap.info.token_ids) cap.info.token_strings.push_back(std::to_string(id));
    return cap;
}

qkv_capture capture_run(const llama_model & m, const bpe_tokenizer & tok, const text_source & text,
                        const capture_options & opt) {
    job_step(opt.progress, 0.0, "tokenizing");
    std::vector<int32_t> ids = tok.encode(text.text);
    if (tok.add_bos()) ids.insert(ids.begin(), tok.bos_id());
    if (ids.size() < 2) throw input_error(text.path, "text", "fewer than 2 tokens");
    qkv_capture cap = capture_ids(m, ids, opt);
    cap.info.text_spec = text.spec;
    cap.info.text_sha256 = text.sha256;
    for (int32_t id : cap.info.token_ids) cap.info.token_strings.push_back(tok.token_piece(id));
    return cap;
}

} // namespace attnlab
