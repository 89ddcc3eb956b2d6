#pragma once
// Tensor data ranges of one file (GGUF, safetensors): each must lie in the data
// section and no two may share a byte. Overlapping ranges would let a small
// file stand for many times its size once every tensor is dequantised (700
// matrices over one 2 MB region loaded at 3 GB), so both readers refuse them
// here, naming both tensors.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

struct byte_range {
    uint64_t begin = 0, end = 0; // [begin, end) in the data section
    std::string name;            // the tensor, as the error names it
    std::string field;           // the field an error about it names
};

// The indexes of `ranges` in file order (by begin, then end), after checking
// that no two overlap; throws input_error(file, field of the later tensor,
// "overlaps tensor ...") otherwise. Empty ranges overlap nothing.
std::vector<size_t> byte_ranges_disjoint(const std::string & file, const std::vector<byte_range> & ranges);

} // namespace attnlab
