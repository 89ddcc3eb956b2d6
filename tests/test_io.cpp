// core/io: GGUF and safetensors readers, dequantisation, bad-input handling.
// References come from Python (tools/gen_io_golden.py: gguf.quants,
// GGUFWriter, the safetensors package), never from this code.
#include "base/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"

#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_bytes(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string & path, const uint8_t * p, size_t n) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(p), (std::streamsize)n);
}

void write_bytes(const std::string & path, const std::vector<uint8_t> & b) { write_bytes(path, b.data(), b.size()); }

void write_text(const std::string & path, const std::string & s) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << s;
}

// A fresh directory per test case, removed at the end.
struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/attnlab_io_XXXXXX";
        const char * p = mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path = p;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string & name) const { return path + "/" + name; }
};

// Runs f, which must throw exactly an input_error naming file (and, when
// given, a field containing field_part). Returns the error text.
std::string expect_input_error(const std::function<void()> & f, const std::string & file,
                               const std::string & field_part = "") {
    try {
        f();
    } catch (const input_error & e) {
        CHECK(e.file() == file);
        CHECK(std::string(e.what()).find(file) != std::string::npos);
        if (!field_part.empty()) {
            INFO("error: " << e.what());
            CHECK(e.field().find(field_part) != std::string::npos);
        }
        return e.what();
    }
    FAIL("expected input_error for " << file << " (field " << field_part << ")");
    return "";
}

// Opens a GGUF and touches everything a consumer would, dequantising each
// decodable tensor; returns normally or throws input_error.
void exercise_gguf(const std::string & path) {
    gguf_file g = gguf_file::open(path);
    for (const auto & kv : g.metadata()) (void)kv.second.is_integer();
    for (const gguf_tensor & t : g.tensors()) {
        const ggml_type_info * info = ggml_type_info_get((uint32_t)t.type);
        if (info && info->dequantizable && t.n_elements() < (1 << 22)) {
            std::vector<float> v = g.tensor_to_f32(t);
            REQUIRE((int64_t)v.size() == t.n_elements());
        }
    }
}

void exercise_safetensors(const std::string & path) {
    safetensors_file s = safetensors_file::open(path);
    for (const st_tensor & t : s.tensors()) {
        if (t.dtype == st_dtype::F32 || t.dtype == st_dtype::F16 || t.dtype == st_dtype::BF16 || t.dtype == st_dtype::F64) {
            std::vector<float> v = s.to_f32(t);
            REQUIRE((int64_t)v.size() == t.n_elements());
        }
    }
}

// Little builder for hand-made GGUF files.
struct gguf_builder {
    std::vector<uint8_t> b;
    void raw(const void * p, size_t n) {
        const uint8_t * c = static_cast<const uint8_t *>(p);
        b.insert(b.end(), c, c + n);
    }
    void u32(uint32_t v) { raw(&v, 4); }
    void u64(uint64_t v) { raw(&v, 8); }
    void str(const std::string & s) {
        u64(s.size());
        raw(s.data(), s.size());
    }
    void header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        raw("GGUF", 4);
        u32(version);
        u64(n_tensors);
        u64(n_kv);
    }
    void kv_u32(const std::string & k, uint32_t v) {
        str(k);
        u32((uint32_t)gguf_value_type::UINT32);
        u32(v);
    }
    void tensor_info(const std::string & name, const std::vector<uint64_t> & ne, uint32_t type, uint64_t offset) {
        str(name);
        u32((uint32_t)ne.size());
        for (uint64_t d : ne) u64(d);
        u32(type);
        u64(offset);
    }
    void pad(size_t align) {
        while (b.size() % align) b.push_back(0);
    }
};

bool close_f32(float a, float b) {
    if (a == b) return true;
    return std::fabs(a - b) <= 1e-6f * std::max(1.0f, std::fabs(b));
}

std::string data(const std::string & name) { return attnlab_test::data_dir() + "/" + name; }

} // namespace

// ---------------------------------------------------------------------------
// dequantisation

TEST_CASE("ggml type table", "[io]") {
    const ggml_type_info * q41 = ggml_type_info_get((uint32_t)ggml_type::Q4_1);
    REQUIRE(q41);
    CHECK(std::string(q41->name) == "Q4_1");
    CHECK(q41->block_elems == 32);
    CHECK(q41->block_bytes == 20);
    CHECK(ggml_type_info_get((uint32_t)ggml_type::Q6_K)->block_bytes == 210);
    CHECK(ggml_type_info_get((uint32_t)ggml_type::Q3_K)->block_bytes == 110);
    CHECK(ggml_type_info_get((uint32_t)ggml_type::BF16)->dequantizable);
    CHECK_FALSE(ggml_type_info_get((uint32_t)ggml_type::Q8_K)->dequantizable);
    CHECK(ggml_type_info_get(4) == nullptr); // removed Q4_2
    CHECK(ggml_type_info_get(5) == nullptr);
    CHECK(ggml_type_info_get(1000) == nullptr);
    float out[32];
    uint8_t blk[36] = {};
    CHECK_THROWS_AS(dequantize_row(ggml_type::Q8_K, blk, out, 32), std::invalid_argument);
    CHECK_THROWS_AS(dequantize_row(ggml_type::Q8_0, blk, out, 31), std::invalid_argument);
}

TEST_CASE("dequantize_row matches gguf.quants for every type", "[io]") {
    const std::vector<uint8_t> g = read_bytes(data("io_quant_golden.bin"));
    REQUIRE(g.size() > 12);
    REQUIRE(std::memcmp(g.data(), "IOQG", 4) == 0);
    uint32_t n_rec;
    std::memcpy(&n_rec, g.data() + 8, 4);
    size_t pos = 12;
    std::map<std::string, int> rows_per_type;
    for (uint32_t r = 0; r < n_rec; r++) {
        uint32_t hdr[3];
        REQUIRE(pos + 12 <= g.size());
        std::memcpy(hdr, g.data() + pos, 12);
        pos += 12;
        const uint32_t type = hdr[0], n = hdr[1], nbytes = hdr[2];
        REQUIRE(pos + nbytes + 4ull * n <= g.size());
        const ggml_type_info * info = ggml_type_info_get(type);
        REQUIRE(info);
        REQUIRE(info->dequantizable);
        CHECK((uint64_t)n / info->block_elems * info->block_bytes == nbytes);
        std::vector<float> ref(n), got(n);
        std::memcpy(ref.data(), g.data() + pos + nbytes, 4ull * n);
        dequantize_row((ggml_type)type, g.data() + pos, got.data(), n);
        pos += nbytes + 4ull * n;
        int bad = 0;
        for (uint32_t k = 0; k < n; k++) {
            if (!close_f32(got[k], ref[k])) {
                if (bad++ < 5) UNSCOPED_INFO(info->name << "[" << k << "]: got " << got[k] << " want " << ref[k]);
            }
        }
        INFO("type " << info->name << " row " << r);
        CHECK(bad == 0);
        rows_per_type[info->name]++;
    }
    CHECK(pos == g.size());
    for (const char * t : {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
                           "Q5_K", "Q6_K"}) {
        INFO(t);
        CHECK(rows_per_type[t] >= 2);
    }
}

// ---------------------------------------------------------------------------
// GGUF: files written by GGUFWriter

static void check_tiny_gguf(const std::string & path, uint32_t version, uint64_t alignment) {
    gguf_file g = gguf_file::open(path);
    CHECK(g.path() == path);
    CHECK(g.version() == version);
    CHECK(g.alignment() == alignment);
    CHECK(g.file_size() == read_bytes(path).size());

    CHECK(g.get_str("general.architecture") == "llama");
    CHECK(g.find("test.u8")->type == gguf_value_type::UINT8);
    CHECK(g.get_u64("test.u8") == 200);
    CHECK(g.find("test.i8")->type == gguf_value_type::INT8);
    CHECK(g.get_i64("test.i8") == -100);
    CHECK(g.find("test.u16")->type == gguf_value_type::UINT16);
    CHECK(g.get_u64("test.u16") == 60000);
    CHECK(g.find("test.i16")->type == gguf_value_type::INT16);
    CHECK(g.get_i64("test.i16") == -30000);
    CHECK(g.find("test.u32")->type == gguf_value_type::UINT32);
    CHECK(g.get_u64("test.u32") == 4000000000ull);
    CHECK(g.get_i64("test.u32") == 4000000000ll);
    CHECK(g.find("test.i32")->type == gguf_value_type::INT32);
    CHECK(g.get_i64("test.i32") == -2000000000ll);
    CHECK(g.find("test.f32")->type == gguf_value_type::FLOAT32);
    CHECK(g.get_f64("test.f32") == 1.5);
    CHECK(g.find("test.u64")->type == gguf_value_type::UINT64);
    CHECK(g.get_u64("test.u64") == (1ull << 63) + 5);
    CHECK(g.find("test.i64")->type == gguf_value_type::INT64);
    CHECK(g.get_i64("test.i64") == -(1ll << 62));
    CHECK(g.find("test.f64")->type == gguf_value_type::FLOAT64);
    CHECK(g.get_f64("test.f64") == 3.141592653589793);
    CHECK(g.find("test.bool")->type == gguf_value_type::BOOL);
    CHECK(g.get_bool("test.bool"));
    CHECK(g.get_str("test.str") == "h\xc3\xa9llo w\xc3\xb6rld");

    CHECK(g.get_int_array("test.arr_i32") == std::vector<int64_t>{1, -2, 3});
    CHECK(g.find("test.arr_i32")->elem_type == gguf_value_type::INT32);
    CHECK(g.get_int_array("test.arr_u8") == std::vector<int64_t>{7, 8, 9, 255});
    CHECK(g.find("test.arr_u8")->elem_type == gguf_value_type::UINT8);
    CHECK(g.get_int_array("test.arr_i64") == std::vector<int64_t>{-5, 1ll << 40});
    CHECK(g.get_float_array("test.arr_f32") == std::vector<double>{0.5, 0.25, -8.0});
    CHECK(g.get_float_array("test.arr_f64") == std::vector<double>{1e300, -2.5});
    const gguf_value * ab = g.find("test.arr_bool");
    REQUIRE(ab);
    CHECK(ab->elem_type == gguf_value_type::BOOL);
    REQUIRE(ab->items.size() == 3);
    CHECK(ab->items[0].u == 1);
    CHECK(ab->items[1].u == 0);
    CHECK(ab->items[2].u == 1);
    CHECK(g.get_str_array("test.arr_str") == std::vector<std::string>{"a", "bc", "", "d\xc3\xa9" "f"});

    const gguf_value * nested = g.find("test.arr_nested");
    REQUIRE(nested);
    CHECK(nested->type == gguf_value_type::ARRAY);
    CHECK(nested->elem_type == gguf_value_type::ARRAY);
    REQUIRE(nested->items.size() == 3);
    CHECK(nested->items[0].elem_type == gguf_value_type::INT32);
    REQUIRE(nested->items[2].items.size() == 3);
    CHECK(nested->items[0].items[1].i == 2);
    CHECK(nested->items[1].items[0].i == 3);
    CHECK(nested->items[2].items[2].i == 6);
    const gguf_value * nstr = g.find("test.arr_nested_str");
    REQUIRE(nstr);
    REQUIRE(nstr->items.size() == 2);
    CHECK(nstr->items[1].elem_type == gguf_value_type::STRING);
    REQUIRE(nstr->items[1].items.size() == 2);
    CHECK(nstr->items[1].items[1].str == "zz");

    // typed getters: wrong type and missing keys are input_errors naming the key
    expect_input_error([&] { g.get_str("test.u8"); }, path, "metadata[test.u8]");
    expect_input_error([&] { g.get_u64("test.i8"); }, path, "metadata[test.i8]"); // negative
    expect_input_error([&] { g.get_i64("test.u64"); }, path, "metadata[test.u64]"); // too big
    expect_input_error([&] { g.get_bool("test.str"); }, path, "metadata[test.str]");
    expect_input_error([&] { g.get_u64("no.such.key"); }, path, "metadata[no.such.key]");
    expect_input_error([&] { g.get_str_array("test.arr_i32"); }, path, "metadata[test.arr_i32]");
    CHECK(g.get_u64_or("no.such.key", 7) == 7);
    CHECK(g.get_f64_or("no.such.key", 2.5) == 2.5);
    CHECK(g.get_bool_or("no.such.key", true));
    CHECK(g.get_str_or("no.such.key", "x") == "x");
    CHECK(g.get_u64_or("test.u16", 7) == 60000);

    // tensors
    REQUIRE(g.tensors().size() == 6);
    const gguf_tensor * f32 = g.find_tensor("w.f32");
    REQUIRE(f32);
    CHECK(f32->type == ggml_type::F32);
    CHECK(f32->ne == std::vector<int64_t>{3, 2});
    CHECK(f32->n_rows() == 2);
    CHECK(g.tensor_to_f32(*f32) == std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f});
    const gguf_tensor * f16 = g.find_tensor("w.f16");
    REQUIRE(f16);
    CHECK(f16->type == ggml_type::F16);
    CHECK(g.tensor_to_f32(*f16) == std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f});
    for (const char * name : {"w.q8_0", "w.q4_1"}) {
        INFO(name);
        const gguf_tensor * q = g.find_tensor(name);
        const gguf_tensor * ref = g.find_tensor(std::string(name) + ".ref");
        REQUIRE(q);
        REQUIRE(ref);
        CHECK(q->ne == std::vector<int64_t>{64, 2});
        CHECK(q->type == (std::string(name) == "w.q8_0" ? ggml_type::Q8_0 : ggml_type::Q4_1));
        const std::vector<float> got = g.tensor_to_f32(*q);
        const std::vector<float> want = g.tensor_to_f32(*ref);
        REQUIRE(got.size() == want.size());
        for (size_t k = 0; k < got.size(); k++) CHECK(close_f32(got[k], want[k]));
    }
    for (const gguf_tensor & t : g.tensors()) {
        CHECK(t.offset % alignment == 0);
        CHECK((uint64_t)(t.data - f32->data + f32->offset) == t.offset);
    }
    CHECK(g.find_tensor("nope") == nullptr);
    CHECK(gguf_is_gguf(path));
}

TEST_CASE("GGUF v3 from GGUFWriter: every metadata type and tensors", "[io]") {
    check_tiny_gguf(data("io_tiny_v3.gguf"), 3, 32);
}

TEST_CASE("GGUF v2 with general.alignment 64", "[io]") {
    check_tiny_gguf(data("io_tiny_v2.gguf"), 2, 64);
}

TEST_CASE("GGUF default model: counts, types and dequantised values", "[io]") {
    const std::string path = attnlab_test::default_model_path();
    if (!attnlab_test::need_asset(path)) return;
    gguf_file g = gguf_file::open(path);
    CHECK(g.version() == 3);
    CHECK(g.tensors().size() == 272);
    CHECK(g.get_u64("llama.block_count") == 30);
    CHECK(g.get_str("general.architecture") == "llama");
    CHECK(g.get_str_array("tokenizer.ggml.tokens").size() == 49152);
    std::map<std::string, int> counts;
    for (const gguf_tensor & t : g.tensors()) counts[ggml_type_info_get((uint32_t)t.type)->name]++;
    CHECK(counts.size() == 3);
    CHECK(counts["Q4_1"] == 210);
    CHECK(counts["F32"] == 61);
    CHECK(counts["Q8_0"] == 1);
    const gguf_tensor * emb = g.find_tensor("token_embd.weight");
    REQUIRE(emb);
    CHECK(emb->type == ggml_type::Q8_0);
    CHECK(emb->ne == std::vector<int64_t>{576, 49152});

    // slices dequantised by gguf.quants.dequantize from the same file
    const std::vector<uint8_t> gold = read_bytes(data("io_model_golden.bin"));
    REQUIRE(gold.size() > 8);
    REQUIRE(std::memcmp(gold.data(), "IOMG", 4) == 0);
    uint32_t n_rec;
    std::memcpy(&n_rec, gold.data() + 4, 4);
    CHECK(n_rec == 3);
    size_t pos = 8;
    for (uint32_t r = 0; r < n_rec; r++) {
        uint32_t len, first, n;
        std::memcpy(&len, gold.data() + pos, 4);
        const std::string name(reinterpret_cast<const char *>(gold.data() + pos + 4), len);
        pos += 4 + len;
        std::memcpy(&first, gold.data() + pos, 4);
        std::memcpy(&n, gold.data() + pos + 4, 4);
        pos += 8;
        std::vector<float> want(n);
        std::memcpy(want.data(), gold.data() + pos, 4ull * n);
        pos += 4ull * n;
        INFO(name);
        const gguf_tensor * t = g.find_tensor(name);
        REQUIRE(t);
        // Decode just the rows holding the slice.
        const ggml_type_info * info = ggml_type_info_get((uint32_t)t->type);
        const int64_t row = t->ne[0];
        const int64_t r0 = first / row, r1 = (first + n + row - 1) / row;
        const uint64_t row_bytes = (uint64_t)(row / info->block_elems) * info->block_bytes;
        std::vector<float> got((size_t)((r1 - r0) * row));
        for (int64_t rr = r0; rr < r1; rr++) {
            dequantize_row(t->type, t->data + rr * row_bytes, got.data() + (rr - r0) * row, row);
        }
        int bad = 0;
        for (uint32_t k = 0; k < n; k++) bad += !close_f32(got[first - r0 * row + k], want[k]);
        CHECK(bad == 0);
    }
    // The whole-tensor path agrees with the row path.
    const gguf_tensor * q = g.find_tensor("blk.0.attn_q.weight");
    REQUIRE(q);
    CHECK(q->type == ggml_type::Q4_1);
    const std::vector<float> all = g.tensor_to_f32(*q);
    CHECK((int64_t)all.size() == q->n_elements());
}

TEST_CASE("GGUF default model: truncated header copies", "[io]") {
    const std::string path = attnlab_test::default_model_path();
    if (!attnlab_test::need_asset(path)) return;
    // Bytes before the first tensor's data: header, metadata (tokenizer) and infos.
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> head(4u << 20);
    in.read(reinterpret_cast<char *>(head.data()), (std::streamsize)head.size());
    head.resize((size_t)in.gcount());
    temp_dir dir;
    const std::string cut_path = dir / "cut.gguf";
    // Every ~1/48 of the first 4 MB: cuts inside the token strings, the merges
    // and the tensor infos. All must fail cleanly (the data is missing).
    for (size_t k = 1; k <= 48; k++) {
        const size_t cut = head.size() * k / 49 + (k * 7919) % 13;
        write_bytes(cut_path, head.data(), cut);
        INFO("cut at " << cut);
        expect_input_error([&] { gguf_file::open(cut_path); }, cut_path);
    }
}

// ---------------------------------------------------------------------------
// GGUF: bad input

TEST_CASE("GGUF truncated at every byte", "[io]") {
    const std::vector<uint8_t> full = read_bytes(data("io_tiny_v3.gguf"));
    REQUIRE(full.size() > 1000);
    temp_dir dir;
    const std::string p = dir / "t.gguf";
    int errors = 0, parsed = 0;
    for (size_t cut = 0; cut < full.size(); cut++) {
        write_bytes(p, full.data(), cut);
        try {
            exercise_gguf(p);
            parsed++;
        } catch (const input_error & e) {
            CHECK(e.file() == p);
            errors++;
        }
    }
    // The last tensor ends the file (no trailing padding), so every cut loses something.
    CHECK(parsed == 0);
    CHECK(errors == (int)full.size());
}

TEST_CASE("GGUF flipped bytes parse or fail cleanly", "[io]") {
    const std::vector<uint8_t> full = read_bytes(data("io_tiny_v3.gguf"));
    temp_dir dir;
    const std::string p = dir / "f.gguf";
    int errors = 0;
    for (size_t pos = 0; pos < full.size(); pos++) {
        for (uint8_t mask : {(uint8_t)0x01, (uint8_t)0x80, (uint8_t)0xff}) {
            std::vector<uint8_t> b = full;
            b[pos] ^= mask;
            write_bytes(p, b);
            try {
                exercise_gguf(p);
            } catch (const input_error & e) {
                if (e.file() != p) FAIL("error names " << e.file());
                errors++;
            }
        }
    }
    CHECK(errors > 100);
}

// Writes gb to p and expects gguf_file::open to refuse it naming p and field.
static std::string gguf_refused(const std::string & p, const gguf_builder & gb, const std::string & field) {
    write_bytes(p, gb.b);
    INFO("field " << field);
    return expect_input_error([&] { gguf_file::open(p); }, p, field);
}

TEST_CASE("GGUF absurd counts and bad fields give one input_error", "[io]") {
    temp_dir dir;
    const std::string p = dir / "bad.gguf";
    auto check = [&](const gguf_builder & gb, const std::string & field) { return gguf_refused(p, gb, field); };

    {   // empty file
        gguf_builder gb;
        check(gb, "magic");
    }
    {
        gguf_builder gb;
        gb.raw("GGML", 4);
        gb.u32(3);
        check(gb, "magic");
    }
    {
        gguf_builder gb;
        gb.header(1, 0, 0);
        check(gb, "version");
    }
    {
        gguf_builder gb;
        gb.header(4, 0, 0);
        check(gb, "version");
    }
    {   // big-endian v3: version bytes swapped
        gguf_builder gb;
        gb.header(0x03000000u, 0, 0);
        const std::string msg = check(gb, "version");
        CHECK(msg.find("big-endian") != std::string::npos);
    }
    {
        gguf_builder gb;
        gb.header(3, 1ull << 40, 0);
        check(gb, "n_tensors");
    }
    {
        gguf_builder gb;
        gb.header(3, 0, 1ull << 40);
        check(gb, "n_kv");
    }
    {   // string length 2^60 in a metadata value
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.str("tokenizer.ggml.model");
        gb.u32((uint32_t)gguf_value_type::STRING);
        gb.u64(1ull << 60);
        gb.raw("gpt2", 4);
        check(gb, "metadata[tokenizer.ggml.model].length");
    }
    {   // key length 2^60
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.u64(1ull << 60);
        gb.raw("abcdefghijklmnop", 16);
        check(gb, "metadata[0].key.length");
    }
    {   // a string inside an array with an absurd length
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.str("tokenizer.ggml.tokens");
        gb.u32((uint32_t)gguf_value_type::ARRAY);
        gb.u32((uint32_t)gguf_value_type::STRING);
        gb.u64(2);
        gb.str("a");
        gb.u64(1ull << 60);
        gb.raw("bbbbbbbb", 8);
        check(gb, "metadata[tokenizer.ggml.tokens][1].length");
    }
    {   // array count 2^50
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.str("tokenizer.ggml.scores");
        gb.u32((uint32_t)gguf_value_type::ARRAY);
        gb.u32((uint32_t)gguf_value_type::FLOAT32);
        gb.u64(1ull << 50);
        gb.u32(0);
        check(gb, "metadata[tokenizer.ggml.scores].count");
    }
    {   // unknown value type
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.str("k");
        gb.u32(13);
        gb.u32(0);
        check(gb, "metadata[k].type");
    }
    {   // unknown array element type
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.str("k");
        gb.u32((uint32_t)gguf_value_type::ARRAY);
        gb.u32(77);
        gb.u64(1);
        gb.u32(0);
        check(gb, "metadata[k].elem_type");
    }
    {   // arrays nested 100 deep
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.str("deep");
        gb.u32((uint32_t)gguf_value_type::ARRAY);
        for (int d = 0; d < 100; d++) {
            gb.u32((uint32_t)gguf_value_type::ARRAY);
            gb.u64(1);
        }
        check(gb, "metadata[deep]");
    }
    {   // bool other than 0/1
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.str("b");
        gb.u32((uint32_t)gguf_value_type::BOOL);
        gb.b.push_back(7);
        check(gb, "metadata[b]");
    }
    {   // duplicate key
        gguf_builder gb;
        gb.header(3, 0, 2);
        gb.kv_u32("a", 1);
        gb.kv_u32("a", 2);
        check(gb, "metadata[a]");
    }
    {   // alignment not a power of two
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.kv_u32("general.alignment", 48);
        check(gb, "metadata[general.alignment]");
    }
    {   // alignment of the wrong type
        gguf_builder gb;
        gb.header(3, 0, 1);
        gb.str("general.alignment");
        gb.u32((uint32_t)gguf_value_type::STRING);
        gb.str("32");
        check(gb, "metadata[general.alignment]");
    }
}

TEST_CASE("GGUF bad tensor infos give one input_error", "[io]") {
    temp_dir dir;
    const std::string p = dir / "bad.gguf";
    auto check = [&](const gguf_builder & gb, const std::string & field) { return gguf_refused(p, gb, field); };
    auto one_tensor = [](const std::vector<uint64_t> & ne, uint32_t type, uint64_t offset, size_t data_bytes) {
        gguf_builder gb;
        gb.header(3, 1, 0);
        gb.tensor_info("blk.0.w", ne, type, offset);
        gb.pad(32);
        gb.b.resize(gb.b.size() + data_bytes, 0);
        return gb;
    };
    {   // sanity: the well-formed version opens
        gguf_builder gb = one_tensor({32, 2}, (uint32_t)ggml_type::Q8_0, 0, 68);
        write_bytes(p, gb.b);
        gguf_file g = gguf_file::open(p);
        REQUIRE(g.tensors().size() == 1);
        CHECK(g.tensors()[0].nbytes == 68);
        CHECK(g.tensor_to_f32(g.tensors()[0]) == std::vector<float>(64, 0.0f));
    }
    check(one_tensor({32, 2}, (uint32_t)ggml_type::Q8_0, 0, 67), "tensor_infos[0].offset");  // data past end
    check(one_tensor({32, 2}, (uint32_t)ggml_type::Q8_0, 64, 68), "tensor_infos[0].offset"); // offset past end
    check(one_tensor({32, 2}, (uint32_t)ggml_type::Q8_0, 3, 200), "tensor_infos[0].offset"); // misaligned
    check(one_tensor({32, 2}, (uint32_t)ggml_type::Q8_0, UINT64_MAX - 31, 68), "tensor_infos[0].offset");
    check(one_tensor({32, 2}, 99, 0, 68), "tensor_infos[0].type");
    check(one_tensor({32, 2}, 4, 0, 68), "tensor_infos[0].type");
    check(one_tensor({33, 2}, (uint32_t)ggml_type::Q8_0, 0, 68), "tensor_infos[0].ne[0]");
    check(one_tensor({1ull << 40, 1ull << 40}, (uint32_t)ggml_type::F32, 0, 0), "tensor_infos[0].ne[1]");
    check(one_tensor({1ull << 63, 1}, (uint32_t)ggml_type::F32, 0, 0), "tensor_infos[0].ne[0]");
    check(one_tensor({1ull << 62, 1}, (uint32_t)ggml_type::F32, 0, 0), "tensor_infos[0].size");
    check(one_tensor({1ull << 40}, (uint32_t)ggml_type::F32, 0, 64), "tensor_infos[0].offset");
    {
        gguf_builder gb;
        gb.header(3, 1, 0);
        gb.str("t");
        gb.u32(1000); // n_dims
        for (int k = 0; k < 8; k++) gb.u64(1);
        check(gb, "tensor_infos[0].n_dims");
    }
    {   // duplicate tensor name
        gguf_builder gb;
        gb.header(3, 2, 0);
        gb.tensor_info("t", {4}, 0, 0);
        gb.tensor_info("t", {4}, 0, 32);
        gb.pad(32);
        gb.b.resize(gb.b.size() + 64, 0);
        check(gb, "tensor_infos[1].name");
    }
    {   // tensor name length 2^60
        gguf_builder gb;
        gb.header(3, 1, 0);
        gb.u64(1ull << 60);
        gb.b.resize(gb.b.size() + 64, 'x');
        check(gb, "tensor_infos[0].name.length");
    }
    {   // a type that is known but not decodable opens; tensor_to_f32 names the tensor
        gguf_builder gb = one_tensor({256}, (uint32_t)ggml_type::Q8_K, 0, 292);
        write_bytes(p, gb.b);
        gguf_file g = gguf_file::open(p);
        expect_input_error([&] { g.tensor_to_f32(g.tensors()[0]); }, p, "blk.0.w");
    }
    CHECK_FALSE(gguf_is_gguf(dir / "does-not-exist"));
    expect_input_error([&] { gguf_file::open(dir / "does-not-exist"); }, dir / "does-not-exist", "file");
}

// ---------------------------------------------------------------------------
// safetensors

TEST_CASE("safetensors written by the Python package", "[io]") {
    const std::string path = data("io_golden.safetensors");
    safetensors_file s = safetensors_file::open(path);
    CHECK(s.path() == path);
    CHECK(s.metadata().at("format") == "pt");
    CHECK(s.metadata().at("note") == "golden");
    CHECK(s.tensors().size() == 7);
    const std::vector<float> vals = {0.5f, -1.0f, 2.25f, 3.0f, -0.125f, 1024.0f};
    struct want_t {
        const char * name;
        st_dtype dtype;
        std::vector<int64_t> shape;
    };
    for (const want_t & w : {want_t{"a.f64", st_dtype::F64, {2, 3}}, want_t{"b.f32", st_dtype::F32, {3, 2}},
                             want_t{"c.f16", st_dtype::F16, {6}}, want_t{"d.bf16", st_dtype::BF16, {1, 2, 3}}}) {
        INFO(w.name);
        const st_tensor * t = s.find(w.name);
        REQUIRE(t);
        CHECK(t->dtype == w.dtype);
        CHECK(t->shape == w.shape);
        CHECK(t->n_elements() == 6);
        CHECK(t->nbytes == 6 * st_dtype_size(w.dtype));
        CHECK(s.to_f32(*t) == vals);
    }
    const st_tensor * i64 = s.find("e.i64");
    REQUIRE(i64);
    CHECK(i64->dtype == st_dtype::I64);
    int64_t iv[3];
    std::memcpy(iv, i64->data, 24);
    CHECK(iv[0] == 1);
    CHECK(iv[1] == -2);
    CHECK(iv[2] == 3);
    expect_input_error([&] { s.to_f32(*i64); }, path, "tensors[e.i64]");
    const st_tensor * u8 = s.find("f.u8");
    REQUIRE(u8);
    CHECK(u8->shape == std::vector<int64_t>{2, 2});
    CHECK(u8->data[3] == 4);
    const st_tensor * sc = s.find("g.scalar");
    REQUIRE(sc);
    CHECK(sc->shape.empty());
    CHECK(s.to_f32(*sc) == std::vector<float>{7.0f});
    CHECK(s.find("nope") == nullptr);
}

TEST_CASE("safetensors writer round trip", "[io]") {
    temp_dir dir;
    const std::string p = dir / "rt.safetensors";
    std::vector<double> f64 = {1.0, -2.0, 1e-3};
    std::vector<float> f32 = {0.25f, 8.0f, -3.5f, 1e10f};
    std::vector<uint16_t> f16 = {0x3c00, 0xc000};  // 1, -2
    std::vector<uint16_t> bf16 = {0x3f80, 0x4040}; // 1, 3
    std::vector<int32_t> i32 = {5, -6};
    std::vector<uint8_t> b = {1, 0, 1};
    std::vector<st_write_tensor> ts = {
        {"x.f32", st_dtype::F32, {2, 2}, f32.data(), 16},
        {"x.f64", st_dtype::F64, {3}, f64.data(), 24},
        {"x.f16", st_dtype::F16, {1, 2}, f16.data(), 4},
        {"x.bf16", st_dtype::BF16, {2}, bf16.data(), 4},
        {"x.i32", st_dtype::I32, {2}, i32.data(), 8},
        {"x.bool", st_dtype::BOOL, {3}, b.data(), 3},
        {"x.empty", st_dtype::F32, {0, 4}, nullptr, 0},
    };
    safetensors_write(p, ts, {{"format", "pt"}, {"who", "attnlab"}});
    CHECK_FALSE(attnlab_test::file_exists(p + ".tmp"));
    const std::vector<uint8_t> raw = read_bytes(p);
    uint64_t hlen;
    std::memcpy(&hlen, raw.data(), 8);
    CHECK((8 + hlen) % 8 == 0); // data 8-byte aligned

    safetensors_file s = safetensors_file::open(p);
    CHECK(s.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"who", "attnlab"}});
    REQUIRE(s.tensors().size() == 7);
    CHECK(s.tensors()[0].name == "x.f32"); // listed in file order
    CHECK(s.to_f32(*s.find("x.f32")) == f32);
    CHECK(s.to_f32(*s.find("x.f64")) == std::vector<float>{1.0f, -2.0f, 1e-3f});
    CHECK(s.to_f32(*s.find("x.f16")) == std::vector<float>{1.0f, -2.0f});
    CHECK(s.to_f32(*s.find("x.bf16")) == std::vector<float>{1.0f, 3.0f});
    CHECK(s.find("x.i32")->dtype == st_dtype::I32);
    CHECK(std::memcmp(s.find("x.i32")->data, i32.data(), 8) == 0);
    CHECK(s.find("x.bool")->nbytes == 3);
    CHECK(s.find("x.empty")->n_elements() == 0);
    CHECK(s.to_f32(*s.find("x.empty")).empty());

    // overwrite in place: the reader above still holds the old mapping
    safetensors_write(p, {{"y", st_dtype::F32, {1}, f32.data(), 4}}, {});
    safetensors_file s2 = safetensors_file::open(p);
    CHECK(s2.tensors().size() == 1);
    CHECK(s2.metadata().empty());
    CHECK(s.to_f32(*s.find("x.f32")) == f32);

    // writer input errors
    expect_input_error([&] { safetensors_write(p, {{"z", st_dtype::F32, {3}, f32.data(), 8}}, {}); }, p,
                       "tensors[z].nbytes");
    expect_input_error(
        [&] { safetensors_write(p, {{"z", st_dtype::F32, {1}, f32.data(), 4}, {"z", st_dtype::F32, {1}, f32.data(), 4}}, {}); },
        p, "tensors[z]");
    expect_input_error([&] { safetensors_write(p, {{"bad\xff", st_dtype::F32, {1}, f32.data(), 4}}, {}); }, p, "header");
    expect_input_error([&] { safetensors_write(dir / "no/such/dir/x.safetensors", {}, {}); },
                       dir / "no/such/dir/x.safetensors", "file");
}

TEST_CASE("safetensors bad headers give one input_error", "[io]") {
    temp_dir dir;
    const std::string p = dir / "bad.safetensors";
    auto make = [](const std::string & header, size_t data_bytes, int64_t hlen_override = -1) {
        std::vector<uint8_t> b(8);
        uint64_t n = hlen_override >= 0 ? (uint64_t)hlen_override : header.size();
        std::memcpy(b.data(), &n, 8);
        b.insert(b.end(), header.begin(), header.end());
        b.resize(b.size() + data_bytes, 0);
        return b;
    };
    auto check = [&](const std::vector<uint8_t> & b, const std::string & field) {
        write_bytes(p, b);
        INFO("field " << field);
        return expect_input_error([&] { safetensors_file::open(p); }, p, field);
    };
    const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    {
        write_bytes(p, make(ok, 8));
        CHECK(safetensors_file::open(p).tensors().size() == 1);
    }
    check({1, 2, 3}, "header_length");
    check(make(ok, 8, (int64_t)ok.size() + 9), "header_length"); // header length > file
    {
        std::vector<uint8_t> b = make(ok, 8);
        const uint64_t huge = 1ull << 60;
        std::memcpy(b.data(), &huge, 8);
        check(b, "header_length");
    }
    check(make("{\"a\":{\"dtype\":", 8), "header");                  // bad JSON
    check(make("[1,2]", 8), "header");                               // not an object
    check(make("{}garbage", 0), "header");
    check(make(std::string(200, '[') + std::string(200, ']'), 0), "header");
    check(make("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", 0), "header"); // deep nesting
    check(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8), "tensors[a].data_offsets"); // past end
    check(make(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "tensors[a].data_offsets");  // size mismatch
    check(make(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8), "tensors[a].data_offsets");  // dtype mismatch
    check(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "tensors[a].data_offsets");  // begin > end
    check(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8), "tensors[a].data_offsets");
    check(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", 8), "tensors[a].data_offsets[1]");
    check(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", 8), "tensors[a].data_offsets");
    check(make(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "tensors[a].shape[0]");
    check(make(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8), "tensors[a].shape[0]");
    check(make(R"({"a":{"dtype":"F32","shape":[2,4294967296,4294967296],"data_offsets":[0,8]}})", 8),
          "tensors[a].shape[2]");
    check(make(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8), "tensors[a].shape");
    check(make(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8), "tensors[a].dtype");
    check(make(R"({"a":{"dtype":3,"shape":[2],"data_offsets":[0,8]}})", 8), "tensors[a].dtype");
    check(make(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8), "tensors[a].dtype");
    check(make(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8), "tensors[a].shape");
    check(make(R"({"a":5})", 8), "tensors[a]");
    check(make(R"({"__metadata__":{"k":1}})", 0), "__metadata__[k]");
    check(make(R"({"__metadata__":[1]})", 0), "__metadata__");
    check(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
          "data_offsets"); // overlap
    // the header may be padded with spaces
    write_bytes(p, make(ok + "      ", 8));
    CHECK(safetensors_file::open(p).tensors().size() == 1);
    // a missing file
    expect_input_error([&] { safetensors_file::open(dir / "missing"); }, dir / "missing", "file");
}

TEST_CASE("safetensors truncated and flipped", "[io]") {
    const std::vector<uint8_t> full = read_bytes(data("io_golden.safetensors"));
    temp_dir dir;
    const std::string p = dir / "t.safetensors";
    for (size_t cut = 0; cut < full.size(); cut++) {
        write_bytes(p, full.data(), cut);
        INFO("cut " << cut);
        expect_input_error([&] { exercise_safetensors(p); }, p);
    }
    for (size_t pos = 0; pos < full.size(); pos++) {
        for (uint8_t mask : {(uint8_t)0x01, (uint8_t)0x20, (uint8_t)0xff}) {
            std::vector<uint8_t> b = full;
            b[pos] ^= mask;
            write_bytes(p, b);
            try {
                exercise_safetensors(p);
            } catch (const input_error & e) {
                if (e.file() != p) FAIL("error names " << e.file());
            }
        }
    }
}

TEST_CASE("hf_checkpoint: single file and shards via index.json", "[io]") {
    temp_dir dir;
    std::vector<float> a = {1, 2, 3, 4}, b = {5, 6}, c = {7};
    const std::string cfg = R"({"architectures":["LlamaForCausalLM"],"hidden_size":4})";

    // single model.safetensors
    const std::string d1 = dir / "single";
    fs::create_directory(d1);
    CHECK_FALSE(hf_checkpoint_is_dir(d1));
    write_text(d1 + "/config.json", cfg);
    safetensors_write(d1 + "/model.safetensors", {{"w.a", st_dtype::F32, {2, 2}, a.data(), 16}}, {});
    CHECK(hf_checkpoint_is_dir(d1));
    {
        hf_checkpoint ck = hf_checkpoint::open(d1);
        CHECK(ck.config_json() == cfg);
        CHECK(ck.shard_paths().size() == 1);
        CHECK(ck.tensor_names() == std::vector<std::string>{"w.a"});
        CHECK(ck.to_f32(*ck.find("w.a")) == a);
    }

    // two shards
    const std::string d2 = dir / "sharded";
    fs::create_directory(d2);
    write_text(d2 + "/config.json", cfg);
    safetensors_write(d2 + "/model-00001-of-00002.safetensors",
                      {{"w.a", st_dtype::F32, {4}, a.data(), 16}, {"w.b", st_dtype::F32, {2}, b.data(), 8}}, {});
    safetensors_write(d2 + "/model-00002-of-00002.safetensors", {{"w.c", st_dtype::F32, {1}, c.data(), 4}}, {});
    const std::string index = d2 + "/model.safetensors.index.json";
    write_text(index, R"({"metadata":{"total_size":28},"weight_map":{
        "w.a":"model-00001-of-00002.safetensors","w.b":"model-00001-of-00002.safetensors",
        "w.c":"model-00002-of-00002.safetensors"}})");
    CHECK(hf_checkpoint_is_dir(d2));
    {
        hf_checkpoint ck = hf_checkpoint::open(d2);
        CHECK(ck.dir() == d2);
        CHECK(ck.shard_paths().size() == 2);
        CHECK(ck.tensor_names() == std::vector<std::string>{"w.a", "w.b", "w.c"});
        CHECK(ck.to_f32(*ck.find("w.b")) == b);
        CHECK(ck.to_f32(*ck.find("w.c")) == c);
        CHECK(ck.find("w.z") == nullptr);
    }

    // a weight_map entry whose shard lacks the tensor
    write_text(index, R"({"weight_map":{"w.a":"model-00001-of-00002.safetensors","w.c":"model-00001-of-00002.safetensors"}})");
    expect_input_error([&] { hf_checkpoint::open(d2); }, index, "weight_map[w.c]");
    // a missing shard file names the shard
    write_text(index, R"({"weight_map":{"w.a":"model-00009-of-00009.safetensors"}})");
    expect_input_error([&] { hf_checkpoint::open(d2); }, d2 + "/model-00009-of-00009.safetensors", "file");
    // shard names may not leave the directory
    write_text(index, R"({"weight_map":{"w.a":"../single/model.safetensors"}})");
    expect_input_error([&] { hf_checkpoint::open(d2); }, index, "weight_map[w.a]");
    write_text(index, R"({"weight_map":{"w.a":3}})");
    expect_input_error([&] { hf_checkpoint::open(d2); }, index, "weight_map[w.a]");
    write_text(index, R"({"weight_map":[]})");
    expect_input_error([&] { hf_checkpoint::open(d2); }, index, "weight_map");
    write_text(index, R"({"weight_map":)");
    expect_input_error([&] { hf_checkpoint::open(d2); }, index, "index");

    // missing config.json / no weights / not a directory
    const std::string d3 = dir / "empty";
    fs::create_directory(d3);
    expect_input_error([&] { hf_checkpoint::open(d3); }, d3 + "/config.json", "file");
    write_text(d3 + "/config.json", "{");
    expect_input_error([&] { hf_checkpoint::open(d3); }, d3 + "/config.json", "config");
    write_text(d3 + "/config.json", cfg);
    expect_input_error([&] { hf_checkpoint::open(d3); }, d3, "model.safetensors");
    expect_input_error([&] { hf_checkpoint::open(dir / "nope"); }, dir / "nope", "directory");
}

// ---------------------------------------------------------------------------
// fuzz corpus replay

TEST_CASE("fuzz corpus replays without crashing", "[io][fuzz]") {
    const std::string root = attnlab_test::source_dir() + "/tests/fuzz_corpus";
    int n_files = 0;
    for (const char * kind : {"gguf", "safetensors"}) {
        const std::string d = root + "/" + kind;
        if (!fs::is_directory(d)) continue;
        for (const auto & e : fs::directory_iterator(d)) {
            if (!e.is_regular_file()) continue;
            const std::string p = e.path().string();
            INFO(p);
            n_files++;
            try {
                if (std::string(kind) == "gguf") exercise_gguf(p);
                else exercise_safetensors(p);
            } catch (const input_error & err) {
                CHECK(err.file() == p);
            }
        }
    }
    CHECK(n_files > 0);
}
