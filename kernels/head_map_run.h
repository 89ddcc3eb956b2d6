#pragma once
// The GPU backend's head maps (attention/gpu_backend.h: upload, head_map),
// driving kernels/head_map.cu. Host C++ on the CUDA runtime.
#include <memory>

#include "attention/gpu_backend.h"

namespace attnlab::cuda {

std::shared_ptr<gpu_floats> hm_upload(const float * host, size_t n);

// Validates the arguments (std::invalid_argument), uploads the selection's
// arrays (out.host_s), runs the kernels, keep bits included (out.kernel_s,
// CUDA events), and downloads the rows and pyramids (out.total_s: all of it).
// Serialised: one map at a time shares one set of device buffers.
void hm_run(const gpu_head_map_args & a, gpu_head_map_out & out);

} // namespace attnlab::cuda
