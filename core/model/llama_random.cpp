#include "model/llama.h"

#include <string>

namespace attnlab {

llama_config llama_config_smollm2_135m() {
    llama_config c;
    c.n_layer = 30; c.n_embd = 576; c.n_head = 9; c.n_head_kv = 3; c.head_dim = 64;
    c.n_ff = 1536; c.n_vocab = 49152; c.n_ctx_train = 8192; c.rope_theta = 100000.0f;
    return c;
}

llama_model llama_model_random(const llama_config & c) {
    llama_model m;
    m.cfg = c;
    auto rnd = [](int r, int k) { matrix_rm w = matrix_rm::Random(r, k) * 0.05f; return w; };
    const int q = c.n_head * c.head_dim, kv = c.n_head_kv * c.head_dim;
    m.tok_embd = rnd(c.n_vocab, c.n_embd);
    m.output_norm = Eigen::VectorXf::Ones(c.n_embd);
    m.layers.resize(c.n_layer);
    for (auto & L : m.layers) {
        L.attn_norm = L.ffn_norm = Eigen::VectorXf::Ones(c.n_embd);
        L.wq = rnd(q, c.n_embd); L.wk = rnd(kv, c.n_embd); L.wv = rnd(kv, c.n_embd); L.wo = rnd(c.n_embd, q);
        L.w_gate = rnd(c.n_ff, c.n_embd); L.w_up = rnd(c.n_ff, c.n_embd); L.w_down = rnd(c.n_embd, c.n_ff);
    }
    m.source_path = "random weights (" + std::to_string(c.n_layer) + " layers x " + std::to_string(c.n_embd) + ", " +
                    std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) + " heads of " + std::to_string(c.head_dim) + ")";
    return m;
}

} // namespace attnlab
