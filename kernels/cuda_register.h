#pragma once
// The one entry point a program linking attnlab_kernels calls at start (under
// #ifdef ATTNLAB_HAVE_CUDA): fills every slot core offers for a GPU, the
// attention backend (gpu_backend_get) and the forward pass (llama_gpu::create).
// Afterwards each says "no CUDA device" on machines without one.
extern "C" void attnlab_cuda_register(void);
