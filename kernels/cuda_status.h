// The kernels' error reporting, shared by their translation units: a failing
// launcher records a message (read back through attnlab_cuda_last_error()) and
// returns nonzero. Implemented in attention.cu.
#pragma once

#include <string>

#include <cuda_runtime.h>

namespace attnlab::cuda {

// Records msg as the last error; returns 1.
int fail(const std::string & msg);
// 0 on cudaSuccess, else fail("what: <CUDA's message>").
int check_cuda(cudaError_t e, const char * what);

} // namespace attnlab::cuda
