#pragma once
// Flash attention forward for Hopper (sm_90a), head dim 128 or 64, dense and
// block-sparse (block 128), causal or not, GQA, any L; softmax score only.
// FA3 / ThunderKittens structure:
//
//   warpgroup 0 (producer): one thread issues TMA copies (cp.async.bulk.tensor)
//     of Q once and of K/V tiles into a kStages-deep shared-memory ring; each
//     stage has a "full" mbarrier (TMA completes its transaction bytes on it)
//     and an "empty" mbarrier (the consumers' warps arrive when done reading).
//     Block-sparse: it walks kv_indices. Rows past L are zero-filled by TMA.
//   warpgroups 1, 2 (consumers): 64 query rows each;
//     S = Q K^T       wgmma.m64n128k16, A and B from shared memory (K-major)
//     online softmax  in registers (base 2, masks inside the tile)
//     O += P V        wgmma.m64n{D}k16, P from registers, V from shared
//                     memory (N-major: transposed B)
//   setmaxnreg 24 (producer) / 240 (consumers) is issued, but ptxas still
//   compiles for the 168-register cap of 384 threads (kernels/NOTES.md, v4).
//
// Shared-memory tiles are [rows x D] as D/64 [rows x 64] halves of 128-byte
// rows in the TMA/wgmma 128-byte swizzle (8-row atoms of 1024 bytes). The
// mma.sync kernel (flash_fwd.cuh) stays the fallback for other archs/shapes.
#include <cstdint>
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flash_fwd.cuh"

namespace attnlab::cuda::sm90 {

constexpr int kBM = 128, kBN = 128, kStages = 2;
constexpr int kThreads = 384;                         // 3 warpgroups
template <int D> struct shape {                       // head dim 64 or 128
    static constexpr int kHalves = D / 64;            // 64-column (128-byte) halves of a row
    static constexpr int kTileBytes = kBN * D * 2;    // one K or V tile (32 KiB at D = 128)
    static constexpr int kQBytes = kBM * D * 2;
    static constexpr int kSmem = kQBytes + 2 * kStages * kTileBytes + 1024 /* barriers */ + 1024 /* alignment */;
};

struct args {   // CUtensorMap carries its own (64-byte or larger) alignment
    CUtensorMap tq, tk, tv;   // 4-D maps {D, L, heads, B}, box {64, 128, 1, 1}, 128-byte swizzle
    fa_params p;
};

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ATTNLAB_SM90_KERNEL 1
#endif

// ------------------------------------------------------------- primitives
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
    uint32_t ok;
    asm volatile(
        "{\n"
        ".reg .pred P1;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 P1, [%1], %2;\n"
        "selp.u32 %0, 1, 0, P1;\n"
        "}\n"
        : "=r"(ok)
        : "r"(bar), "r"(parity)
        : "memory");
    return ok != 0;
}
// Waits for the phase of `parity` to complete. A wait of over ~2^32 cycles
// (seconds; a normal wait is microseconds) traps instead of hanging the GPU.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    if (mbar_try_wait(bar, parity)) return;
    const long long t0 = clock64();
    for (int n = 1;; ++n) {
        if (mbar_try_wait(bar, parity)) return;
        if ((n & 1023) == 0 && clock64() - t0 > (1ll << 32)) __trap();
    }
}
// 4-D tile copy global -> shared, completion counted on `bar` in bytes.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap * map, uint32_t bar, int c0, int c1, int c2,
                                            int c3) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(
            dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
        : "memory");
}

// wgmma shared-memory descriptor: start address, leading / stride byte
// offsets (16-byte units), 128-byte swizzle (bits 62-63 = 1).
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) |
           ((uint64_t)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// The 64 (32) accumulator registers of an m64n128 (m64n64) tile as asm operands.
#define ATTNLAB_ACC64(d)                                                                                              \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),       \
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),        \
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),       \
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),       \
        "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),       \
        "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),       \
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),       \
        "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define ATTNLAB_D64                                                                                                  \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "   \
    "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

#define ATTNLAB_ACC32(d)                                                                                              \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),       \
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),        \
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),       \
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define ATTNLAB_D32                                                                                                  \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31}"

template <typename T> struct wg_type;
// The two element types differ only in the PTX type name of the operands.
#define ATTNLAB_WG_TYPE(CT, PTX)                                                                                      \
    template <> struct wg_type<CT> {                                                                                  \
        /* D[64x128] (+)= A[64x16] B[16x128]; A, B from shared memory, both K-major. */                              \
        static __device__ __forceinline__ void ss(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {            \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                 \
                         "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX "." PTX " " ATTNLAB_D64                   \
                         ", %64, %65, p, 1, 1, 0, 0;\n}\n"                                                            \
                         : ATTNLAB_ACC64(d)                                                                           \
                         : "l"(da), "l"(db), "r"(scale_d));                                                           \
        }                                                                                                             \
        /* D += A B; A from registers, B from shared memory N-major (transposed). */                                 \
        static __device__ __forceinline__ void rs_tb(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {           \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                 \
                         "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX "." PTX " " ATTNLAB_D64                   \
                         ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                                              \
                         : ATTNLAB_ACC64(d)                                                                           \
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));                              \
        }                                                                                                             \
        /* D[64x64] += A B (head dim 64: O += P V). */                                                                \
        static __device__ __forceinline__ void rs_tb(float (&d)[32], const uint32_t (&a)[4], uint64_t db) {           \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                                 \
                         "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX "." PTX " " ATTNLAB_D32                    \
                         ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                                              \
                         : ATTNLAB_ACC32(d)                                                                           \
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));                              \
        }                                                                                                             \
    };
ATTNLAB_WG_TYPE(__nv_bfloat16, "bf16")
ATTNLAB_WG_TYPE(__half, "f16")
#undef ATTNLAB_WG_TYPE

// ------------------------------------------------------------- tile types
// [ROWS x D] tile in shared memory: D/64 [ROWS x 64] halves, 128-byte rows,
// 128-byte swizzle (what a TMA box {64, ROWS} writes and wgmma reads).
template <int ROWS>
struct sw128_tile {
    static constexpr int kHalfBytes = ROWS * 128;
    uint32_t base;   // shared address, 1024-byte aligned
    __device__ __forceinline__ uint32_t half(int h) const { return base + h * kHalfBytes; }
    // K-major operand (Q, K): rows [row0, row0 + 64 or 128), k-step kk (16 columns).
    __device__ __forceinline__ uint64_t kmajor_desc(int row0, int kk) const {
        return smem_desc(half(kk >> 2) + row0 * 128 + (kk & 3) * 32, 16, 1024);
    }
    // N-major operand (V as B of P V): keys [16 kk, 16 kk + 16), all columns
    // (LBO: from the first 64 columns to the next 64 = one half; unused at D = 64).
    __device__ __forceinline__ uint64_t nmajor_desc(int kk) const {
        return smem_desc(base + kk * 16 * 128, kHalfBytes, 1024);
    }
};

// fp32 accumulator of one warpgroup for an m64nN tile: per thread rows
// r0 = 16*warp + lane/4 and r0 + 8; element 4j + e at column 8j + 2(lane%4) + (e&1),
// row r0 + 8(e>>1) (the same fragment order as the mma.sync kernel's acc_tile).
template <int N>
struct wg_acc {
    float d[N / 2];
};

// ------------------------------------------------------------- shared memory
// Q, the K ring, the V ring, then the mbarriers (Q's; full K, full V, empty K,
// empty V per stage). base is 1024-byte aligned (the swizzle atom).
template <int D>
struct smem_layout {
    static constexpr int kQBytes = shape<D>::kQBytes, kTileBytes = shape<D>::kTileBytes;
    uint32_t base;
    __device__ __forceinline__ sw128_tile<kBM> q() const { return {base}; }
    __device__ __forceinline__ sw128_tile<kBN> k(int s) const { return {base + kQBytes + s * kTileBytes}; }
    __device__ __forceinline__ sw128_tile<kBN> v(int s) const { return {base + kQBytes + (kStages + s) * kTileBytes}; }
    __device__ __forceinline__ uint32_t bar_q() const { return base + kQBytes + 2 * kStages * kTileBytes; }
    __device__ __forceinline__ uint32_t full_k(int s) const { return bar_q() + 8 * (1 + s); }
    __device__ __forceinline__ uint32_t full_v(int s) const { return bar_q() + 8 * (1 + kStages + s); }
    __device__ __forceinline__ uint32_t empty_k(int s) const { return bar_q() + 8 * (1 + 2 * kStages + s); }
    __device__ __forceinline__ uint32_t empty_v(int s) const { return bar_q() + 8 * (1 + 3 * kStages + s); }
};

// The key tiles one CTA visits, in order: every tile up to the causal limit
// (dense), or the query block's list of kept blocks (block-sparse).
template <bool SPARSE>
struct kv_tiles {
    int n = 0;
    const int * blocks = nullptr;
    __device__ __forceinline__ int start(int i) const {
        if constexpr (SPARSE) return __ldg(blocks + i) * kBN;
        else return i * kBN;
    }
};

template <bool SPARSE>
__device__ __forceinline__ kv_tiles<SPARSE> kv_tiles_of(const fa_params & p, int b, int h, int qb, int q0) {
    kv_tiles<SPARSE> t;
    if constexpr (SPARSE) {
        const long long row = ((long long)(b % p.mask_B) * p.mask_H + (h % p.mask_H)) * p.nqb + qb;
        t.n = p.kv_num_blocks[row];
        t.blocks = p.kv_indices + row * p.max_kv_blocks;
    } else {
        const int kv_end = p.causal ? min(p.L, q0 + kBM) : p.L;
        t.n = (kv_end + kBN - 1) / kBN;
    }
    return t;
}

// Where one CTA works: query block qb of head h in batch b (KV head hk).
struct cta_coords {
    int b, h, hk, qb, q0;
};

// ------------------------------------------------------------- producer
// One thread: Q once, then K and V of every visited tile into the ring. A
// stage is refilled once both consumer warpgroups released it (empty), and
// TMA counts the bytes in on its full barrier.
template <int D, bool SPARSE>
__device__ __forceinline__ void produce_tiles(const args & a, const smem_layout<D> & sm, const kv_tiles<SPARSE> & kv,
                                              const cta_coords & c) {
    constexpr int kHalves = shape<D>::kHalves;
    mbar_expect_tx(sm.bar_q(), shape<D>::kQBytes);
    for (int hf = 0; hf < kHalves; ++hf) tma_load_4d(sm.q().half(hf), &a.tq, sm.bar_q(), 64 * hf, c.q0, c.h, c.b);
    for (int it = 0; it < kv.n; ++it) {
        const int s = it % kStages;
        const uint32_t ph = (it / kStages) & 1;
        const int kv0 = kv.start(it);
        mbar_wait(sm.empty_k(s), ph ^ 1);   // a fresh barrier passes parity 1 at once
        mbar_expect_tx(sm.full_k(s), shape<D>::kTileBytes);
        for (int hf = 0; hf < kHalves; ++hf) tma_load_4d(sm.k(s).half(hf), &a.tk, sm.full_k(s), 64 * hf, kv0, c.hk, c.b);
        mbar_wait(sm.empty_v(s), ph ^ 1);
        mbar_expect_tx(sm.full_v(s), shape<D>::kTileBytes);
        for (int hf = 0; hf < kHalves; ++hf) tma_load_4d(sm.v(s).half(hf), &a.tv, sm.full_v(s), 64 * hf, kv0, c.hk, c.b);
    }
}

// ------------------------------------------------------------- consumer
// Which rows a consumer thread owns: warpgroup cw's 64 rows, this warp's 16
// of them from wrow0 (inside the tile), this thread's row_lo and row_lo + 8.
struct consumer_rows {
    int cw, lane, wrow0, row_lo;
};

// The running state of one consumer warpgroup's 64 query rows: O, S (then
// P), and per thread row the running max and sum.
template <int D>
struct consumer_state {
    wg_acc<D> o;     // O: 64 rows x D
    wg_acc<kBN> s;   // S, then P: 64 rows x 128 keys
    float m_run[2], l_run[2], alpha[2];
    uint32_t pf[8][4];   // P of the last softmaxed tile as wgmma A fragments
};

// Masks (past L, above the diagonal), then the online softmax of S in place
// (base 2); sets alpha, the factor that rescales O.
template <int D>
__device__ __forceinline__ void softmax_tile(consumer_state<D> & c, const consumer_rows rw, const fa_params & p, int kv0,
                                             int q0) {
    const bool need_mask = (kv0 + kBN > p.L) || (p.causal && kv0 + kBN - 1 > q0 + rw.wrow0);
    if (need_mask) {
#pragma unroll
        for (int j = 0; j < 16; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = kv0 + 8 * j + 2 * (rw.lane & 3) + (e & 1);
                const int row = rw.row_lo + 8 * (e >> 1);
                if (key >= p.L || (p.causal && key > row)) c.s.d[4 * j + e] = -INFINITY;
            }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float mx = c.m_run[r];
#pragma unroll
        for (int j = 0; j < 16; ++j) mx = fmaxf(mx, fmaxf(c.s.d[4 * j + 2 * r], c.s.d[4 * j + 2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_use = (mx == -INFINITY) ? 0.f : mx * p.scale_log2;
        c.alpha[r] = (mx == c.m_run[r]) ? 1.f : fast_exp2(c.m_run[r] * p.scale_log2 - m_use);
        c.m_run[r] = mx;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            c.s.d[4 * j + 2 * r] = fast_exp2(fmaf(c.s.d[4 * j + 2 * r], p.scale_log2, -m_use));
            c.s.d[4 * j + 2 * r + 1] = fast_exp2(fmaf(c.s.d[4 * j + 2 * r + 1], p.scale_log2, -m_use));
            sum += c.s.d[4 * j + 2 * r] + c.s.d[4 * j + 2 * r + 1];
        }
        c.l_run[r] = c.l_run[r] * c.alpha[r] + sum;
    }
}

template <int D>
__device__ __forceinline__ void rescale_o(consumer_state<D> & c) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) c.o.d[4 * j + e] *= c.alpha[e >> 1];
}

// P as wgmma A fragments: k-step kk = keys 16 kk .. 16 kk + 15.
template <typename T, int D>
__device__ __forceinline__ void pack_p(consumer_state<D> & c) {
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
        c.pf[kk][0] = elem<T>::pack(c.s.d[8 * kk + 0], c.s.d[8 * kk + 1]);
        c.pf[kk][1] = elem<T>::pack(c.s.d[8 * kk + 2], c.s.d[8 * kk + 3]);
        c.pf[kk][2] = elem<T>::pack(c.s.d[8 * kk + 4], c.s.d[8 * kk + 5]);
        c.pf[kk][3] = elem<T>::pack(c.s.d[8 * kk + 6], c.s.d[8 * kk + 7]);
    }
}

// S = Q K^T (async; the caller commits and waits).
template <typename T, int D>
__device__ __forceinline__ void issue_qk(consumer_state<D> & c, const consumer_rows rw, const smem_layout<D> & sm, int st) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) wg_type<T>::ss(c.s.d, sm.q().kmajor_desc(rw.cw * 64, kk), sm.k(st).kmajor_desc(0, kk), kk > 0);
}

// O += P V (async).
template <typename T, int D>
__device__ __forceinline__ void issue_pv(consumer_state<D> & c, const smem_layout<D> & sm, int st) {
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) wg_type<T>::rs_tb(c.o.d, c.pf[kk], sm.v(st).nmajor_desc(kk));
}

// One tile at a time: S, softmax, P V (the two consumer warpgroups still
// overlap each other's softmax with their GEMMs).
template <typename T, int D, bool SPARSE>
__device__ __forceinline__ void consume_serial(consumer_state<D> & c, const consumer_rows rw, const fa_params & p,
                                               const smem_layout<D> & sm,
                                               const kv_tiles<SPARSE> & kv, int q0) {
    for (int it = 0; it < kv.n; ++it) {
        const int st = it % kStages;
        const uint32_t ph = (it / kStages) & 1;
        mbar_wait(sm.full_k(st), ph);
        wgmma_fence();
        issue_qk<T>(c, rw, sm, st);
        wgmma_commit();
        wgmma_wait<0>();
        if (rw.lane == 0) mbar_arrive(sm.empty_k(st));
        softmax_tile(c, rw, p, kv.start(it), q0);
        rescale_o(c);
        pack_p<T>(c);
        mbar_wait(sm.full_v(st), ph);
        wgmma_fence();
        issue_pv<T>(c, sm, st);
        wgmma_commit();
        wgmma_wait<0>();
        if (rw.lane == 0) mbar_arrive(sm.empty_v(st));
    }
}

// FA3's intra-warpgroup pipelining: S(i) = Q K(i)^T and O += P(i-1) V(i-1)
// are in flight together while the softmax of S(i) runs; O is rescaled by
// alpha(i) once P(i-1) V(i-1) has landed.
template <typename T, int D, bool SPARSE>
__device__ __forceinline__ void consume_overlapped(consumer_state<D> & c, const consumer_rows rw, const fa_params & p,
                                               const smem_layout<D> & sm,
                                                   const kv_tiles<SPARSE> & kv, int q0) {
    if (kv.n <= 0) return;
    mbar_wait(sm.full_k(0), 0);
    wgmma_fence();
    issue_qk<T>(c, rw, sm, 0);
    wgmma_commit();
    wgmma_wait<0>();
    if (rw.lane == 0) mbar_arrive(sm.empty_k(0));
    softmax_tile(c, rw, p, kv.start(0), q0);   // O = 0: no rescale
    pack_p<T>(c);
    for (int it = 1; it < kv.n; ++it) {
        const int st = it % kStages, pst = (it - 1) % kStages;
        const uint32_t ph = (it / kStages) & 1, pph = ((it - 1) / kStages) & 1;
        mbar_wait(sm.full_k(st), ph);
        wgmma_fence();
        issue_qk<T>(c, rw, sm, st);
        wgmma_commit();
        mbar_wait(sm.full_v(pst), pph);
        issue_pv<T>(c, sm, pst);
        wgmma_commit();
        wgmma_wait<1>();   // S(it) done, P V still running
        if (rw.lane == 0) mbar_arrive(sm.empty_k(st));
        softmax_tile(c, rw, p, kv.start(it), q0);
        wgmma_wait<0>();
        if (rw.lane == 0) mbar_arrive(sm.empty_v(pst));
        rescale_o(c);
        pack_p<T>(c);
    }
    const int lst = (kv.n - 1) % kStages;
    mbar_wait(sm.full_v(lst), ((kv.n - 1) / kStages) & 1);
    wgmma_fence();
    issue_pv<T>(c, sm, lst);
    wgmma_commit();
    wgmma_wait<0>();
    if (rw.lane == 0) mbar_arrive(sm.empty_v(lst));
}

// Epilogue: normalise, store pairs straight to global memory.
template <typename T, int D>
__device__ __forceinline__ void store_o(const consumer_state<D> & c, const consumer_rows rw, const fa_params & p, int b, int h) {
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float l = c.l_run[r];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        inv[r] = (l > 0.f) ? 1.f / l : 0.f;   // all keys masked: zeros, not NaN
    }
    T * gO = static_cast<T *>(p.o) + b * p.os[0] + h * p.os[1];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = rw.row_lo + 8 * r;
        if (row < p.L) {
            T * dst = gO + (long long)row * p.os[2] + 2 * (rw.lane & 3);
#pragma unroll
            for (int j = 0; j < D / 8; ++j)
                *reinterpret_cast<uint32_t *>(dst + 8 * j) =
                    elem<T>::pack(c.o.d[4 * j + 2 * r] * inv[r], c.o.d[4 * j + 2 * r + 1] * inv[r]);
        }
    }
}

// ------------------------------------------------------------- the kernel
// OVERLAP: pipeline S(i+1) and P(i) V(i) inside each consumer warpgroup
// (variant 4). Under the 168-register cap of 384 threads ptxas serialises the
// wgmmas (C7512) and spills 208 bytes, so it is slower than OVERLAP = false
// (variant 3, the default): NOTES.md.
template <typename T, int D, bool SPARSE, bool OVERLAP>
__global__ void __launch_bounds__(kThreads, 1) flash_fwd_sm90_kernel(const __grid_constant__ args a) {
#ifdef ATTNLAB_SM90_KERNEL
    const fa_params & p = a.p;
    extern __shared__ unsigned char smem_raw[];
    const smem_layout<D> sm{(smem_u32(smem_raw) + 1023) & ~1023u};

    const int tid = threadIdx.x, lane = tid & 31, warp_in_wg = (tid / 32) & 3;
    const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);   // warp-uniform for the compiler (role branch)
    const int qb = gridDim.x - 1 - blockIdx.x;   // longest (causal) rows first
    const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
    const cta_coords cc{b, h, h / (p.H / p.Hkv), qb, qb * kBM};
    const kv_tiles<SPARSE> kv = kv_tiles_of<SPARSE>(p, cc.b, cc.h, cc.qb, cc.q0);

    if (tid == 0) {
        mbar_init(sm.bar_q(), 1);
        for (int s = 0; s < kStages; ++s) {
            mbar_init(sm.full_k(s), 1);
            mbar_init(sm.full_v(s), 1);
            mbar_init(sm.empty_k(s), 8);   // one arrive per consumer warp
            mbar_init(sm.empty_v(s), 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    }
    __syncthreads();

    // The roles are the two branches of one if/else: what setmaxnreg needs.
    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (tid == 0) produce_tiles<D, SPARSE>(a, sm, kv, cc);
    } else {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
        const int cw = wg - 1;                        // consumer warpgroup 0/1: rows 64 cw ..
        const int wrow0 = cw * 64 + warp_in_wg * 16;  // this warp's 16 rows inside the tile
        const consumer_rows rw{cw, lane, wrow0, cc.q0 + wrow0 + (lane >> 2)};   // rows row_lo, row_lo + 8
        consumer_state<D> c;
#pragma unroll
        for (int i = 0; i < D / 2; ++i) c.o.d[i] = 0.f;
        c.m_run[0] = c.m_run[1] = -INFINITY;
        c.l_run[0] = c.l_run[1] = 0.f;
        mbar_wait(sm.bar_q(), 0);
        if constexpr (!OVERLAP) consume_serial<T>(c, rw, p, sm, kv, cc.q0);
        else consume_overlapped<T>(c, rw, p, sm, kv, cc.q0);
        store_o<T>(c, rw, p, cc.b, cc.h);
    }
#else
    __trap();   // built for an arch without wgmma: the launcher never selects this kernel there
#endif
}

} // namespace attnlab::cuda::sm90
