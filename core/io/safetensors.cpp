// safetensors reader and writer, and Hugging Face checkpoint directories.
// Layout: 8-byte little-endian header length N, N bytes of JSON header, then
// the byte buffer. Each header entry gives dtype, shape and [begin, end)
// offsets into the buffer; everything is checked before a pointer is handed out.
#include "io/safetensors.h"
#include "base/atomic_write.h"
#include "base/error.h"
#include "io/gguf.h"
#include "base/json_read.h"
#include "base/mapped_file.h"
#include "base/read_file.h"
#include "io/byte_ranges.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace attnlab {

namespace {

using json = nlohmann::json;

// The reference implementation refuses headers above 100 MB; so do we, which
// also bounds what the JSON parser may allocate.
const uint64_t k_max_header = 100ull << 20;

struct dtype_row {
    st_dtype t;
    const char * name;
    size_t size;
};

const dtype_row k_dtypes[] = {
    {st_dtype::F64, "F64", 8}, {st_dtype::F32, "F32", 4}, {st_dtype::F16, "F16", 2}, {st_dtype::BF16, "BF16", 2},
    {st_dtype::I64, "I64", 8}, {st_dtype::I32, "I32", 4}, {st_dtype::I16, "I16", 2}, {st_dtype::I8, "I8", 1},
    {st_dtype::U8, "U8", 1},   {st_dtype::BOOL, "BOOL", 1},
};

bool dtype_from_name(const std::string & s, st_dtype & out) {
    for (const dtype_row & r : k_dtypes) {
        if (s == r.name) {
            out = r.t;
            return true;
        }
    }
    return false;
}

// nlohmann's parser is iterative but its recursion-based helpers are not; a
// header like "[[[[...]]]]" must not exhaust the stack, so reject deep nesting
// before parsing.
json parse_json(const std::string & file, const std::string & field, const char * p, size_t n) {
    return json_parse(file, field, p, n);
}

// A non-negative JSON integer, or an input_error naming the field.
uint64_t json_uint(const std::string & file, const std::string & field, const json & v) {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer()) {
        const int64_t x = v.get<int64_t>();
        if (x >= 0) return (uint64_t)x;
        throw input_error(file, field, "negative value " + std::to_string(x));
    }
    throw input_error(file, field, std::string("expected a non-negative integer, found ") + v.type_name());
}

std::string read_text_file(const std::string & path, const std::string & field, uint64_t max_bytes) {
    return read_file(path, field, max_bytes);
}

bool is_dir(const std::string & p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string & p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string join_path(const std::string & dir, const std::string & name) {
    if (dir.empty() || dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

std::vector<float> st_to_f32(const std::string & file, const st_tensor & t) {
    const int64_t n = t.n_elements();
    std::vector<float> out((size_t)n);
    switch (t.dtype) {
        case st_dtype::F32: dequantize_row(ggml_type::F32, t.data, out.data(), n); break;
        case st_dtype::F16: dequantize_row(ggml_type::F16, t.data, out.data(), n); break;
        case st_dtype::BF16: dequantize_row(ggml_type::BF16, t.data, out.data(), n); break;
        case st_dtype::F64:
            for (int64_t i = 0; i < n; i++) {
                double d;
                std::memcpy(&d, t.data + 8 * i, 8); // data may be unaligned
                out[(size_t)i] = (float)d;
            }
            break;
        default:
            throw input_error(file, "tensors[" + t.name + "].dtype",
                              std::string("cannot convert ") + st_dtype_name(t.dtype) + " to float");
    }
    return out;
}

} // namespace

const char * st_dtype_name(st_dtype t) {
    for (const dtype_row & r : k_dtypes) {
        if (r.t == t) return r.name;
    }
    return "?";
}

size_t st_dtype_size(st_dtype t) {
    for (const dtype_row & r : k_dtypes) {
        if (r.t == t) return r.size;
    }
    return 0;
}

int64_t st_tensor::n_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d; // bounded at open(): the product fits
    return n;
}

safetensors_file::safetensors_file(safetensors_file &&) noexcept = default;
safetensors_file & safetensors_file::operator=(safetensors_file &&) noexcept = default;
safetensors_file::~safetensors_file() = default;

const std::string & safetensors_file::path() const {
    static const std::string empty;
    return map_ ? map_->path() : empty;
}

safetensors_file safetensors_file::open(const std::string & path) {
    safetensors_file sf;
    sf.map_.reset(new mapped_file(path));
    const std::string & file = sf.map_->path();
    const uint8_t * base = sf.map_->data();
    const uint64_t fsize = sf.map_->size();

    if (fsize < 8) throw input_error(file, "header_length", "file is " + std::to_string(fsize) + " bytes, shorter than the 8-byte header length");
    uint64_t hlen;
    std::memcpy(&hlen, base, 8); // little-endian on every platform we build for
    if (hlen > fsize - 8) {
        throw input_error(file, "header_length", "header length " + std::to_string(hlen) + " exceeds the " +
                                                     std::to_string(fsize - 8) + " bytes after it");
    }
    if (hlen > k_max_header) throw input_error(file, "header_length", "header length " + std::to_string(hlen) + " is over 100 MB");
    if (hlen < 2 || base[8] != '{') throw input_error(file, "header", "header is not a JSON object (must start with '{')");

    const json h = parse_json(file, "header", reinterpret_cast<const char *>(base + 8), (size_t)hlen);
    if (!h.is_object()) throw input_error(file, "header", "header is not a JSON object");

    const uint8_t * buf = base + 8 + hlen;
    const uint64_t buf_size = fsize - 8 - hlen;

    std::vector<byte_range> spans;
    for (auto it = h.begin(); it != h.end(); ++it) {
        const std::string & name = it.key();
        const json & e = it.value();
        if (name == "__metadata__") {
            if (!e.is_object()) throw input_error(file, "__metadata__", "must be an object of strings");
            for (auto m = e.begin(); m != e.end(); ++m) {
                if (!m->is_string()) {
                    throw input_error(file, "__metadata__[" + m.key() + "]", std::string("must be a string, found ") + m->type_name());
                }
                sf.metadata_[m.key()] = m->get<std::string>();
            }
            continue;
        }
        const std::string field = "tensors[" + name + "]";
        if (!e.is_object()) throw input_error(file, field, "entry must be an object");

        st_tensor t;
        t.name = name;
        auto d = e.find("dtype");
        if (d == e.end() || !d->is_string()) throw input_error(file, field + ".dtype", "missing or not a string");
        if (!dtype_from_name(d->get<std::string>(), t.dtype)) {
            throw input_error(file, field + ".dtype", "unsupported dtype \"" + d->get<std::string>() + "\"");
        }

        auto s = e.find("shape");
        if (s == e.end() || !s->is_array()) throw input_error(file, field + ".shape", "missing or not an array");
        uint64_t n_el = 1;
        for (size_t k = 0; k < s->size(); k++) {
            const std::string fk = field + ".shape[" + std::to_string(k) + "]";
            const uint64_t dim = json_uint(file, fk, (*s)[k]);
            if (__builtin_mul_overflow(n_el, dim, &n_el) || n_el > (uint64_t)INT64_MAX) {
                throw input_error(file, fk, "element count overflows");
            }
            t.shape.push_back((int64_t)dim);
        }

        auto o = e.find("data_offsets");
        if (o == e.end() || !o->is_array() || o->size() != 2) {
            throw input_error(file, field + ".data_offsets", "missing or not a [begin, end] pair");
        }
        const uint64_t begin = json_uint(file, field + ".data_offsets[0]", (*o)[0]);
        const uint64_t end = json_uint(file, field + ".data_offsets[1]", (*o)[1]);
        if (begin > end) {
            throw input_error(file, field + ".data_offsets", "begin " + std::to_string(begin) + " > end " + std::to_string(end));
        }
        if (end > buf_size) {
            throw input_error(file, field + ".data_offsets", "end " + std::to_string(end) + " is past the " +
                                                                 std::to_string(buf_size) + "-byte data buffer");
        }
        uint64_t want = 0;
        if (__builtin_mul_overflow(n_el, (uint64_t)st_dtype_size(t.dtype), &want)) {
            throw input_error(file, field + ".shape", "byte size overflows");
        }
        if (want != end - begin) {
            throw input_error(file, field + ".data_offsets", "holds " + std::to_string(end - begin) + " bytes but " +
                                                                 st_dtype_name(t.dtype) + " shape needs " + std::to_string(want));
        }
        t.data = buf + begin;
        t.nbytes = end - begin;
        spans.push_back({begin, end, t.name, field + ".data_offsets"});
        sf.tensors_.push_back(std::move(t));
    }

    // File order (by offset) is the natural order to list tensors in.
    std::vector<st_tensor> sorted;
    sorted.reserve(spans.size());
    for (size_t k : byte_ranges_disjoint(file, spans)) sorted.push_back(std::move(sf.tensors_[k]));
    sf.tensors_.swap(sorted);
    return sf;
}

const st_tensor * safetensors_file::find(const std::string & name) const {
    for (const st_tensor & t : tensors_) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

std::vector<float> safetensors_file::to_f32(const st_tensor & t) const { return st_to_f32(path(), t); }

void safetensors_write(const std::string & path, const std::vector<st_write_tensor> & tensors,
                       const std::map<std::string, std::string> & metadata, job_progress * cancel) {
    // Header first: entries in the given order, offsets laid end to end.
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json m = nlohmann::ordered_json::object();
        for (const auto & kv : metadata) m[kv.first] = kv.second;
        h["__metadata__"] = m;
    }
    std::set<std::string> names;
    uint64_t off = 0;
    for (const st_write_tensor & t : tensors) {
        const std::string field = "tensors[" + t.name + "]";
        if (t.name == "__metadata__" || !names.insert(t.name).second) {
            throw input_error(path, field + ".name", "duplicate or reserved tensor name");
        }
        uint64_t n = 1;
        for (int64_t d : t.shape) {
            if (d < 0 || __builtin_mul_overflow(n, (uint64_t)d, &n)) throw input_error(path, field + ".shape", "bad dimension");
        }
        uint64_t want;
        if (__builtin_mul_overflow(n, (uint64_t)st_dtype_size(t.dtype), &want) || want != t.nbytes) {
            throw input_error(path, field + ".nbytes", "nbytes " + std::to_string(t.nbytes) + " does not match shape and dtype");
        }
        if (t.nbytes > 0 && !t.data) throw input_error(path, field + ".data", "null data");
        nlohmann::ordered_json e;
        e["dtype"] = st_dtype_name(t.dtype);
        e["shape"] = t.shape;
        e["data_offsets"] = {off, off + t.nbytes};
        h[t.name] = e;
        off += t.nbytes;
    }
    std::string hs;
    try {
        hs = h.dump();
    } catch (const nlohmann::json::exception & e) { // names or metadata that are not UTF-8
        throw input_error(path, "header", std::string("cannot encode header: ") + e.what());
    }
    // Pad with spaces (valid JSON whitespace) so the data starts 8-byte aligned.
    while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');

    atomic_file f(path, cancel);
    const uint64_t hlen = hs.size();
    f.write(&hlen, 8);
    f.write(hs.data(), hs.size());
    for (size_t k = 0; k < tensors.size(); k++) {
        if (tensors[k].nbytes > 0) f.write(tensors[k].data, (size_t)tensors[k].nbytes);
    }
    f.commit();
}

bool hf_checkpoint_is_dir(const std::string & path) {
    return is_dir(path) && is_file(join_path(path, "config.json")) &&
           (is_file(join_path(path, "model.safetensors")) || is_file(join_path(path, "model.safetensors.index.json")));
}

hf_checkpoint hf_checkpoint::open(const std::string & dir) {
    hf_checkpoint c;
    c.dir_ = dir;
    if (!is_dir(dir)) throw input_error(dir, "directory", "not a directory");

    const std::string cfg_path = join_path(dir, "config.json");
    if (!is_file(cfg_path)) throw input_error(cfg_path, "file", "config.json missing");
    c.config_json_ = read_text_file(cfg_path, "file", 64ull << 20);
    const json cfg = parse_json(cfg_path, "config", c.config_json_.data(), c.config_json_.size());
    if (!cfg.is_object()) throw input_error(cfg_path, "config", "not a JSON object");

    const std::string index_path = join_path(dir, "model.safetensors.index.json");
    const std::string single_path = join_path(dir, "model.safetensors");
    if (is_file(index_path)) {
        const std::string text = read_text_file(index_path, "file", 256ull << 20);
        const json idx = parse_json(index_path, "index", text.data(), text.size());
        if (!idx.is_object()) throw input_error(index_path, "index", "not a JSON object");
        auto wm = idx.find("weight_map");
        if (wm == idx.end() || !wm->is_object()) throw input_error(index_path, "weight_map", "missing or not an object");
        // Shards in order of first mention; each opened once.
        std::vector<std::pair<std::string, size_t>> wanted; // tensor -> shard index
        std::map<std::string, size_t> shard_idx;
        for (auto it = wm->begin(); it != wm->end(); ++it) {
            const std::string field = "weight_map[" + it.key() + "]";
            if (!it->is_string()) throw input_error(index_path, field, "shard name must be a string");
            const std::string shard = it->get<std::string>();
            // Shards live next to the index; no paths that walk elsewhere.
            if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
                throw input_error(index_path, field, "bad shard file name \"" + shard + "\"");
            }
            auto s = shard_idx.find(shard);
            if (s == shard_idx.end()) {
                s = shard_idx.emplace(shard, c.shard_paths_.size()).first;
                c.shard_paths_.push_back(join_path(dir, shard));
            }
            wanted.emplace_back(it.key(), s->second);
        }
        if (c.shard_paths_.empty()) throw input_error(index_path, "weight_map", "empty");
        for (const std::string & p : c.shard_paths_) c.shards_.push_back(safetensors_file::open(p));
        for (const auto & w : wanted) {
            if (!c.shards_[w.second].find(w.first)) {
                throw input_error(index_path, "weight_map[" + w.first + "]",
                                  "tensor not found in shard " + c.shard_paths_[w.second]);
            }
        }
    } else if (is_file(single_path)) {
        c.shard_paths_.push_back(single_path);
        c.shards_.push_back(safetensors_file::open(single_path));
    } else {
        throw input_error(dir, "model.safetensors", "neither model.safetensors nor model.safetensors.index.json found");
    }
    return c;
}

std::vector<std::string> hf_checkpoint::tensor_names() const {
    std::set<std::string> names;
    for (const safetensors_file & s : shards_) {
        for (const st_tensor & t : s.tensors()) names.insert(t.name);
    }
    return std::vector<std::string>(names.begin(), names.end());
}

const st_tensor * hf_checkpoint::find(const std::string & name) const {
    for (const safetensors_file & s : shards_) {
        if (const st_tensor * t = s.find(name)) return t;
    }
    return nullptr;
}

std::vector<float> hf_checkpoint::to_f32(const st_tensor & t) const {
    // Name the shard that holds the tensor in any error.
    for (const safetensors_file & s : shards_) {
        const std::vector<st_tensor> & ts = s.tensors();
        std::less<const st_tensor *> lt;
        if (!ts.empty() && !lt(&t, &ts.front()) && !lt(&ts.back(), &t)) return s.to_f32(t);
    }
    return st_to_f32(dir_, t);
}

} // namespace attnlab
