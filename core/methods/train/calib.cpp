// Calibration data for the trained methods: split checks, windows of
// calibration text, pooled blocks and the true block mass of a head.
#include "methods/train/calib.h"

#include <algorithm>
#include <cmath>


#include "base/error.h"
#include "data/capture.h"
#include "base/job.h"
#include "model/llama.h"
#include "methods/head_matrix.h"
#include "model/tokenizer.h"

namespace attnlab {

text_part text_spec_part(const std::string & spec) {
    // Same suffixes text_load accepts; a bare "kjv" is the whole text.
    const size_t colon = spec.rfind(':');
    if (colon == std::string::npos) return text_part::whole;
    const std::string p = spec.substr(colon + 1);
    if (p == "calib" || p == "calibration") return text_part::calibration;
    if (p == "eval" || p == "evaluation") return text_part::evaluation;
    return text_part::whole;
}

void require_calibration_capture(const qkv_capture & cap, const std::string & what) {
    text_source src;
    src.spec = cap.info.text_spec.empty() ? std::string("(capture without a text spec)") : cap.info.text_spec;
    src.part = text_spec_part(cap.info.text_spec);
    text_require_part(src, text_part::calibration, what);
}

const trace_info & check_calibration_set(const std::vector<const qkv_capture *> & caps, const std::string & what) {
    if (caps.empty() || !caps[0]) throw input_error(what, "calibration", "no calibration captures given");
    const trace_info & a = caps[0]->info;
    for (const qkv_capture * c : caps) {
        if (!c) throw input_error(what, "calibration", "null capture");
        require_calibration_capture(*c, what);
        const trace_info & b = c->info;
        const std::string src = b.text_spec;
        if (b.model_sha256 != a.model_sha256) throw input_error(src, "model_sha256", what + ": captures of different models");
        if (b.text_sha256 != a.text_sha256) throw input_error(src, "text_sha256", what + ": captures of different texts");
        if (b.n_head != a.n_head || b.n_head_kv != a.n_head_kv || b.head_dim != a.head_dim) {
            throw input_error(src, "heads", what + ": captures with different head layouts");
        }
        if (b.layers != a.layers) throw input_error(src, "layers", what + ": captures of different layers");
        if (b.n_tokens() < 2) throw input_error(src, "tokens", what + ": capture with fewer than 2 tokens");
    }
    return a;
}

std::vector<qkv_capture> calib_capture_windows(const llama_model & m, const bpe_tokenizer & tok, const text_source & text,
                                               int ctx, int n_windows, const std::vector<int> & layers,
                                               job_progress * progress, llama_gpu * gpu) {
    text_require_part(text, text_part::calibration, "calibration capture");
    if (n_windows < 1) throw input_error(text.spec, "windows", "need at least one window");
    job_step(progress, 0.0, "tokenizing calibration text");
    // Tokenise a generous prefix only (the whole Old Testament takes seconds);
    // fall back to all of it when the prefix is too short.
    const size_t want = (size_t) ctx * n_windows;
    std::vector<int32_t> ids;
    for (size_t bytes = want * 8 + 4096;; bytes *= 4) {
        const size_t n = std::min(bytes, text.text.size());
        ids = tok.encode(std::string_view(text.text).substr(0, n));
        if (ids.size() >= want + 1 || n == text.text.size()) break;
    }
    if (ids.size() < want) {
        throw input_error(text.spec, "text", std::to_string(n_windows) + " windows of " + std::to_string(ctx) +
                                                 " tokens need " + std::to_string(want) + " tokens, the text has " +
                                                 std::to_string(ids.size()));
    }
    std::vector<qkv_capture> out;
    for (int w = 0; w < n_windows; ++w) {
        std::vector<int32_t> win(ids.begin() + (int64_t) w * ctx, ids.begin() + (int64_t) (w + 1) * ctx);
        // Every window starts like a document does for the model.
        if (tok.add_bos()) {
            win.insert(win.begin(), tok.bos_id());
            win.pop_back();
        }
        capture_options o;
        o.ctx = ctx;
        o.layers = layers;
        o.gpu = gpu;
        out.push_back(capture_run_ids(m, win, o));
        out.back().info.text_spec = text.spec;
        out.back().info.text_sha256 = text.sha256;
        job_step(progress, double(w + 1) / n_windows, "calibration window " + std::to_string(w + 1));
    }
    return out;
}

capture_head capture_head_of(const qkv_capture & cap, size_t layer_index, int h) {
    const attention_layer_io io = capture_layer_io(cap, layer_index);
    capture_head c;
    c.in = head_inputs_of(io, h);
    c.v = io.v + (int64_t) io.kv_head_of(h) * io.head_dim;
    c.v_stride = (int64_t) io.n_head_kv * io.head_dim;
    return c;
}

std::vector<double> dense_softmax_rows(const head_inputs & in) {
    const int L = in.n_tokens;
    mat_d q, k;
    head_qk_double(in, q, k);
    std::vector<double> A((size_t) L * L, 0.0);
    Eigen::Map<mat_d> a(A.data(), L, L);
    a.noalias() = q * k.transpose();
    for (int i = 0; i < L; ++i) {
        const int n = in.causal ? i + 1 : L;
        double * r = &A[(size_t) i * L];
        double mx = -HUGE_VAL;
        for (int j = 0; j < n; ++j) mx = std::max(mx, r[j]);
        double sum = 0.0;
        for (int j = 0; j < n; ++j) sum += (r[j] = std::exp(r[j] - mx));
        for (int j = 0; j < n; ++j) r[j] /= sum;
        for (int j = n; j < L; ++j) r[j] = 0.0;
    }
    return A;
}

std::vector<double> block_mass_target(const head_inputs & in, int B) {
    const int L = in.n_tokens, nb = (L + B - 1) / B;
    const std::vector<double> A = dense_softmax_rows(in);
    std::vector<double> T((size_t) nb * nb, 0.0);
    for (int i = 0; i < L; ++i) {
        const int I = i / B;
        const int n = in.causal ? i + 1 : L;
        const double inv = 1.0 / (std::min(L, I * B + B) - I * B);
        for (int j = 0; j < n; ++j) T[(size_t) I * nb + j / B] += A[(size_t) i * L + j] * inv;
    }
    return T;
}

trained_provenance calib_provenance(const trace_info & info, const std::string & kind) {
    trained_provenance p;
    p.kind = kind;
    p.calib_text_spec = info.text_spec;
    p.calib_text_sha256 = info.text_sha256;
    p.model_sha256 = info.model_sha256;
    p.model_id = info.model_id;
    return p;
}

std::vector<int> calib_layers(const trace_info & info, const std::vector<int> & wanted, std::vector<size_t> & slots) {
    std::vector<int> layers = wanted.empty() ? info.layers : wanted;
    std::sort(layers.begin(), layers.end());
    layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    slots.clear();
    for (int l : layers) {
        auto it = std::find(info.layers.begin(), info.layers.end(), l);
        if (it == info.layers.end()) throw input_error(info.text_spec, "layers", "layer " + std::to_string(l) + " was not captured");
        slots.push_back((size_t) (it - info.layers.begin()));
    }
    return layers;
}

double calib_lr_scale(int t, int steps) {
    const double f = (double) t / steps;
    return f < 0.5 ? 1.0 : 0.1 + 0.9 * 0.5 * (1.0 + std::cos(3.141592653589793 * (f - 0.5) / 0.5));
}

double mix_normal(uint64_t seed, uint64_t layer, uint64_t head, uint64_t row, uint64_t t) {
    const double u1 = mix_uniform(mix_hash(seed, layer, head, row, 2 * t));
    const double u2 = mix_uniform(mix_hash(seed, layer, head, row, 2 * t + 1));
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

} // namespace attnlab
