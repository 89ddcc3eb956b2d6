#include "cuda_register.h"

#include "cuda_backend.h"
#include "llama_gpu_cuda.h"

extern "C" void attnlab_cuda_register(void) {
    attnlab::gpu_backend_register(attnlab::cuda_backend_instance());
    attnlab::llama_gpu_register(&attnlab::cuda_llama_create, &attnlab::cuda_device_count);
}
