// A head's map on the GPU: the capture's Q and K stay on the device (one copy
// per layer, uploaded once), and the backend's kernels (kernels/head_map.cu)
// compute what head_map_compute computes on the CPU. The host keeps its own
// copy of the head's rows too: tooltips and exact windows read single weights.
#include "metrics/head_map.h"

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

#include "data/capture.h"

namespace attnlab {

namespace {
double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
} // namespace

std::shared_ptr<const gpu_capture> gpu_capture_upload(gpu_attention_backend & backend,
                                                      std::shared_ptr<const qkv_capture> cap) {
    if (!cap) throw std::invalid_argument("gpu_capture_upload: no capture");
    const double t0 = now_s();
    auto g = std::make_shared<gpu_capture>();
    g->cap = cap;
    g->backend = &backend;
    for (const layer_qkv & l : cap->layers) {
        g->q.push_back(backend.upload(l.q.data(), l.q.size()));
        g->k.push_back(backend.upload(l.k.data(), l.k.size()));
        g->bytes += (l.q.size() + l.k.size()) * sizeof(float);
    }
    g->upload_seconds = now_s() - t0;
    return g;
}

std::shared_ptr<head_map> head_map_compute_gpu(const gpu_capture & g, size_t layer_index, int head,
                                               std::shared_ptr<const selection> sel) {
    const double t0 = now_s();
    const qkv_capture & cap = *g.cap;
    if (!g.backend) throw std::invalid_argument("head_map_compute_gpu: no GPU backend");
    if (layer_index >= cap.layers.size() || layer_index >= g.q.size())
        throw std::invalid_argument("head_map_compute_gpu: layer index " + std::to_string(layer_index) +
                                    " out of range");
    if (head < 0 || head >= cap.info.n_head) throw std::invalid_argument("head out of range");
    auto m = std::make_shared<head_map>();
    m->cap = g.cap;
    m->sel = sel;
    m->layer_index = layer_index;
    m->layer = cap.layers[layer_index].layer;
    m->head = head;
    m->L = cap.info.n_tokens();
    m->head_dim = cap.info.head_dim;
    if (sel && sel->n_tokens != m->L) throw std::invalid_argument("selection length differs from the capture");

    const attention_layer_io io = capture_layer_io(cap, layer_index);
    gpu_head_map_args a;
    a.q = g.q[layer_index]->data() + int64_t(head) * io.head_dim;
    a.k = g.k[layer_index]->data() + int64_t(io.kv_head_of(head)) * io.head_dim;
    a.q_stride = int64_t(io.n_head) * io.head_dim;
    a.k_stride = int64_t(io.n_head_kv) * io.head_dim;
    a.on_device = true;
    a.n_tokens = m->L;
    a.head_dim = m->head_dim;
    a.scale = io.scale;
    a.finest_factor = head_map_finest_factor(m->L);
    a.sel = sel.get();
    gpu_head_map_out o;
    // The host copy of the head's rows (tooltips, exact windows) while the GPU works.
    std::exception_ptr rows_error;
    std::thread rows([&] {
        try {
            head_map_extract(cap, layer_index, head, m->q, m->k, m->scale);
        } catch (...) {
            rows_error = std::current_exception();
        }
    });
    try {
        g.backend->head_map(a, o);
    } catch (...) {
        rows.join();
        throw;
    }
    rows.join();
    if (rows_error) std::rethrow_exception(rows_error);

    m->row_max = std::move(o.row_max);
    m->row_inv_sum = std::move(o.row_inv_sum);
    m->row_entropy = std::move(o.row_entropy);
    m->row_recall = std::move(o.row_recall);
    m->dense = std::move(o.dense);
    m->sparse = std::move(o.sparse);
    m->kept = std::move(o.kept);
    head_map_finish(*m);
    m->device = g.backend->device_name();
    m->kernel_seconds = o.kernel_s;
    m->seconds = now_s() - t0;
    return m;
}

} // namespace attnlab
