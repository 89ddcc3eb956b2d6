#pragma once
// The CUDA implementation of core's llama_gpu (core/model/llama_gpu_api.h):
// weights uploaded once in bf16, cuBLAS linears, the project's flash kernels.
// Programs do not call these directly: attnlab_cuda_register()
// (kernels/cuda_register.h) puts them into core's slots.
#include <memory>

#include "model/llama_gpu_api.h"

namespace attnlab {
int cuda_device_count();
std::unique_ptr<llama_gpu> cuda_llama_create(const llama_model & m);
}
