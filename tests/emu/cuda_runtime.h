#pragma once
// A CPU emulation of the little of CUDA that kernels/head_map.cu and
// kernels/head_map_run.cpp use, so that their logic can be checked on a
// machine without a GPU (tests/emu/run_head_map_emu.sh). Each CUDA thread is
// an OS thread, blocks run one after another, __syncthreads is a barrier,
// shared memory is a function-static, a warp shuffle is an exchange through
// memory between two barriers (every thread of the block calls it, as in
// these kernels), device memory is host memory. Slow, and float results can
// differ from the GPU's in the last bits (expf); it checks indexing, tiling,
// masks and synchronisation logic, not timing.
#include <barrier>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct emu_idx { unsigned x = 0, y = 0, z = 0; };
inline thread_local emu_idx threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static
inline std::barrier<> * g_bar = nullptr;
inline void __syncthreads() { g_bar->arrive_and_wait(); }
inline float g_xchg[1024];
inline float __shfl_xor_sync(unsigned, float v, int o) {
    unsigned t = threadIdx.x;
    g_xchg[t] = v;
    g_bar->arrive_and_wait();
    float r = g_xchg[t ^ unsigned(o)];
    g_bar->arrive_and_wait();
    return r;
}
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
typedef int cudaError_t;
typedef void * cudaStream_t;
typedef int cudaEvent_t_;
typedef cudaEvent_t_ * cudaEvent_t;
enum { cudaSuccess = 0, cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
inline int cudaGetLastError() { return 0; }
inline const char * cudaGetErrorString(int) { return "emu error"; }
inline int cudaMalloc(void ** p, size_t n) { *p = std::malloc(n); return 0; }
inline int cudaFree(void * p) { std::free(p); return 0; }
inline int cudaMallocHost(void ** p, size_t n) { *p = std::malloc(n); return 0; }
inline int cudaFreeHost(void * p) { std::free(p); return 0; }
inline int cudaMemcpy(void * d, const void * s, size_t n, int) { std::memcpy(d, s, n); return 0; }
inline int cudaMemsetAsync(void * d, int v, size_t n, cudaStream_t = nullptr) { std::memset(d, v, n); return 0; }
inline int cudaEventCreate(cudaEvent_t * e) { *e = new int(0); return 0; }
inline int cudaEventRecord(cudaEvent_t, cudaStream_t = nullptr) { return 0; }
inline int cudaEventSynchronize(cudaEvent_t) { return 0; }
inline int cudaEventElapsedTime(float * ms, cudaEvent_t, cudaEvent_t) { *ms = 1.0f; return 0; }
struct emu_launcher {
    dim3 g, b;
    template <class K, class... A> void run(K k, A... a) {
        gridDim = g;
        blockDim = b;
        for (unsigned z = 0; z < g.z; ++z)
            for (unsigned y = 0; y < g.y; ++y)
                for (unsigned x = 0; x < g.x; ++x) {
                    std::barrier<> bar(b.x);
                    g_bar = &bar;
                    std::vector<std::thread> ts;
                    for (unsigned t = 0; t < b.x; ++t)
                        ts.emplace_back([=] {
                            threadIdx = {t, 0, 0};
                            blockIdx = {x, y, z};
                            k(a...);
                        });
                    for (auto & th : ts) th.join();
                }
    }
};
#define emu_launch(K, G, B, S, ST) [&](auto... args) { emu_launcher{dim3(G), dim3(B)}.run(K, args...); }
struct emu_launcher_seq {   // kernels without barriers: threads one after another
    dim3 g, b;
    template <class K, class... A> void run(K k, A... a) {
        for (unsigned z = 0; z < g.z; ++z)
            for (unsigned y = 0; y < g.y; ++y)
                for (unsigned x = 0; x < g.x; ++x)
                    for (unsigned t = 0; t < b.x; ++t) {
                        threadIdx = {t, 0, 0};
                        blockIdx = {x, y, z};
                        k(a...);
                    }
    }
};
#define emu_launch_seq(K, G, B, S, ST) [&](auto... args) { emu_launcher_seq{dim3(G), dim3(B)}.run(K, args...); }
inline unsigned long long atomicOr(unsigned long long * p, unsigned long long v) {
    return __atomic_fetch_or(p, v, __ATOMIC_RELAXED);
}
