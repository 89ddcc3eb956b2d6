// The kernels' error reporting, shared by their translation units: a failing
// launcher records a message (read back through attnlab_cuda_last_error()) and
// returns nonzero. Implemented in attention.cu.
#pragma once

#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

namespace attnlab::cuda {

// Records msg as the last error; returns 1.
int fail(const std::string & msg);
// 0 on cudaSuccess, else fail("what: <CUDA's message>").
int check_cuda(cudaError_t e, const char * what);

// A device allocation freed on scope exit (host code that throws: the C++
// backends, not the C API's launchers). Throws std::runtime_error "WHO:
// cudaMalloc: ..." when the allocation fails.
struct device_buffer {
    void * p = nullptr;
    device_buffer(size_t n, const char * who) {
        const cudaError_t e = cudaMalloc(&p, n ? n : 1);
        if (e != cudaSuccess) throw std::runtime_error(std::string(who) + ": cudaMalloc: " + cudaGetErrorString(e));
    }
    ~device_buffer() { cudaFree(p); }
    device_buffer(const device_buffer &) = delete;
    device_buffer & operator=(const device_buffer &) = delete;
};

} // namespace attnlab::cuda
