// ggml tensor type table and dequantisation of the common block formats to
// float32. Written from the block layouts of the GGUF/ggml format: every block
// stores one or two fp16 scales followed by packed integer quants. All
// multi-byte loads go through memcpy because GGUF data may sit at any
// alignment (general.alignment can be 1).
#include "io/gguf.h"
#include "base/half.h" // fp16_to_f32, bf16_to_f32

#include <cstring>
#include <stdexcept>
#include <string>

namespace attnlab {

namespace {

// Sizes as defined by ggml. Types this reader can only describe (not decode)
// are listed too, so a file that holds them still opens.
struct type_row {
    uint32_t id;
    ggml_type_info info;
};

const type_row k_types[] = {
    {0,  {"F32",     1,   4,   true}},
    {1,  {"F16",     1,   2,   true}},
    {2,  {"Q4_0",    32,  18,  true}},
    {3,  {"Q4_1",    32,  20,  true}},
    {6,  {"Q5_0",    32,  22,  true}},
    {7,  {"Q5_1",    32,  24,  true}},
    {8,  {"Q8_0",    32,  34,  true}},
    {9,  {"Q8_1",    32,  36,  false}},
    {10, {"Q2_K",    256, 84,  true}},
    {11, {"Q3_K",    256, 110, true}},
    {12, {"Q4_K",    256, 144, true}},
    {13, {"Q5_K",    256, 176, true}},
    {14, {"Q6_K",    256, 210, true}},
    {15, {"Q8_K",    256, 292, false}},
    {16, {"IQ2_XXS", 256, 66,  false}},
    {17, {"IQ2_XS",  256, 74,  false}},
    {18, {"IQ3_XXS", 256, 98,  false}},
    {19, {"IQ1_S",   256, 50,  false}},
    {20, {"IQ4_NL",  32,  18,  false}},
    {21, {"IQ3_S",   256, 110, false}},
    {22, {"IQ2_S",   256, 82,  false}},
    {23, {"IQ4_XS",  256, 136, false}},
    {24, {"I8",      1,   1,   false}},
    {25, {"I16",     1,   2,   false}},
    {26, {"I32",     1,   4,   false}},
    {27, {"I64",     1,   8,   false}},
    {28, {"F64",     1,   8,   false}},
    {29, {"IQ1_M",   256, 56,  false}},
    {30, {"BF16",    1,   2,   true}},
    {34, {"TQ1_0",   256, 54,  false}},
    {35, {"TQ2_0",   256, 66,  false}},
    {39, {"MXFP4",   32,  17,  false}},
};

inline uint16_t load_u16(const uint8_t * p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

inline uint32_t load_u32(const uint8_t * p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

inline float load_f16(const uint8_t * p) { return fp16_to_f32(load_u16(p)); }

// --- 32-element blocks ---------------------------------------------------

// Q4_0: fp16 d, 16 bytes of nibbles; low nibbles are elements 0..15, high 16..31.
void deq_q4_0(const uint8_t * b, float * y) {
    const float d = load_f16(b);
    const uint8_t * qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j]      = ((int)(qs[j] & 0x0f) - 8) * d;
        y[j + 16] = ((int)(qs[j] >> 4) - 8) * d;
    }
}

// Q4_1: fp16 d, fp16 m (min), then nibbles as Q4_0 but unsigned plus min.
void deq_q4_1(const uint8_t * b, float * y) {
    const float d = load_f16(b);
    const float m = load_f16(b + 2);
    const uint8_t * qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j]      = (qs[j] & 0x0f) * d + m;
        y[j + 16] = (qs[j] >> 4) * d + m;
    }
}

// Q5_0: fp16 d, 32 high bits (one per element), nibbles; 5-bit value minus 16.
void deq_q5_0(const uint8_t * b, float * y) {
    const float d = load_f16(b);
    const uint32_t qh = load_u32(b + 2);
    const uint8_t * qs = b + 6;
    for (int j = 0; j < 16; j++) {
        const int h0 = (qh >> j) & 1;
        const int h1 = (qh >> (j + 16)) & 1;
        y[j]      = ((int)((qs[j] & 0x0f) | (h0 << 4)) - 16) * d;
        y[j + 16] = ((int)((qs[j] >> 4) | (h1 << 4)) - 16) * d;
    }
}

// Q5_1: fp16 d, fp16 m, 32 high bits, nibbles; unsigned 5-bit value plus min.
void deq_q5_1(const uint8_t * b, float * y) {
    const float d = load_f16(b);
    const float m = load_f16(b + 2);
    const uint32_t qh = load_u32(b + 4);
    const uint8_t * qs = b + 8;
    for (int j = 0; j < 16; j++) {
        const int h0 = (qh >> j) & 1;
        const int h1 = (qh >> (j + 16)) & 1;
        y[j]      = ((qs[j] & 0x0f) | (h0 << 4)) * d + m;
        y[j + 16] = ((qs[j] >> 4) | (h1 << 4)) * d + m;
    }
}

// Q8_0: fp16 d, 32 signed bytes.
void deq_q8_0(const uint8_t * b, float * y) {
    const float d = load_f16(b);
    const int8_t * qs = reinterpret_cast<const int8_t *>(b + 2);
    for (int j = 0; j < 32; j++) y[j] = qs[j] * d;
}

// --- 256-element "K" super-blocks ----------------------------------------

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] 2-bit quants,
// fp16 d, fp16 dmin. Each 128-element half uses 32 bytes of qs, read four
// times with shifts 0,2,4,6; each shift covers two 16-element sub-blocks.
void deq_q2_k(const uint8_t * b, float * y) {
    const uint8_t * scales = b;
    const uint8_t * q = b + 16;
    const float d = load_f16(b + 80);
    const float dmin = load_f16(b + 82);
    int is = 0;
    for (int half = 0; half < 2; half++) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int part = 0; part < 2; part++) {
                const uint8_t sc = scales[is++];
                const float dl = d * (sc & 0x0f);
                const float ml = dmin * (sc >> 4);
                const uint8_t * qp = q + 16 * part;
                for (int l = 0; l < 16; l++) *y++ = dl * ((qp[l] >> shift) & 3) - ml;
            }
        }
        q += 32;
    }
}

// Q3_K 6-bit scales: 16 of them packed in 12 bytes. Low 4 bits come from
// bytes 0..7 (low nibble for scales 0..7, high nibble for 8..15); the top 2
// bits come from bytes 8..11, two bits per scale.
void unpack_q3_k_scales(const uint8_t * s, int * out) {
    for (int i = 0; i < 16; i++) {
        const int lo = i < 8 ? (s[i] & 0x0f) : (s[i - 8] >> 4);
        const int hi = (s[8 + (i % 4)] >> (2 * (i / 4))) & 3;
        out[i] = (lo | (hi << 4)) - 32;
    }
}

// Q3_K: hmask[32] (high bit, one bit-plane per 32-element group), qs[64]
// 2-bit low parts, scales[12], fp16 d. A missing high bit means "minus 4".
void deq_q3_k(const uint8_t * b, float * y) {
    const uint8_t * hm = b;
    const uint8_t * q = b + 32;
    int sc[16];
    unpack_q3_k_scales(b + 96, sc);
    const float d = load_f16(b + 108);
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; half++) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int part = 0; part < 2; part++) {
                const float dl = d * sc[is++];
                const uint8_t * qp = q + 16 * part;
                const uint8_t * hp = hm + 16 * part;
                for (int l = 0; l < 16; l++) {
                    const int v = ((qp[l] >> shift) & 3) - ((hp[l] & m) ? 0 : 4);
                    *y++ = dl * v;
                }
            }
            m <<= 1;
        }
        q += 32;
    }
}

// Q4_K/Q5_K 6-bit scale and min j (0..7) from the 12 packed bytes: the first
// four pairs are plain 6-bit fields; the last four take 4 low bits from bytes
// 8..11 and their top 2 bits from the spare bits of bytes 0..7.
inline void k4_scale_min(int j, const uint8_t * q, int & sc, int & mn) {
    if (j < 4) {
        sc = q[j] & 63;
        mn = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Q4_K: fp16 d, fp16 dmin, scales[12], qs[128]. Eight 32-element sub-blocks;
// each 32 bytes of qs hold two of them (low nibbles, then high nibbles).
void deq_q4_k(const uint8_t * b, float * y) {
    const float d = load_f16(b);
    const float dmin = load_f16(b + 2);
    const uint8_t * scales = b + 4;
    const uint8_t * q = b + 16;
    for (int j = 0; j < 8; j += 2) {
        int sc, mn;
        k4_scale_min(j, scales, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
        k4_scale_min(j + 1, scales, sc, mn);
        const float d2 = d * sc, m2 = dmin * mn;
        for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0x0f) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        q += 32;
    }
}

// Q5_K: as Q4_K plus qh[32]: bit k of qh[l] is the fifth bit of element l of
// sub-block k.
void deq_q5_k(const uint8_t * b, float * y) {
    const float d = load_f16(b);
    const float dmin = load_f16(b + 2);
    const uint8_t * scales = b + 4;
    const uint8_t * qh = b + 16;
    const uint8_t * ql = b + 48;
    for (int j = 0; j < 8; j += 2) {
        int sc, mn;
        k4_scale_min(j, scales, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
        k4_scale_min(j + 1, scales, sc, mn);
        const float d2 = d * sc, m2 = dmin * mn;
        const uint8_t u1 = (uint8_t)(1u << j);
        const uint8_t u2 = (uint8_t)(2u << j);
        for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        ql += 32;
    }
}

// Q6_K: ql[128] low nibbles, qh[64] 2-bit high parts, int8 scales[16], fp16 d.
// Each 128-element half uses 64 bytes of ql and 32 of qh; element groups of 32
// take (ql low / ql+32 low / ql high / ql+32 high) and qh bits 0-1/2-3/4-5/6-7.
void deq_q6_k(const uint8_t * b, float * y) {
    const uint8_t * ql = b;
    const uint8_t * qh = b + 128;
    const int8_t * sc = reinterpret_cast<const int8_t *>(b + 192);
    const float d = load_f16(b + 208);
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = (int)((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = (int)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l]      = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

typedef void (*block_fn)(const uint8_t *, float *);

} // namespace

const ggml_type_info * ggml_type_info_get(uint32_t type) {
    for (const type_row & r : k_types) {
        if (r.id == type) return &r.info;
    }
    return nullptr;
}

void dequantize_row(ggml_type type, const void * src, float * dst, int64_t n) {
    const ggml_type_info * info = ggml_type_info_get((uint32_t)type);
    if (!info || !info->dequantizable) {
        throw std::invalid_argument(std::string("dequantize_row: unsupported type ") +
                                    (info ? info->name : std::to_string((uint32_t)type)));
    }
    if (n < 0 || n % info->block_elems != 0) {
        throw std::invalid_argument("dequantize_row: n is not a multiple of the block size");
    }
    if (n == 0) return; // callers may pass null buffers for empty tensors
    const uint8_t * p = static_cast<const uint8_t *>(src);
    switch (type) {
        case ggml_type::F32:
            std::memcpy(dst, p, (size_t)n * 4);
            return;
        case ggml_type::F16:
            for (int64_t i = 0; i < n; i++) dst[i] = load_f16(p + 2 * i);
            return;
        case ggml_type::BF16:
            for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(load_u16(p + 2 * i));
            return;
        default:
            break;
    }
    block_fn fn = nullptr;
    switch (type) {
        case ggml_type::Q4_0: fn = deq_q4_0; break;
        case ggml_type::Q4_1: fn = deq_q4_1; break;
        case ggml_type::Q5_0: fn = deq_q5_0; break;
        case ggml_type::Q5_1: fn = deq_q5_1; break;
        case ggml_type::Q8_0: fn = deq_q8_0; break;
        case ggml_type::Q2_K: fn = deq_q2_k; break;
        case ggml_type::Q3_K: fn = deq_q3_k; break;
        case ggml_type::Q4_K: fn = deq_q4_k; break;
        case ggml_type::Q5_K: fn = deq_q5_k; break;
        case ggml_type::Q6_K: fn = deq_q6_k; break;
        default: break;
    }
    if (!fn) throw std::invalid_argument(std::string("dequantize_row: no decoder for ") + info->name);
    const int64_t nb = n / info->block_elems;
    for (int64_t i = 0; i < nb; i++) {
        fn(p + i * info->block_bytes, dst + i * info->block_elems);
    }
}

} // namespace attnlab
