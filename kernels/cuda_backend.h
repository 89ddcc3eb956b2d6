#pragma once
// Registration of the CUDA implementation of core's gpu_attention_backend.
// A program that links attnlab_kernels calls attnlab_register_cuda_backend()
// once at start; afterwards attnlab::gpu_backend_get() returns it when a GPU
// is present (nullptr otherwise).
#include "attention/gpu_backend.h"

namespace attnlab {
gpu_attention_backend * cuda_backend_instance();
}
extern "C" void attnlab_register_cuda_backend(void);
