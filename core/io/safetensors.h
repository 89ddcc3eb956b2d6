#pragma once
// safetensors: reader (memory-mapped, every header field validated), atomic
// writer, and Hugging Face checkpoint directories (config.json + one or many
// *.safetensors shards, with model.safetensors.index.json).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace attnlab {

class job_progress;

class mapped_file;

enum class st_dtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
const char * st_dtype_name(st_dtype t);
size_t st_dtype_size(st_dtype t);

struct st_tensor {
    std::string name;
    st_dtype dtype = st_dtype::F32;
    std::vector<int64_t> shape;  // row-major, last dimension contiguous
    const uint8_t * data = nullptr;
    uint64_t nbytes = 0;
    int64_t n_elements() const;
};

class safetensors_file {
public:
    static safetensors_file open(const std::string & path); // throws input_error
    safetensors_file(safetensors_file &&) noexcept;
    safetensors_file & operator=(safetensors_file &&) noexcept;
    ~safetensors_file();

    const std::string & path() const;
    const std::map<std::string, std::string> & metadata() const { return metadata_; }
    const std::vector<st_tensor> & tensors() const { return tensors_; }
    const st_tensor * find(const std::string & name) const;
    // Float copy of F64/F32/F16/BF16 data; input_error naming the tensor otherwise.
    std::vector<float> to_f32(const st_tensor & t) const;

private:
    safetensors_file() = default;
    std::unique_ptr<mapped_file> map_;
    std::map<std::string, std::string> metadata_;
    std::vector<st_tensor> tensors_;
};

struct st_write_tensor {
    std::string name;
    st_dtype dtype = st_dtype::F32;
    std::vector<int64_t> shape;
    const void * data = nullptr;
    uint64_t nbytes = 0;
};

// Atomic (base/atomic_write.h): a reader never sees half a file. `cancel`:
// a cancel request stops the write between pieces (job_cancelled), nothing left.
void safetensors_write(const std::string & path, const std::vector<st_write_tensor> & tensors,
                       const std::map<std::string, std::string> & metadata, job_progress * cancel = nullptr);

// A Hugging Face checkpoint: a directory with config.json and either
// model.safetensors or model.safetensors.index.json plus its shards.
class hf_checkpoint {
public:
    static hf_checkpoint open(const std::string & dir); // throws input_error
    const std::string & dir() const { return dir_; }
    const std::string & config_json() const { return config_json_; } // raw text of config.json
    std::vector<std::string> tensor_names() const;
    const st_tensor * find(const std::string & name) const;
    std::vector<float> to_f32(const st_tensor & t) const;
    const std::vector<std::string> & shard_paths() const { return shard_paths_; }

private:
    std::string dir_;
    std::string config_json_;
    std::vector<std::string> shard_paths_;
    std::vector<safetensors_file> shards_;
};

bool hf_checkpoint_is_dir(const std::string & path);

} // namespace attnlab
