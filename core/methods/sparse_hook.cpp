// sparse_attention_hook: patches a method into every layer of the forward
// pass (selection per head from the layer's Q/K, then the block-sparse kernel).
#include <chrono>

#include "attention/block_sparse.h"
#include "methods/method.h"

namespace attnlab {

sparse_attention_hook::sparse_attention_hook(std::shared_ptr<const sparse_method> method, score_fn score)
    : method_(std::move(method)), score_(score) {}

void sparse_attention_hook::set_layer_method(int layer, std::shared_ptr<const sparse_method> method) {
    per_layer_[layer] = std::move(method);
}

void sparse_method::attend(const attention_layer_io & io, const selection * sels, const score_fn & score) const {
    attention_block_sparse(io, sels, score);
}

bool sparse_attention_hook::attend(const attention_layer_io & io) {
    auto it = per_layer_.find(io.layer);
    const sparse_method * m = it != per_layer_.end() ? it->second.get() : method_.get();
    if (!m || io.n_tokens <= 0) return false;

    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    std::vector<selection> sels(io.n_head);
    // Heads in parallel; a method's own OpenMP loops then run serially inside.
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < io.n_head; ++h) sels[h] = m->select(head_inputs_of(io, h));
    const auto t1 = clock::now();
    m->attend(io, sels.data(), score_);
    const auto t2 = clock::now();

    layer_record r;
    r.layer = io.layer;
    r.n_tokens = io.n_tokens;
    r.predictor_s = std::chrono::duration<double>(t1 - t0).count();
    r.kernel_s = std::chrono::duration<double>(t2 - t1).count();
    for (const auto & s : sels) {
        r.token_density += selection_token_density(s) / io.n_head;
        r.block_density += selection_block_density(s) / io.n_head;
    }
    records_.push_back(r);
    return true;
}

} // namespace attnlab
