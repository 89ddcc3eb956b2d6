// The GPU head map [cuda] (metrics/head_map.h, kernels/head_map.cu) against
// the CPU's head_map_compute on the same random Q/K: row statistics, every
// LOD level of the dense, sparse and kept maps, with and without a selection
// (block_topk at blocks 16, 32, 64 and 128, a token-level sinks_window), at lengths
// that are not multiples of the 64-row tile and at finest factors 1, 2 and 4.
// Also independent checks: float64 softmax sums of sampled rows, and the kept
// map's total against the selection's pair count. Without a GPU the binary
// prints "skipped: no CUDA device" and succeeds.
#define CATCH_CONFIG_RUNNER
#define EIGEN_NO_CUDA 1
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "attention/gpu_backend.h"
#include "attention/selection.h"
#include "attnlab_cuda.h"
#include "cuda_register.h"
#include "data/capture.h"
#include "methods/method.h"
#include "metrics/head_map.h"

namespace {

using namespace attnlab;

// Fresh random Q/K/V (normal, sd `sd`), one captured layer.
std::shared_ptr<const qkv_capture> random_capture(int L, int H, int Hk, int d, float sd, unsigned seed) {
    auto c = std::make_shared<qkv_capture>();
    c->info.n_layer = 1;
    c->info.n_head = H;
    c->info.n_head_kv = Hk;
    c->info.head_dim = d;
    c->info.layers = {0};
    c->info.token_ids.resize(L);
    for (int t = 0; t < L; ++t) c->info.token_ids[t] = t;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, sd);
    layer_qkv l;
    l.q.resize(size_t(L) * H * d);
    l.k.resize(size_t(L) * Hk * d);
    l.v.resize(size_t(L) * Hk * d);
    for (auto * v : {&l.q, &l.k, &l.v})
        for (float & x : *v) x = nd(rng);
    c->layers.push_back(std::move(l));
    return c;
}

std::shared_ptr<const selection> select_head(const qkv_capture & cap, int h, const std::string & spec) {
    auto m = method_create(spec);
    const attention_layer_io io = capture_layer_io(cap, 0);
    return std::make_shared<const selection>(m->select(head_inputs_of(io, h)));
}

// Largest |a - b| / max(|a|, floor) over two arrays of one size.
double max_rel(const std::vector<float> & a, const std::vector<float> & b, double floor_ = 1e-30) {
    REQUIRE(a.size() == b.size());
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::abs(double(a[i]) - double(b[i]));
        m = std::max(m, d / std::max(std::abs(double(a[i])), floor_));
    }
    return m;
}

void check_levels(const std::vector<lod_level> & cpu, const std::vector<lod_level> & gpu, const char * what) {
    REQUIRE(cpu.size() == gpu.size());
    for (size_t s = 0; s < cpu.size(); ++s) {
        INFO(what << " level " << s << " (factor " << cpu[s].factor << ")");
        REQUIRE(gpu[s].factor == cpu[s].factor);
        REQUIRE(gpu[s].n_rows == cpu[s].n_rows);
        REQUIRE(gpu[s].n_cols == cpu[s].n_cols);
        CHECK(gpu[s].L == cpu[s].L);
        CHECK(max_rel(cpu[s].max, gpu[s].max) < 1e-4);
        CHECK(max_rel(cpu[s].sum, gpu[s].sum) < 1e-4);
    }
}

// Float64 softmax statistics of row i straight from the capture.
void row_f64(const qkv_capture & cap, int h, int i, double & mx, double & inv_sum) {
    const attention_layer_io io = capture_layer_io(cap, 0);
    const int d = io.head_dim, g = io.kv_head_of(h);
    std::vector<double> s(i + 1);
    mx = -INFINITY;
    for (int j = 0; j <= i; ++j) {
        double acc = 0.0;
        for (int t = 0; t < d; ++t)
            acc += double(io.q[int64_t(i) * io.n_head * d + h * d + t]) * io.scale *
                   double(io.k[int64_t(j) * io.n_head_kv * d + g * d + t]);
        s[j] = acc;
        mx = std::max(mx, acc);
    }
    double z = 0.0;
    for (double x : s) z += std::exp(x - mx);
    inv_sum = 1.0 / z;
}

void compare(const head_map & c, const head_map & g) {
    REQUIRE(g.L == c.L);
    CHECK(max_rel(c.row_max, g.row_max, 1.0) < 1e-5);   // relative, absolute near 0
    CHECK(max_rel(c.row_inv_sum, g.row_inv_sum) < 1e-5);
    CHECK(max_rel(c.row_entropy, g.row_entropy, 1.0) < 1e-4);
    CHECK(max_rel(c.row_recall, g.row_recall, 1.0) < 1e-5);
    CHECK(g.max_weight == Approx(c.max_weight).epsilon(1e-5));
    check_levels(c.dense, g.dense, "dense");
    check_levels(c.sparse, g.sparse, "sparse");
    check_levels(c.kept, g.kept, "kept");
}

double level_total(const lod_level & l) {
    double t = 0.0;
    for (float v : l.sum) t += v;
    return t;
}

} // namespace

TEST_CASE("GPU head map equals the CPU head map, dense and sparse", "[cuda]") {
    attnlab_cuda_register();
    gpu_attention_backend * be = gpu_backend_get();
    REQUIRE(be != nullptr);
    struct shape {
        int L, H, Hk;
        float sd;
    };
    // L = 1000: finest factor 1, a partial last tile; 2500: factor 2; 4200: factor 4.
    const shape shapes[] = {{1000, 4, 2, 1.0f}, {2500, 2, 1, 1.5f}, {4200, 2, 2, 1.0f}};
    // Block masks of every block size (keep bits of part of a word, a word,
    // two words) and token-level selections at blocks 64 and 128.
    const char * methods[] = {"",
                              "block_topk:rho=0.2,B=64",
                              "block_topk:rho=0.1,B=128",
                              "block_topk:rho=0.3,B=32",
                              "block_topk:rho=0.3,B=16",
                              "sinks_window:g=4,w=256",
                              "sinks_window:g=4,w=90,B=128"};
    unsigned seed = 1234;
    for (const shape & sh : shapes) {
        auto cap = random_capture(sh.L, sh.H, sh.Hk, 64, sh.sd, ++seed);
        auto gcap = gpu_capture_upload(*be, cap);
        CHECK(gcap->bytes == (cap->layers[0].q.size() + cap->layers[0].k.size()) * sizeof(float));
        for (int h : {0, sh.H - 1}) {
            for (const char * spec : methods) {
                INFO("L " << sh.L << " head " << h << " method '" << spec << "'");
                std::shared_ptr<const selection> sel = *spec ? select_head(*cap, h, spec) : nullptr;
                auto c = head_map_compute(cap, 0, h, sel, nullptr);
                auto g = head_map_compute_gpu(*gcap, 0, h, sel);
                compare(*c, *g);
                CHECK(g->device == be->device_name());
                CHECK(g->kernel_seconds > 0);
                std::printf("L=%d head %d %-26s finest %dx%d: CPU %.1f ms, GPU %.2f ms (kernels %.3f ms)\n", sh.L, h,
                            *spec ? spec : "dense", c->finest_factor(), c->finest_factor(), c->seconds * 1e3,
                            g->seconds * 1e3, g->kernel_seconds * 1e3);
                // Independent of the CPU map: float64 rows ...
                for (int i : {0, 1, sh.L / 3, sh.L - 1}) {
                    double mx, inv;
                    row_f64(*cap, h, i, mx, inv);
                    CHECK(std::abs(g->row_max[i] - mx) < 1e-4 * std::max(1.0, std::abs(mx)));
                    CHECK(std::abs(g->row_inv_sum[i] - inv) < 1e-4 * inv);
                }
                // ... every row's weights sum to 1, so the dense map holds L in all ...
                CHECK(level_total(g->dense.back()) == Approx(double(sh.L)).epsilon(1e-4));
                if (!sel) continue;
                // ... the kept map counts the selection's pairs, the sparse map
                // holds one per row with a kept key, and differs from the dense one.
                CHECK(level_total(g->kept.back()) == Approx(double(selection_pairs(*sel))).epsilon(1e-6));
                int rows_kept = 0;
                for (float r : g->row_recall) rows_kept += r > 0;
                CHECK(level_total(g->sparse.back()) == Approx(double(rows_kept)).epsilon(1e-4));
                CHECK(max_rel(g->dense.front().sum, g->sparse.front().sum, 1e-3) > 0.1);
            }
        }
    }
}

TEST_CASE("GPU head map from host rows equals the map from the capture kept on the GPU", "[cuda]") {
    attnlab_cuda_register();
    gpu_attention_backend * be = gpu_backend_get();
    REQUIRE(be != nullptr);
    auto cap = random_capture(777, 2, 1, 64, 1.0f, 99);
    auto gcap = gpu_capture_upload(*be, cap);
    auto sel = select_head(*cap, 1, "sinks_window:g=4,w=100");
    auto g = head_map_compute_gpu(*gcap, 0, 1, sel);
    gpu_head_map_args a;
    a.q = g->q.data();   // contiguous, already scaled: scale 1
    a.k = g->k.data();
    a.n_tokens = 777;
    a.head_dim = 64;
    a.scale = 1.0f;
    a.finest_factor = 1;
    a.sel = sel.get();
    gpu_head_map_out o;
    be->head_map(a, o);
    CHECK(max_rel(g->row_inv_sum, o.row_inv_sum) == 0.0);
    CHECK(max_rel(g->row_recall, o.row_recall) == 0.0);
    REQUIRE(o.sparse.size() == g->sparse.size());
    CHECK(max_rel(g->sparse.front().sum, o.sparse.front().sum) == 0.0);
    CHECK(o.host_s > 0);
    CHECK(o.total_s >= o.kernel_s);
}

TEST_CASE("GPU head map refuses bad input with one clear error", "[cuda]") {
    attnlab_cuda_register();
    gpu_attention_backend * be = gpu_backend_get();
    REQUIRE(be != nullptr);
    std::vector<float> q(64 * 100, 0.5f);
    gpu_head_map_args a;
    a.q = a.k = q.data();
    a.n_tokens = 100;
    a.head_dim = 64;
    a.finest_factor = 3;
    gpu_head_map_out o;
    CHECK_THROWS_WITH(be->head_map(a, o), Catch::Contains("finest_factor 3"));
    a.finest_factor = 1;
    const selection other = selection_dense(50, 64, true);
    a.sel = &other;
    CHECK_THROWS_WITH(be->head_map(a, o), Catch::Contains("selection has 50 tokens"));
    a.sel = nullptr;
    a.n_tokens = 0;
    CHECK_THROWS_WITH(be->head_map(a, o), Catch::Contains("bad shape"));
    auto cap = random_capture(100, 1, 1, 64, 1.0f, 5);
    auto gcap = gpu_capture_upload(*be, cap);
    CHECK_THROWS_AS(head_map_compute_gpu(*gcap, 3, 0, nullptr), std::invalid_argument);
    CHECK_THROWS_AS(head_map_compute_gpu(*gcap, 0, 7, nullptr), std::invalid_argument);
}

int main(int argc, char ** argv) {
    if (attnlab_cuda_device_count() == 0) {
        std::printf("skipped: no CUDA device\n");
        return 0;
    }
    return Catch::Session().run(argc, argv);
}
