// GGUF reader. The whole file is memory-mapped; a small cursor walks the
// header, metadata and tensor infos, checking every length and count against
// the bytes left before reading or reserving anything, so a corrupt or
// hostile file ends in one input_error naming the field, never a crash or a
// huge allocation.
#include "io/gguf.h"
#include "base/error.h"
#include "base/mapped_file.h"
#include "base/read_file.h"
#include "io/byte_ranges.h"

#include <cstring>
#include <limits>
#include <set>
#include <string>

namespace attnlab {

namespace {

const uint32_t k_max_dims = 4;          // as ggml (GGML_MAX_DIMS)
const int k_max_array_depth = 8;        // nested metadata arrays
const uint64_t k_max_meta_values = 1ull << 22; // all array elements together (~4M; real tokenizers use <2M)
const uint64_t k_max_alignment = 1ull << 30;

// Smallest encoded size of one value of a type, used to bound counts before
// reserving: a string is at least its 8-byte length, a nested array at least
// its 4-byte type and 8-byte count.
uint64_t min_value_bytes(uint32_t t) {
    switch ((gguf_value_type)t) {
        case gguf_value_type::UINT8:
        case gguf_value_type::INT8:
        case gguf_value_type::BOOL: return 1;
        case gguf_value_type::UINT16:
        case gguf_value_type::INT16: return 2;
        case gguf_value_type::UINT32:
        case gguf_value_type::INT32:
        case gguf_value_type::FLOAT32: return 4;
        case gguf_value_type::UINT64:
        case gguf_value_type::INT64:
        case gguf_value_type::FLOAT64:
        case gguf_value_type::STRING: return 8;
        case gguf_value_type::ARRAY: return 12;
    }
    return 0; // unknown
}

class reader {
public:
    reader(const std::string & file, const uint8_t * data, uint64_t size) : file_(file), p_(data), size_(size) {}

    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }

    [[noreturn]] void fail(const std::string & field, const std::string & msg) const {
        throw input_error(file_, field, msg + " (at byte " + std::to_string(pos_) + ")");
    }

    void need(uint64_t n, const std::string & field) const {
        if (n > left()) {
            fail(field, "truncated: needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
        }
    }

    template <typename T>
    T get(const std::string & field) {
        need(sizeof(T), field);
        T v;
        std::memcpy(&v, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string get_string(const std::string & field) {
        const uint64_t n = get<uint64_t>(field + ".length");
        if (n > left()) {
            fail(field + ".length", "string length " + std::to_string(n) + " exceeds the " +
                                        std::to_string(left()) + " bytes left in the file");
        }
        std::string s(reinterpret_cast<const char *>(p_ + pos_), (size_t)n);
        pos_ += n;
        return s;
    }

private:
    const std::string & file_;
    const uint8_t * p_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

bool is_valid_value_type(uint32_t t) { return t <= (uint32_t)gguf_value_type::FLOAT64; }

struct value_parser {
    reader & r;
    uint64_t n_values = 0; // array elements read so far, bounded by k_max_meta_values

    void read_scalar(gguf_value & v, gguf_value_type t, const std::string & field) {
        v.type = t;
        switch (t) {
            case gguf_value_type::UINT8:  v.u = r.get<uint8_t>(field);  v.i = (int64_t)v.u; break;
            case gguf_value_type::INT8:   v.i = r.get<int8_t>(field);   v.u = (uint64_t)v.i; break;
            case gguf_value_type::UINT16: v.u = r.get<uint16_t>(field); v.i = (int64_t)v.u; break;
            case gguf_value_type::INT16:  v.i = r.get<int16_t>(field);  v.u = (uint64_t)v.i; break;
            case gguf_value_type::UINT32: v.u = r.get<uint32_t>(field); v.i = (int64_t)v.u; break;
            case gguf_value_type::INT32:  v.i = r.get<int32_t>(field);  v.u = (uint64_t)v.i; break;
            case gguf_value_type::UINT64: v.u = r.get<uint64_t>(field); v.i = (int64_t)v.u; break;
            case gguf_value_type::INT64:  v.i = r.get<int64_t>(field);  v.u = (uint64_t)v.i; break;
            case gguf_value_type::FLOAT32: v.f = r.get<float>(field); break;
            case gguf_value_type::FLOAT64: v.f = r.get<double>(field); break;
            case gguf_value_type::BOOL: {
                const uint8_t b = r.get<uint8_t>(field);
                if (b > 1) r.fail(field, "bool value " + std::to_string(b) + " is not 0 or 1");
                v.u = b;
                v.i = b;
                break;
            }
            case gguf_value_type::STRING: v.str = r.get_string(field); break;
            case gguf_value_type::ARRAY: break; // handled by read_value
        }
    }

    void read_value(gguf_value & v, uint32_t type, const std::string & field, int depth) {
        if (!is_valid_value_type(type)) {
            r.fail(field + ".type", "unknown value type " + std::to_string(type));
        }
        if ((gguf_value_type)type != gguf_value_type::ARRAY) {
            read_scalar(v, (gguf_value_type)type, field);
            return;
        }
        if (depth >= k_max_array_depth) r.fail(field, "arrays nested deeper than " + std::to_string(k_max_array_depth));
        v.type = gguf_value_type::ARRAY;
        const uint32_t et = r.get<uint32_t>(field + ".elem_type");
        if (!is_valid_value_type(et)) r.fail(field + ".elem_type", "unknown array element type " + std::to_string(et));
        v.elem_type = (gguf_value_type)et;
        const uint64_t n = r.get<uint64_t>(field + ".count");
        // Check the count against the bytes left before reserving anything.
        const uint64_t min_sz = min_value_bytes(et);
        if (n > r.left() / min_sz) {
            r.fail(field + ".count", "array count " + std::to_string(n) + " cannot fit in the " +
                                         std::to_string(r.left()) + " bytes left in the file");
        }
        n_values += n;
        if (n_values > k_max_meta_values) {
            r.fail(field + ".count", "more than " + std::to_string(k_max_meta_values) + " metadata array elements");
        }
        v.items.resize((size_t)n);
        for (uint64_t k = 0; k < n; k++) {
            read_value(v.items[k], et, field + "[" + std::to_string(k) + "]", depth + 1);
        }
    }
};

bool checked_mul(uint64_t a, uint64_t b, uint64_t & out) { return !__builtin_mul_overflow(a, b, &out); }
bool checked_add(uint64_t a, uint64_t b, uint64_t & out) { return !__builtin_add_overflow(a, b, &out); }

} // namespace

const char * gguf_value_type_name(gguf_value_type t) {
    switch (t) {
        case gguf_value_type::UINT8: return "uint8";
        case gguf_value_type::INT8: return "int8";
        case gguf_value_type::UINT16: return "uint16";
        case gguf_value_type::INT16: return "int16";
        case gguf_value_type::UINT32: return "uint32";
        case gguf_value_type::INT32: return "int32";
        case gguf_value_type::FLOAT32: return "float32";
        case gguf_value_type::BOOL: return "bool";
        case gguf_value_type::STRING: return "string";
        case gguf_value_type::ARRAY: return "array";
        case gguf_value_type::UINT64: return "uint64";
        case gguf_value_type::INT64: return "int64";
        case gguf_value_type::FLOAT64: return "float64";
    }
    return "unknown";
}

bool gguf_value::is_integer() const {
    switch (type) {
        case gguf_value_type::UINT8: case gguf_value_type::INT8:
        case gguf_value_type::UINT16: case gguf_value_type::INT16:
        case gguf_value_type::UINT32: case gguf_value_type::INT32:
        case gguf_value_type::UINT64: case gguf_value_type::INT64:
            return true;
        default:
            return false;
    }
}

bool gguf_value::is_float() const {
    return type == gguf_value_type::FLOAT32 || type == gguf_value_type::FLOAT64;
}

static bool is_signed_type(gguf_value_type t) {
    return t == gguf_value_type::INT8 || t == gguf_value_type::INT16 || t == gguf_value_type::INT32 ||
           t == gguf_value_type::INT64;
}

int64_t gguf_tensor::n_elements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d; // bounded at open(): the product fits
    return n;
}

gguf_file::gguf_file(gguf_file &&) noexcept = default;
gguf_file & gguf_file::operator=(gguf_file &&) noexcept = default;
gguf_file::~gguf_file() = default;

const std::string & gguf_file::path() const {
    static const std::string empty;
    return map_ ? map_->path() : empty;
}

uint64_t gguf_file::file_size() const { return map_ ? map_->size() : 0; }

bool gguf_is_gguf(const std::string & path) {
    std::string head;
    return read_head(path, 4, &head) && head == "GGUF";
}

gguf_file gguf_file::open(const std::string & path) {
    gguf_file g;
    g.map_.reset(new mapped_file(path));
    const std::string & file = g.map_->path();
    reader r(file, g.map_->data(), g.map_->size());

    // Header: magic, version, tensor count, metadata count.
    r.need(4, "magic");
    char magic[4];
    std::memcpy(magic, g.map_->data(), 4);
    if (std::memcmp(magic, "GGUF", 4) != 0) r.fail("magic", "not a GGUF file (magic is not \"GGUF\")");
    r.get<uint32_t>("magic");

    const uint32_t version = r.get<uint32_t>("version");
    if (version == 0x02000000u || version == 0x03000000u) {
        // The version of a big-endian file reads byte-swapped here.
        r.fail("version", "big-endian GGUF files are not supported");
    }
    if (version == 1) r.fail("version", "GGUF version 1 (32-bit counts) is not supported; convert to v3");
    if (version != 2 && version != 3) r.fail("version", "unsupported GGUF version " + std::to_string(version));
    g.version_ = version;

    const uint64_t n_tensors = r.get<uint64_t>("n_tensors");
    const uint64_t n_kv = r.get<uint64_t>("n_kv");
    // A metadata pair takes at least 13 bytes (key length, type, one byte of
    // value); a tensor info at least 24 (name length, n_dims, type, offset).
    if (n_kv > r.left() / 13) {
        r.fail("n_kv", "metadata count " + std::to_string(n_kv) + " cannot fit in the file");
    }
    if (n_tensors > r.left() / 24) {
        r.fail("n_tensors", "tensor count " + std::to_string(n_tensors) + " cannot fit in the file");
    }

    // Metadata.
    value_parser vp{r};
    std::set<std::string> keys;
    g.kv_.reserve((size_t)n_kv);
    for (uint64_t k = 0; k < n_kv; k++) {
        std::string key = r.get_string("metadata[" + std::to_string(k) + "].key");
        const std::string field = "metadata[" + key + "]";
        if (!keys.insert(key).second) r.fail(field, "duplicate key");
        const uint32_t type = r.get<uint32_t>(field + ".type");
        gguf_value v;
        vp.read_value(v, type, field, 0);
        g.kv_.emplace_back(std::move(key), std::move(v));
    }

    // general.alignment: a power of two, stored as uint32 by the writers;
    // accept any unsigned integer type.
    if (const gguf_value * a = g.find("general.alignment")) {
        const std::string field = "metadata[general.alignment]";
        if (!a->is_integer() || is_signed_type(a->type)) {
            throw input_error(file, field, std::string("must be an unsigned integer, not ") + gguf_value_type_name(a->type));
        }
        if (a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > k_max_alignment) {
            throw input_error(file, field, "alignment " + std::to_string(a->u) + " is not a power of two up to 2^30");
        }
        g.alignment_ = a->u;
    }

    // Tensor infos.
    std::set<std::string> names;
    g.tensors_.reserve((size_t)n_tensors);
    for (uint64_t k = 0; k < n_tensors; k++) {
        const std::string field = "tensor_infos[" + std::to_string(k) + "]";
        gguf_tensor t;
        t.name = r.get_string(field + ".name");
        if (!names.insert(t.name).second) r.fail(field + ".name", "duplicate tensor name \"" + t.name + "\"");
        const uint32_t n_dims = r.get<uint32_t>(field + ".n_dims");
        if (n_dims > k_max_dims) {
            r.fail(field + ".n_dims", "tensor \"" + t.name + "\" has " + std::to_string(n_dims) + " dimensions, at most " +
                                          std::to_string(k_max_dims) + " allowed");
        }
        t.ne.resize(n_dims);
        uint64_t n_el = 1;
        for (uint32_t d = 0; d < n_dims; d++) {
            const std::string fd = field + ".ne[" + std::to_string(d) + "]";
            const uint64_t ne = r.get<uint64_t>(fd);
            if (ne > (uint64_t)std::numeric_limits<int64_t>::max() || !checked_mul(n_el, ne, n_el) ||
                n_el > (uint64_t)std::numeric_limits<int64_t>::max()) {
                r.fail(fd, "dimension " + std::to_string(ne) + " makes the element count overflow");
            }
            t.ne[d] = (int64_t)ne;
        }
        const uint32_t type = r.get<uint32_t>(field + ".type");
        const ggml_type_info * info = ggml_type_info_get(type);
        if (!info) r.fail(field + ".type", "unknown tensor type " + std::to_string(type) + " for \"" + t.name + "\"");
        t.type = (ggml_type)type;
        const uint64_t ne0 = n_dims > 0 ? (uint64_t)t.ne[0] : 1;
        if (ne0 % (uint64_t)info->block_elems != 0) {
            r.fail(field + ".ne[0]", "row length " + std::to_string(ne0) + " is not a multiple of the " + info->name +
                                         " block size " + std::to_string(info->block_elems));
        }
        // bytes = n_el / block_elems * block_bytes; n_el is a multiple of block_elems
        if (!checked_mul(n_el / (uint64_t)info->block_elems, (uint64_t)info->block_bytes, t.nbytes)) {
            r.fail(field + ".size", "tensor byte size overflows");
        }
        t.offset = r.get<uint64_t>(field + ".offset");
        if (t.offset % g.alignment_ != 0) {
            r.fail(field + ".offset", "offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                                          std::to_string(g.alignment_));
        }
        g.tensors_.push_back(std::move(t));
    }

    // Tensor data starts at the next multiple of the alignment.
    const uint64_t data_start = (r.pos() + g.alignment_ - 1) / g.alignment_ * g.alignment_;
    const uint64_t fsize = g.map_->size();
    std::vector<byte_range> ranges;
    ranges.reserve(g.tensors_.size());
    for (size_t k = 0; k < g.tensors_.size(); k++) {
        gguf_tensor & t = g.tensors_[k];
        const std::string field = "tensor_infos[" + std::to_string(k) + "].offset";
        uint64_t begin = 0, end = 0;
        if (!checked_add(data_start, t.offset, begin) || !checked_add(begin, t.nbytes, end) || end > fsize) {
            throw input_error(file, field,
                              "data of \"" + t.name + "\" (" + std::to_string(t.nbytes) + " bytes at offset " +
                                  std::to_string(t.offset) + ") runs past the end of the file (" +
                                  std::to_string(fsize) + " bytes)");
        }
        t.data = g.map_->data() + begin;
        ranges.push_back({t.offset, t.offset + t.nbytes, t.name, field});
    }
    // Tensors may not share bytes: each is dequantised on its own, so shared
    // data would multiply the memory a small file costs.
    byte_ranges_disjoint(file, ranges);
    return g;
}

const gguf_value * gguf_file::find(const std::string & key) const {
    for (const auto & kv : kv_) {
        if (kv.first == key) return &kv.second;
    }
    return nullptr;
}

const gguf_tensor * gguf_file::find_tensor(const std::string & name) const {
    for (const gguf_tensor & t : tensors_) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

namespace {

const gguf_value & need_key(const gguf_file & g, const std::string & key) {
    const gguf_value * v = g.find(key);
    if (!v) throw input_error(g.path(), "metadata[" + key + "]", "missing");
    return *v;
}

[[noreturn]] void wrong_type(const gguf_file & g, const std::string & key, const gguf_value & v, const char * want) {
    throw input_error(g.path(), "metadata[" + key + "]",
                      std::string("expected ") + want + ", found " + gguf_value_type_name(v.type));
}

uint64_t as_u64(const gguf_file & g, const std::string & key, const gguf_value & v) {
    if (!v.is_integer()) wrong_type(g, key, v, "an integer");
    if (is_signed_type(v.type) && v.i < 0) {
        throw input_error(g.path(), "metadata[" + key + "]", "negative value " + std::to_string(v.i));
    }
    return v.u;
}

double as_f64(const gguf_file & g, const std::string & key, const gguf_value & v) {
    if (v.is_float()) return v.f;
    if (v.is_integer()) return is_signed_type(v.type) ? (double)v.i : (double)v.u;
    wrong_type(g, key, v, "a number");
}

bool as_bool(const gguf_file & g, const std::string & key, const gguf_value & v) {
    if (v.type != gguf_value_type::BOOL) wrong_type(g, key, v, "a bool");
    return v.u != 0;
}

const std::string & as_str(const gguf_file & g, const std::string & key, const gguf_value & v) {
    if (v.type != gguf_value_type::STRING) wrong_type(g, key, v, "a string");
    return v.str;
}

} // namespace

uint64_t gguf_file::get_u64(const std::string & key) const { return as_u64(*this, key, need_key(*this, key)); }

int64_t gguf_file::get_i64(const std::string & key) const {
    const gguf_value & v = need_key(*this, key);
    if (!v.is_integer()) wrong_type(*this, key, v, "an integer");
    if (!is_signed_type(v.type) && v.u > (uint64_t)std::numeric_limits<int64_t>::max()) {
        throw input_error(path(), "metadata[" + key + "]", "value " + std::to_string(v.u) + " does not fit in int64");
    }
    return v.i;
}

double gguf_file::get_f64(const std::string & key) const { return as_f64(*this, key, need_key(*this, key)); }
bool gguf_file::get_bool(const std::string & key) const { return as_bool(*this, key, need_key(*this, key)); }
std::string gguf_file::get_str(const std::string & key) const { return as_str(*this, key, need_key(*this, key)); }

uint64_t gguf_file::get_u64_or(const std::string & key, uint64_t def) const {
    const gguf_value * v = find(key);
    return v ? as_u64(*this, key, *v) : def;
}

double gguf_file::get_f64_or(const std::string & key, double def) const {
    const gguf_value * v = find(key);
    return v ? as_f64(*this, key, *v) : def;
}

bool gguf_file::get_bool_or(const std::string & key, bool def) const {
    const gguf_value * v = find(key);
    return v ? as_bool(*this, key, *v) : def;
}

std::string gguf_file::get_str_or(const std::string & key, const std::string & def) const {
    const gguf_value * v = find(key);
    return v ? as_str(*this, key, *v) : def;
}

std::vector<std::string> gguf_file::get_str_array(const std::string & key) const {
    const gguf_value & v = need_key(*this, key);
    if (v.type != gguf_value_type::ARRAY || v.elem_type != gguf_value_type::STRING) {
        wrong_type(*this, key, v, "an array of strings");
    }
    std::vector<std::string> out;
    out.reserve(v.items.size());
    for (const gguf_value & it : v.items) out.push_back(it.str);
    return out;
}

std::vector<int64_t> gguf_file::get_int_array(const std::string & key) const {
    const gguf_value & v = need_key(*this, key);
    gguf_value tmp;
    tmp.type = v.elem_type;
    if (v.type != gguf_value_type::ARRAY || !tmp.is_integer()) wrong_type(*this, key, v, "an array of integers");
    std::vector<int64_t> out;
    out.reserve(v.items.size());
    for (size_t k = 0; k < v.items.size(); k++) {
        const gguf_value & it = v.items[k];
        if (!is_signed_type(it.type) && it.u > (uint64_t)std::numeric_limits<int64_t>::max()) {
            throw input_error(path(), "metadata[" + key + "][" + std::to_string(k) + "]", "value does not fit in int64");
        }
        out.push_back(it.i);
    }
    return out;
}

std::vector<double> gguf_file::get_float_array(const std::string & key) const {
    const gguf_value & v = need_key(*this, key);
    gguf_value tmp;
    tmp.type = v.elem_type;
    if (v.type != gguf_value_type::ARRAY || !(tmp.is_float() || tmp.is_integer())) {
        wrong_type(*this, key, v, "an array of numbers");
    }
    std::vector<double> out;
    out.reserve(v.items.size());
    for (const gguf_value & it : v.items) out.push_back(as_f64(*this, key, it));
    return out;
}

std::vector<float> gguf_file::tensor_to_f32(const gguf_tensor & t) const {
    const ggml_type_info * info = ggml_type_info_get((uint32_t)t.type);
    if (!info || !info->dequantizable) {
        throw input_error(path(), "tensor[" + t.name + "].type",
                          std::string("cannot dequantise type ") + (info ? info->name : std::to_string((uint32_t)t.type)));
    }
    const int64_t n = t.n_elements();
    std::vector<float> out((size_t)n);
    if (n == 0) return out;
    const int64_t row = t.ne.empty() ? 1 : t.ne[0]; // a 0-d tensor is one element
    const int64_t rows = n / row;
    const uint64_t row_bytes = (uint64_t)(row / info->block_elems) * (uint64_t)info->block_bytes;
    for (int64_t r = 0; r < rows; r++) {
        dequantize_row(t.type, t.data + (uint64_t)r * row_bytes, out.data() + r * row, row);
    }
    return out;
}

} // namespace attnlab
