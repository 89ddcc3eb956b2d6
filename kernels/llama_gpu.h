#pragma once
// Registration of the CUDA implementation of core's llama_gpu
// (core/model/llama_gpu.h). A program that links attnlab_kernels calls
// attnlab_register_cuda_model() once at start (under #ifdef
// ATTNLAB_HAVE_CUDA); afterwards llama_gpu::create() runs on the GPU when one
// is present and says "no CUDA device" otherwise.
#include "model/llama_gpu.h"

extern "C" void attnlab_register_cuda_model(void);
