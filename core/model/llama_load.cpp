// Loading Llama-family weights from GGUF or a Hugging Face checkpoint,
// dequantised to float32 in PyTorch layout ([out_features, in_features]) with
// Q/K rows in Hugging Face (rotate-half) order.
#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/checked.h"
#include "base/error.h"
#include "base/json_read.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/rope_theta.h"
#include "base/sha256.h"
#include "base/job.h"

namespace attnlab {

namespace {

std::string shape_str(const std::vector<int64_t> & s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

// llama.cpp's converter reorders the rows of q_proj/k_proj inside each head
// so ggml's interleaved RoPE (pairs 2i, 2i+1) matches HF's rotate-half RoPE
// (pairs i, i+hd/2): GGUF row 2*i + j holds HF row j*hd/2 + i. Undo it.
void unpermute_qk_rows(matrix_rm & w, int n_heads, int head_dim) {
    const int half = head_dim / 2;
    matrix_rm src = w;
    for (int h = 0; h < n_heads; ++h) {
        const int base = h * head_dim;
        for (int i = 0; i < half; ++i)
            for (int j = 0; j < 2; ++j) w.row(base + j * half + i) = src.row(base + 2 * i + j);
    }
}

// Config sanity shared by both sources; `file` and the field names are what
// the user sees.
void check_config(const llama_config & c, const std::string & file, const char * f_layer, const char * f_embd,
                  const char * f_head, const char * f_head_kv, const char * f_ff, const char * f_vocab,
                  const char * f_head_dim) {
    auto pos = [&](int v, const char * field) {
        if (v <= 0 || v > (1 << 24)) throw input_error(file, field, "must be a positive integer, got " + std::to_string(v));
    };
    pos(c.n_layer, f_layer);
    pos(c.n_embd, f_embd);
    pos(c.n_head, f_head);
    pos(c.n_head_kv, f_head_kv);
    pos(c.n_ff, f_ff);
    pos(c.n_vocab, f_vocab);
    pos(c.head_dim, f_head_dim);
    if (c.n_head % c.n_head_kv != 0)
        throw input_error(file, f_head_kv, "query heads (" + std::to_string(c.n_head) +
                                               ") must be a multiple of key/value heads (" + std::to_string(c.n_head_kv) + ")");
    if (c.head_dim % 2 != 0) throw input_error(file, f_head_dim, "head dimension must be even for RoPE");
    if (!(c.rms_eps > 0.0f) || !std::isfinite(c.rms_eps)) throw input_error(file, "rms_eps", "must be positive");
    if (!(c.rope_theta > 1.0f) || !std::isfinite(c.rope_theta)) throw input_error(file, "rope_theta", "must be > 1");
}

// Shapes that are products of header values, checked (65536 heads x 65536
// head dim wrapped a signed int before), and the resource budget: the weights
// of n_layer layers must fit in the bytes the file holds, at min_bits per
// weight at the least (no GGUF type stores fewer than 1.5 bits, safetensors
// at least 8), before any layer is allocated. `weight_bytes` is the file's
// tensor data.
struct model_dims {
    int q_dim = 0, kv_dim = 0;
};
model_dims check_budget(const llama_config & c, const std::string & file, const char * f_layer, const char * f_head,
                        const char * f_head_kv, uint64_t weight_bytes, int64_t min_bits) {
    model_dims d;
    d.q_dim = checked_mul_int(c.n_head, c.head_dim, file, f_head);
    d.kv_dim = checked_mul_int(c.n_head_kv, c.head_dim, file, f_head_kv);
    // per layer: two norms, q and o (q_dim x n_embd), k and v (kv_dim x n_embd), three FFN matrices
    const int64_t e = c.n_embd;
    int64_t per_layer = checked_mul<int64_t>(e, 2 * (int64_t)d.q_dim + 2 * (int64_t)d.kv_dim, file, f_layer);
    per_layer = checked_add<int64_t>(per_layer, checked_mul<int64_t>(3 * e, c.n_ff, file, f_layer), file, f_layer);
    per_layer = checked_add<int64_t>(per_layer, 2 * e, file, f_layer);
    const int64_t weights = checked_mul<int64_t>(per_layer, c.n_layer, file, f_layer);
    const int64_t min_bytes = checked_mul<int64_t>(weights / 8, min_bits, file, f_layer);
    if ((uint64_t)min_bytes > weight_bytes) {
        throw input_error(file, f_layer, std::to_string(c.n_layer) + " layers of " + std::to_string(per_layer) +
                                             " weights need at least " + std::to_string(min_bytes) + " bytes, the file holds " +
                                             std::to_string(weight_bytes));
    }
    return d;
}

// ---------------------------------------------------------------- GGUF

struct gguf_loader {
    const gguf_file & f;
    const std::string & path;

    int get_int(const std::string & key) const {
        if (!f.find(key)) throw input_error(path, key, "missing");
        const uint64_t v = f.get_u64(key);
        if (v > (1u << 30)) throw input_error(path, key, "value out of range: " + std::to_string(v));
        return (int) v;
    }
    int get_int_or(const std::string & key, int def) const { return f.find(key) ? get_int(key) : def; }

    const gguf_tensor & need(const std::string & name) const {
        const gguf_tensor * t = f.find_tensor(name);
        if (!t) throw input_error(path, name, "missing tensor");
        return *t;
    }

    // A linear weight, GGUF ne = [in, out], i.e. row-major [out, in].
    matrix_rm matrix(const std::string & name, int rows, int cols) const {
        const gguf_tensor & t = need(name);
        const std::vector<int64_t> want = {cols, rows};
        if (t.ne != want) throw input_error(path, name, "shape (ggml ne) " + shape_str(t.ne) + ", expected " + shape_str(want));
        std::vector<float> data = f.tensor_to_f32(t);
        matrix_rm m(rows, cols);
        std::memcpy(m.data(), data.data(), sizeof(float) * (size_t) rows * cols);
        return m;
    }

    Eigen::VectorXf vector(const std::string & name, int n) const {
        const gguf_tensor & t = need(name);
        if (t.ne != std::vector<int64_t>{n}) throw input_error(path, name, "shape (ggml ne) " + shape_str(t.ne) + ", expected [" + std::to_string(n) + "]");
        std::vector<float> data = f.tensor_to_f32(t);
        return Eigen::Map<const Eigen::VectorXf>(data.data(), n);
    }
};

llama_model load_gguf(const std::string & path, job_progress * progress) {
    gguf_file f = gguf_file::open(path);
    gguf_loader ld{f, path};

    llama_model m;
    llama_config & c = m.cfg;
    if (!f.find("general.architecture")) throw input_error(path, "general.architecture", "missing");
    c.arch = f.get_str("general.architecture");
    if (c.arch != "llama")
        throw input_error(path, "general.architecture", "unsupported architecture '" + c.arch + "' (only llama)");

    c.n_layer = ld.get_int("llama.block_count");
    c.n_embd = ld.get_int("llama.embedding_length");
    c.n_head = ld.get_int("llama.attention.head_count");
    c.n_head_kv = ld.get_int_or("llama.attention.head_count_kv", c.n_head);
    c.n_ff = ld.get_int("llama.feed_forward_length");
    c.n_ctx_train = ld.get_int_or("llama.context_length", 0);
    c.head_dim = ld.get_int_or("llama.attention.key_length", c.n_head > 0 ? c.n_embd / c.n_head : 0);
    c.rope_theta = (float) rope_theta_gguf(f, c.arch);   // one reading, shared with model_info
    c.rms_eps = (float) f.get_f64_or("llama.attention.layer_norm_rms_epsilon", 1e-5);

    const gguf_tensor * embd = f.find_tensor("token_embd.weight");
    if (!embd) throw input_error(path, "token_embd.weight", "missing tensor");
    c.n_vocab = f.find("llama.vocab_size") ? ld.get_int("llama.vocab_size")
                                           : (embd->ne.size() == 2 ? (int) embd->ne[1] : 0);

    if (c.n_head > 0 && c.n_embd % c.n_head != 0 && !f.find("llama.attention.key_length"))
        throw input_error(path, "llama.attention.head_count", "does not divide llama.embedding_length");
    check_config(c, path, "llama.block_count", "llama.embedding_length", "llama.attention.head_count",
                 "llama.attention.head_count_kv", "llama.feed_forward_length", "llama.vocab_size",
                 "llama.attention.key_length");
    if (ld.get_int_or("llama.attention.value_length", c.head_dim) != c.head_dim)
        throw input_error(path, "llama.attention.value_length", "differs from key_length (unsupported)");
    if (ld.get_int_or("llama.rope.dimension_count", c.head_dim) != c.head_dim)
        throw input_error(path, "llama.rope.dimension_count", "partial rotary embeddings are not supported");
    const std::string scaling = f.get_str_or("llama.rope.scaling.type", "none");
    if (scaling != "none")
        throw input_error(path, "llama.rope.scaling.type", "RoPE scaling '" + scaling + "' is not supported");
    if (f.find_tensor("rope_freqs.weight"))
        throw input_error(path, "rope_freqs.weight", "RoPE frequency factors (Llama 3.1 scaling) are not supported");

    const int hd = c.head_dim;
    const model_dims dims = check_budget(c, path, "llama.block_count", "llama.attention.head_count",
                                         "llama.attention.head_count_kv", f.file_size(), 1);
    const int q_dim = dims.q_dim, kv_dim = dims.kv_dim;
    m.tok_embd = ld.matrix("token_embd.weight", c.n_vocab, c.n_embd);
    m.output_norm = ld.vector("output_norm.weight", c.n_embd);
    c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
    if (!c.tied_embeddings) m.output = ld.matrix("output.weight", c.n_vocab, c.n_embd);

    m.layers.resize(c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) {
        job_step(progress, (double) il / c.n_layer, "loading layer " + std::to_string(il));
        const std::string p = "blk." + std::to_string(il) + ".";
        llama_layer & L = m.layers[il];
        L.attn_norm = ld.vector(p + "attn_norm.weight", c.n_embd);
        L.wq = ld.matrix(p + "attn_q.weight", q_dim, c.n_embd);
        L.wk = ld.matrix(p + "attn_k.weight", kv_dim, c.n_embd);
        L.wv = ld.matrix(p + "attn_v.weight", kv_dim, c.n_embd);
        L.wo = ld.matrix(p + "attn_output.weight", c.n_embd, q_dim);
        L.ffn_norm = ld.vector(p + "ffn_norm.weight", c.n_embd);
        L.w_gate = ld.matrix(p + "ffn_gate.weight", c.n_ff, c.n_embd);
        L.w_up = ld.matrix(p + "ffn_up.weight", c.n_ff, c.n_embd);
        L.w_down = ld.matrix(p + "ffn_down.weight", c.n_embd, c.n_ff);
        unpermute_qk_rows(L.wq, c.n_head, hd);
        unpermute_qk_rows(L.wk, c.n_head_kv, hd);
    }

    m.source_path = path;
    m.source_sha256 = sha256_file(path);
    m.model_id = f.get_str_or("general.name", "");
    return m;
}

// ---------------------------------------------------------------- Hugging Face

using json = nlohmann::json;

struct hf_loader {
    const hf_checkpoint & ck;
    std::string file;       // the directory, for tensor errors
    std::string cfg_file;   // config.json, for config errors
    const json & cfg;

    const json * find(const char * key) const {
        auto it = cfg.find(key);
        return (it == cfg.end() || it->is_null()) ? nullptr : &*it;
    }
    int get_int(const char * key) const {
        const json * v = find(key);
        if (!v) throw input_error(cfg_file, key, "missing");
        if (!v->is_number_integer()) throw input_error(cfg_file, key, "not an integer");
        const int64_t x = v->get<int64_t>();
        if (x < 0 || x > (1 << 30)) throw input_error(cfg_file, key, "value out of range");
        return (int) x;
    }
    int get_int_or(const char * key, int def) const { return find(key) ? get_int(key) : def; }
    double get_num_or(const json & obj, const char * key, double def) const {
        auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) return def;
        if (!it->is_number()) throw input_error(cfg_file, key, "not a number");
        return it->get<double>();
    }
    bool get_bool_or(const char * key, bool def) const {
        const json * v = find(key);
        if (!v) return def;
        if (!v->is_boolean()) throw input_error(cfg_file, key, "not a boolean");
        return v->get<bool>();
    }

    const st_tensor & need(const std::string & name) const {
        const st_tensor * t = ck.find(name);
        if (!t) throw input_error(file, name, "missing tensor");
        return *t;
    }
    matrix_rm matrix(const std::string & name, int rows, int cols) const {
        const st_tensor & t = need(name);
        const std::vector<int64_t> want = {rows, cols};
        if (t.shape != want) throw input_error(file, name, "shape " + shape_str(t.shape) + ", expected " + shape_str(want));
        std::vector<float> data = ck.to_f32(t);
        matrix_rm m(rows, cols);
        std::memcpy(m.data(), data.data(), sizeof(float) * (size_t) rows * cols);
        return m;
    }
    Eigen::VectorXf vector(const std::string & name, int n) const {
        const st_tensor & t = need(name);
        if (t.shape != std::vector<int64_t>{n}) throw input_error(file, name, "shape " + shape_str(t.shape) + ", expected [" + std::to_string(n) + "]");
        std::vector<float> data = ck.to_f32(t);
        return Eigen::Map<const Eigen::VectorXf>(data.data(), n);
    }
};

// sha256 over config.json followed by every shard the checkpoint uses, in
// sorted file-name order (tools/export_trace.py computes the same digest).
std::string hf_sha256(const hf_checkpoint & ck) {
    sha256 h;
    h.update(ck.config_json().data(), ck.config_json().size());
    std::vector<char> buf(1 << 20);
    std::vector<std::string> shards = ck.shard_paths();
    std::sort(shards.begin(), shards.end());
    for (const std::string & p : shards) {
        std::ifstream in(p, std::ios::binary);
        if (!in) throw input_error(p, "file", "cannot open");
        while (in) {
            in.read(buf.data(), (std::streamsize) buf.size());
            if (in.gcount() > 0) h.update(buf.data(), (size_t) in.gcount());
        }
    }
    return h.hex_digest();
}

llama_model load_hf(const std::string & dir, job_progress * progress) {
    hf_checkpoint ck = hf_checkpoint::open(dir);
    const std::string cfg_file = dir + "/config.json";
    const json cfg = json_parse(cfg_file, "json", ck.config_json());
    if (!cfg.is_object()) throw input_error(cfg_file, "json", "not an object");
    hf_loader ld{ck, dir, cfg_file, cfg};

    llama_model m;
    llama_config & c = m.cfg;
    const json * mt = ld.find("model_type");
    if (!mt) throw input_error(cfg_file, "model_type", "missing");
    if (!mt->is_string()) throw input_error(cfg_file, "model_type", std::string("expected a string, found ") + mt->type_name());
    c.arch = mt->get<std::string>();
    // Mistral is Llama without biases; without a sliding window it is the same net.
    const bool ok_arch = c.arch == "llama" || (c.arch == "mistral" && !ld.find("sliding_window"));
    if (!ok_arch)
        throw input_error(cfg_file, "model_type", "unsupported model type '" + c.arch + "' (llama, or mistral without sliding_window)");
    if (const json * act = ld.find("hidden_act"))
        if (!act->is_string() || act->get<std::string>() != "silu")
            throw input_error(cfg_file, "hidden_act", "only silu is supported");
    if (ld.get_bool_or("attention_bias", false)) throw input_error(cfg_file, "attention_bias", "biases are not supported");
    if (ld.get_bool_or("mlp_bias", false)) throw input_error(cfg_file, "mlp_bias", "biases are not supported");

    c.n_layer = ld.get_int("num_hidden_layers");
    c.n_embd = ld.get_int("hidden_size");
    c.n_head = ld.get_int("num_attention_heads");
    c.n_head_kv = ld.get_int_or("num_key_value_heads", c.n_head);
    c.n_ff = ld.get_int("intermediate_size");
    c.n_vocab = ld.get_int("vocab_size");
    c.n_ctx_train = ld.get_int_or("max_position_embeddings", 0);
    if (c.n_head > 0 && !ld.find("head_dim") && c.n_embd % c.n_head != 0)
        throw input_error(cfg_file, "num_attention_heads", "does not divide hidden_size");
    c.head_dim = ld.get_int_or("head_dim", c.n_head > 0 ? c.n_embd / c.n_head : 0);
    c.rms_eps = (float) ld.get_num_or(cfg, "rms_norm_eps", 1e-6);
    c.tied_embeddings = ld.get_bool_or("tie_word_embeddings", false);

    // RoPE: transformers < 5 writes rope_theta and rope_scaling at the top
    // level; transformers 5 writes rope_parameters {rope_theta, rope_type}.
    const double theta = rope_theta_hf(cfg, cfg_file);   // one reading, shared with model_info
    for (const char * key : {"rope_parameters", "rope_scaling"}) {
        const json * rp = ld.find(key);
        if (!rp) continue;
        std::string type = "default";
        for (const char * tk : {"rope_type", "type"}) {
            auto it = rp->find(tk);
            if (it != rp->end() && it->is_string()) type = it->get<std::string>();
        }
        if (type != "default")
            throw input_error(cfg_file, key, "RoPE type '" + type + "' is not supported (only default)");
    }
    c.rope_theta = (float) theta;
    check_config(c, cfg_file, "num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
                 "intermediate_size", "vocab_size", "head_dim");

    uint64_t weight_bytes = 0;
    for (const std::string & n : ck.tensor_names()) weight_bytes += ck.find(n)->nbytes;
    const model_dims dims = check_budget(c, cfg_file, "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                                         weight_bytes, 8);
    const int q_dim = dims.q_dim, kv_dim = dims.kv_dim;
    m.tok_embd = ld.matrix("model.embed_tokens.weight", c.n_vocab, c.n_embd);
    m.output_norm = ld.vector("model.norm.weight", c.n_embd);
    if (!c.tied_embeddings) m.output = ld.matrix("lm_head.weight", c.n_vocab, c.n_embd);

    m.layers.resize(c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) {
        job_step(progress, (double) il / c.n_layer, "loading layer " + std::to_string(il));
        const std::string p = "model.layers." + std::to_string(il) + ".";
        llama_layer & L = m.layers[il];
        L.attn_norm = ld.vector(p + "input_layernorm.weight", c.n_embd);
        L.wq = ld.matrix(p + "self_attn.q_proj.weight", q_dim, c.n_embd);
        L.wk = ld.matrix(p + "self_attn.k_proj.weight", kv_dim, c.n_embd);
        L.wv = ld.matrix(p + "self_attn.v_proj.weight", kv_dim, c.n_embd);
        L.wo = ld.matrix(p + "self_attn.o_proj.weight", c.n_embd, q_dim);
        L.ffn_norm = ld.vector(p + "post_attention_layernorm.weight", c.n_embd);
        L.w_gate = ld.matrix(p + "mlp.gate_proj.weight", c.n_ff, c.n_embd);
        L.w_up = ld.matrix(p + "mlp.up_proj.weight", c.n_ff, c.n_embd);
        L.w_down = ld.matrix(p + "mlp.down_proj.weight", c.n_embd, c.n_ff);
    }

    m.source_path = dir;
    m.source_sha256 = hf_sha256(ck);
    if (const json * n = ld.find("_name_or_path"); n && n->is_string()) m.model_id = n->get<std::string>();
    return m;
}

} // namespace

llama_model llama_model_load(const std::string & path, job_progress * progress) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) throw input_error(path, "path", "no such file or directory");
    llama_model m;
    if (S_ISDIR(st.st_mode)) {
        m = load_hf(path, progress);
    } else if (gguf_is_gguf(path)) {
        m = load_gguf(path, progress);
    } else {
        throw input_error(path, "format", "neither a GGUF file nor a Hugging Face checkpoint directory");
    }
    job_step(progress, 1.0, "model loaded");
    return m;
}

void llama_check_ctx(const llama_model & m, int ctx, int min_ctx, const std::string & file) {
    if (ctx < min_ctx || ctx > m.cfg.n_ctx_train) {
        throw input_error(file.empty() ? m.source_path : file, "ctx",
                          std::to_string(ctx) + " is outside " + std::to_string(min_ctx) + ".." +
                              std::to_string(m.cfg.n_ctx_train) + " (the model's context)");
    }
}

} // namespace attnlab
