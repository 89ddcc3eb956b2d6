// FlexAttention-style export of selections (see export_flex.h).
#include "lab/export_flex.h"
#include "base/atomic_write.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "attention/block_sparse.h"
#include "base/error.h"
#include "io/safetensors.h"
#include "model/llama_gpu_api.h"
#include "data/capture.h"
#include "base/job.h"
#include "lab/sweep.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"
#include "methods/method.h"

namespace attnlab {

bool flex_block_full(const selection & s, int I, int J) {
    const int L = s.n_tokens, B = s.block;
    const int qs = I * B, qe = std::min(L, qs + B), ks = J * B, ke = std::min(L, ks + B);
    if (qs >= qe || ks >= ke) return false;
    // Causal pairs only: a key after the block's first query is masked for it.
    if (s.causal && ke - 1 > qs) return false;
    if (!s.token_level) return true;
    for (int i = qs; i < qe; ++i) {
        const int32_t * b = s.tok_cols.data() + s.tok_ptr[size_t(i)];
        const int32_t * e = s.tok_cols.data() + s.tok_ptr[size_t(i) + 1];
        const int32_t * lo = std::lower_bound(b, e, ks);
        const int32_t * hi = std::lower_bound(lo, e, ke);
        if (hi - lo != ke - ks) return false;
    }
    return true;
}

void flex_head_lists(const selection & s, int32_t * kv_num, int32_t * kv_idx, int32_t * full_num, int32_t * full_idx) {
    const int nb = s.n_blocks();
    for (int I = 0; I < nb; ++I) {
        int np = 0, nf = 0;
        int32_t * prow = kv_idx + size_t(I) * nb;
        int32_t * frow = full_idx + size_t(I) * nb;
        std::fill(prow, prow + nb, 0);
        std::fill(frow, frow + nb, 0);
        for (int32_t p = s.blk_ptr[size_t(I)]; p < s.blk_ptr[size_t(I) + 1]; ++p) {
            const int J = s.blk_cols[size_t(p)];
            if (flex_block_full(s, I, J)) frow[nf++] = J;
            else prow[np++] = J;
        }
        kv_num[I] = np;
        full_num[I] = nf;
    }
}

flex_block_lists flex_from_selections(const std::vector<int> & layers, const std::vector<std::vector<selection>> & sels) {
    flex_block_lists f;
    f.layers = layers;
    if (sels.empty() || sels[0].empty()) return f;
    const selection & s0 = sels[0][0];
    f.n_head = int(sels[0].size());
    f.n_tokens = s0.n_tokens;
    f.block = s0.block;
    f.nq = f.nk = s0.n_blocks();
    const size_t nl = sels.size(), nh = size_t(f.n_head), nq = size_t(f.nq), nk = size_t(f.nk);
    f.kv_num_blocks.assign(nl * nh * nq, 0);
    f.full_kv_num_blocks.assign(nl * nh * nq, 0);
    f.kv_indices.assign(nl * nh * nq * nk, 0);
    f.full_kv_indices.assign(nl * nh * nq * nk, 0);
    for (size_t l = 0; l < nl; ++l) {
        if (sels[l].size() != nh) throw std::invalid_argument("flex_from_selections: head count differs between layers");
        for (size_t h = 0; h < nh; ++h) {
            const selection & s = sels[l][h];
            if (s.n_tokens != f.n_tokens || s.block != f.block) {
                throw std::invalid_argument("flex_from_selections: every head needs one length and one block size");
            }
            const size_t o = (l * nh + h) * nq;
            flex_head_lists(s, &f.kv_num_blocks[o], &f.kv_indices[o * nk], &f.full_kv_num_blocks[o], &f.full_kv_indices[o * nk]);
        }
    }
    return f;
}

nlohmann::json flex_minference_json(const flex_block_lists & f, const std::vector<std::vector<selection>> & sels,
                                    const std::string & pattern, const nlohmann::json & meta) {
    nlohmann::json j = meta;
    j["format"] = "attnlab.minference_like.v1";
    j["columns"] = {"pattern", "kv_blocks_per_query_block", "keys_per_query_row", "block_density"};
    j["layer_index"] = f.layers;
    nlohmann::json layers = nlohmann::json::array();
    for (size_t l = 0; l < sels.size(); ++l) {
        nlohmann::json heads = nlohmann::json::object();
        for (size_t h = 0; h < sels[l].size(); ++h) {
            const selection & s = sels[l][h];
            const int nb = s.n_blocks();
            const double kvb = nb > 0 ? double(s.n_kept_blocks()) / nb : 0.0;
            const double keys = s.n_tokens > 0 ? double(selection_pairs(s)) / s.n_tokens : 0.0;
            heads[std::to_string(h)] = {pattern, kvb, keys, selection_block_density(s)};
        }
        layers.push_back(heads);
    }
    j["layers"] = layers;
    return j;
}

static std::string ref_path_of(const std::string & out) {
    const std::string ext = ".safetensors";
    if (out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0) {
        return out.substr(0, out.size() - ext.size()) + ".ref.safetensors";
    }
    return out + ".ref.safetensors";
}

flex_export_result flex_export(const qkv_capture & cap, const sparse_method & method, const std::string & out_path,
                               const flex_export_options & opt) {
    if (cap.layers.empty()) throw input_error(out_path, "layers", "the source has no captured layers");
    const trace_info & ti = cap.info;
    flex_export_result res;
    res.path = out_path;
    std::vector<std::vector<selection>> sels(cap.layers.size());
    std::vector<int> layers;
    double td = 0, bd = 0;
    int64_t kept = 0, full = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t li = 0; li < cap.layers.size(); ++li) {
        job_step(opt.progress, double(li) / cap.layers.size(), "layer " + std::to_string(cap.layers[li].layer));
        const attention_layer_io io = capture_layer_io(cap, li);
        layers.push_back(io.layer);
        sels[li].resize(size_t(io.n_head));
#pragma omp parallel for schedule(dynamic, 1)
        for (int h = 0; h < io.n_head; ++h) sels[li][size_t(h)] = method.select(head_inputs_of(io, h));
        for (const auto & s : sels[li]) {
            td += selection_token_density(s);
            bd += selection_block_density(s);
        }
    }
    res.select_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.lists = flex_from_selections(layers, sels);
    const flex_block_lists & f = res.lists;
    for (size_t i = 0; i < f.kv_num_blocks.size(); ++i) {
        kept += f.kv_num_blocks[i] + f.full_kv_num_blocks[i];
        full += f.full_kv_num_blocks[i];
    }
    const double n_heads_total = double(cap.layers.size()) * f.n_head;
    res.token_density = td / n_heads_total;
    res.block_density = bd / n_heads_total;
    res.full_block_share = kept > 0 ? double(full) / double(kept) : 0.0;

    nlohmann::json meta;
    meta["format"] = "attnlab.flex.v1";
    meta["block_size"] = f.block;
    meta["method"] = method.spec();
    meta["score"] = opt.score_spec;
    meta["model_id"] = ti.model_id;
    meta["model_sha256"] = ti.model_sha256;
    meta["text"] = ti.text_spec;
    meta["text_sha256"] = ti.text_sha256;
    meta["n_tokens"] = f.n_tokens;
    meta["n_head"] = f.n_head;
    meta["n_head_kv"] = ti.n_head_kv;
    meta["head_dim"] = ti.head_dim;
    meta["layers"] = layers;
    meta["causal"] = true;
    meta["scale"] = cap.layers.empty() ? 0.0 : double(capture_layer_io(cap, 0).scale);
    meta["kv_semantics"] = "kv_* = partial blocks (mask_mod applied), full_kv_* = fully kept blocks";

    const int64_t nl = int64_t(layers.size()), nh = f.n_head, nq = f.nq, nk = f.nk;
    std::vector<st_write_tensor> ts;
    const auto add = [&](const char * name, const std::vector<int32_t> & v, std::vector<int64_t> shape) {
        st_write_tensor t;
        t.name = name;
        t.dtype = st_dtype::I32;
        t.shape = std::move(shape);
        t.data = v.data();
        t.nbytes = v.size() * sizeof(int32_t);
        ts.push_back(t);
    };
    std::vector<int32_t> layer_ids(layers.begin(), layers.end());
    add("kv_num_blocks", f.kv_num_blocks, {nl, nh, nq});
    add("kv_indices", f.kv_indices, {nl, nh, nq, nk});
    add("full_kv_num_blocks", f.full_kv_num_blocks, {nl, nh, nq});
    add("full_kv_indices", f.full_kv_indices, {nl, nh, nq, nk});
    add("layers", layer_ids, {nl});
    safetensors_write(out_path, ts, {{"attnlab.flex", meta.dump()}});

    // Reference: one head's inputs, token mask and AttnLab's sparse output.
    size_t li = cap.layers.size() / 2;
    if (opt.check_layer >= 0) {
        auto it = std::find(layers.begin(), layers.end(), opt.check_layer);
        if (it == layers.end()) throw input_error(out_path, "check_layer", "layer " + std::to_string(opt.check_layer) + " was not captured");
        li = size_t(it - layers.begin());
    }
    attention_layer_io io = capture_layer_io(cap, li);
    if (opt.check_head < 0 || opt.check_head >= io.n_head) {
        throw input_error(out_path, "check_head", "head " + std::to_string(opt.check_head) + " is outside 0.." + std::to_string(io.n_head - 1));
    }
    const int L = io.n_tokens, d = io.head_dim, h = opt.check_head, g = io.kv_head_of(h);
    std::vector<float> out(size_t(L) * io.n_head * d, 0.0f);
    io.out = out.data();
    attention_block_sparse(io, sels[li].data(), score_create(opt.score_spec));
    std::vector<float> q(size_t(L) * d), k(size_t(L) * d), v(size_t(L) * d), o(size_t(L) * d);
    for (int t = 0; t < L; ++t) {
        std::memcpy(&q[size_t(t) * d], io.q + (size_t(t) * io.n_head + h) * d, sizeof(float) * d);
        std::memcpy(&k[size_t(t) * d], io.k + (size_t(t) * io.n_head_kv + g) * d, sizeof(float) * d);
        std::memcpy(&v[size_t(t) * d], io.v + (size_t(t) * io.n_head_kv + g) * d, sizeof(float) * d);
        std::memcpy(&o[size_t(t) * d], &out[(size_t(t) * io.n_head + h) * d], sizeof(float) * d);
    }
    std::vector<uint8_t> mask(size_t(L) * L, 0);
    std::vector<int32_t> keys;
    const selection & sh = sels[li][size_t(h)];
    for (int i = 0; i < L; ++i) {
        selection_row_keys(sh, i, keys);
        for (int32_t j : keys) mask[size_t(i) * L + size_t(j)] = 1;
    }
    std::vector<st_write_tensor> rt;
    const auto addf = [&](const char * name, const std::vector<float> & x) {
        st_write_tensor t;
        t.name = name;
        t.dtype = st_dtype::F32;
        t.shape = {L, d};
        t.data = x.data();
        t.nbytes = x.size() * sizeof(float);
        rt.push_back(t);
    };
    addf("q", q);
    addf("k", k);
    addf("v", v);
    addf("out", o);
    {
        st_write_tensor t;
        t.name = "token_mask";
        t.dtype = st_dtype::U8;
        t.shape = {L, L};
        t.data = mask.data();
        t.nbytes = mask.size();
        rt.push_back(t);
    }
    nlohmann::json rmeta = meta;
    rmeta["format"] = "attnlab.flex_ref.v1";
    rmeta["layer"] = layers[li];
    rmeta["layer_index"] = int(li);
    rmeta["head"] = h;
    rmeta["kv_head"] = g;
    rmeta["scale"] = double(io.scale);
    res.ref_path = ref_path_of(out_path);
    res.check_layer = layers[li];
    res.check_head = h;
    safetensors_write(res.ref_path, rt, {{"attnlab.flex_ref", rmeta.dump()}});

    if (!opt.minference_json.empty()) {
        nlohmann::json mj = flex_minference_json(f, sels, method.name(), meta);
        write_file_atomic(opt.minference_json, mj.dump(1) + "\n");
        res.minference_path = opt.minference_json;
    }
    job_step(opt.progress, 1.0, "done");
    return res;
}

qkv_capture capture_from_source(const std::string & source, const std::string & text_spec, int ctx,
                                const std::vector<int> & layers, bool allow_calibration, job_progress * progress,
                                const std::string & device) {
    if (device != "cpu" && device != "cuda") throw input_error("--device", "device", "cpu or cuda, not '" + device + "'");
    if (file_kind_detect(source) == file_kind::trace) {
        qkv_capture cap = trace_read(source, layers);
        const std::string & ts = cap.info.text_spec;
        const bool calib = ts.size() >= 6 && ts.compare(ts.size() - 6, 6, ":calib") == 0;
        if (calib && !allow_calibration) {
            throw input_error(source, "text_spec", "the trace was captured on calibration text (" + ts +
                                                       "); metrics read evaluation text only (capture kjv:eval)");
        }
        return cap;
    }
    text_source src = text_load(text_spec);
    if (!allow_calibration) sweep_require_evaluation(src, "per-head metrics");
    llama_model m = llama_model_load(source, progress);
    bpe_tokenizer tok = tokenizer_load(source);
    tokenizer_check_model(tok, m, source);
    capture_options co;
    co.ctx = ctx;
    co.layers = layers;
    co.progress = progress;
    std::unique_ptr<llama_gpu> gpu;
    if (device == "cuda") {
        gpu = llama_gpu::create(m);
        co.gpu = gpu.get();
    }
    return capture_run(m, tok, src, co);
}

} // namespace attnlab
