#pragma once
// GGUF reader (versions 2 and 3): metadata of every value type, tensor infos,
// alignment, tensor data read straight from a memory mapping, and
// dequantisation of the common ggml types to float32.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace attnlab {

class mapped_file;

// ggml tensor types, numbered as in the GGUF format.
enum class ggml_type : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    BF16 = 30,
};

struct ggml_type_info {
    const char * name;   // "Q4_1"
    int64_t block_elems; // elements per block (1 for F32/F16/BF16)
    int64_t block_bytes; // bytes per block
    bool dequantizable;  // dequantize_row() handles it
};

// Returns nullptr for a type number this reader does not know.
const ggml_type_info * ggml_type_info_get(uint32_t type);

// Decodes n elements (a multiple of the type's block size) from src into dst.
void dequantize_row(ggml_type type, const void * src, float * dst, int64_t n);

enum class gguf_value_type : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
    BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char * gguf_value_type_name(gguf_value_type t);

struct gguf_value {
    gguf_value_type type = gguf_value_type::UINT8;
    // Scalars: integers in i (signed) or u (unsigned), floats in f, bools in u.
    int64_t i = 0;
    uint64_t u = 0;
    double f = 0.0;
    std::string str;
    // Arrays: element type and the elements (arrays may nest).
    gguf_value_type elem_type = gguf_value_type::UINT8;
    std::vector<gguf_value> items;

    bool is_integer() const;
    bool is_float() const;
};

struct gguf_tensor {
    std::string name;
    std::vector<int64_t> ne;   // ggml order: ne[0] is contiguous (a row)
    ggml_type type = ggml_type::F32;
    uint64_t offset = 0;       // relative to the start of the data section
    const uint8_t * data = nullptr;
    uint64_t nbytes = 0;

    int64_t n_elements() const;
    int64_t n_rows() const { return ne.empty() ? 0 : n_elements() / ne[0]; }
};

class gguf_file {
public:
    // Parses the header, metadata and tensor infos and validates every
    // tensor's bounds. Throws input_error(path, field, ...) on bad input.
    static gguf_file open(const std::string & path);

    gguf_file(gguf_file &&) noexcept;
    gguf_file & operator=(gguf_file &&) noexcept;
    ~gguf_file();

    const std::string & path() const;
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t file_size() const;

    const std::vector<std::pair<std::string, gguf_value>> & metadata() const { return kv_; }
    const gguf_value * find(const std::string & key) const;

    // Typed getters: throw input_error naming the key when it is missing or
    // has the wrong type. The _or variants return def when missing.
    uint64_t get_u64(const std::string & key) const;
    int64_t get_i64(const std::string & key) const;
    double get_f64(const std::string & key) const;
    bool get_bool(const std::string & key) const;
    std::string get_str(const std::string & key) const;
    uint64_t get_u64_or(const std::string & key, uint64_t def) const;
    double get_f64_or(const std::string & key, double def) const;
    bool get_bool_or(const std::string & key, bool def) const;
    std::string get_str_or(const std::string & key, const std::string & def) const;
    std::vector<std::string> get_str_array(const std::string & key) const;
    std::vector<int64_t> get_int_array(const std::string & key) const;
    std::vector<double> get_float_array(const std::string & key) const;

    const std::vector<gguf_tensor> & tensors() const { return tensors_; }
    const gguf_tensor * find_tensor(const std::string & name) const;

    // Dequantised copy of a tensor, row-major with ne[0] contiguous. Throws
    // input_error naming the tensor for a type dequantize_row cannot decode.
    std::vector<float> tensor_to_f32(const gguf_tensor & t) const;

private:
    gguf_file() = default;
    std::unique_ptr<mapped_file> map_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    std::vector<std::pair<std::string, gguf_value>> kv_;
    std::vector<gguf_tensor> tensors_;
};

// Quick check of the first four bytes, for format detection.
bool gguf_is_gguf(const std::string & path);

} // namespace attnlab
