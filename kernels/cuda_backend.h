#pragma once
// The CUDA implementation of core's gpu_attention_backend
// (core/attention/gpu_backend.h). Programs do not call this directly:
// attnlab_cuda_register() (kernels/cuda_register.h) puts it into core's slot.
#include "attention/gpu_backend.h"

namespace attnlab {
gpu_attention_backend * cuda_backend_instance();
}
