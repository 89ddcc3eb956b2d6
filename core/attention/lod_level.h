#pragma once
// Level-of-detail pooling of an L x L matrix (a head's attention weights): a
// level with factor f has cells of f x f tokens; cell (I, J) covers rows
// row0 + I*f .. and cols col0 + J*f .., clipped to L, and stores the max and
// the sum over its tokens, so that the mean over any cell-aligned region is
// exact (sum of sums / token count), whatever level it is read from. The
// head maps (metrics/head_map.h, CPU and GPU alike) return pyramids of these;
// the app draws them (app/gui/plot_math.h pools them into pixels).
#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

namespace attnlab {

struct lod_level {
    int L = 0;               // side of the whole matrix, in tokens
    int factor = 1;          // tokens per cell side
    int row0 = 0, col0 = 0;  // token origin (windows of exact values)
    int n_rows = 0, n_cols = 0;
    std::vector<float> max, sum; // n_rows * n_cols, row-major

    int rows_in(int I) const { return std::max(0, std::min(L, row0 + (I + 1) * factor) - (row0 + I * factor)); }
    int cols_in(int J) const { return std::max(0, std::min(L, col0 + (J + 1) * factor) - (col0 + J * factor)); }
    size_t bytes() const { return (max.size() + sum.size()) * sizeof(float); }
};

// A level of factor f from a dense row-major L x L matrix (brute force; tests
// and small matrices).
inline lod_level lod_from_dense(const float * a, int L, int f) {
    lod_level lv;
    lv.L = L;
    lv.factor = f;
    lv.n_rows = lv.n_cols = (L + f - 1) / f;
    lv.max.assign(size_t(lv.n_rows) * lv.n_cols, -std::numeric_limits<float>::infinity());
    lv.sum.assign(size_t(lv.n_rows) * lv.n_cols, 0.0f);
    for (int i = 0; i < L; ++i) {
        for (int j = 0; j < L; ++j) {
            size_t c = size_t(i / f) * lv.n_cols + j / f;
            lv.max[c] = std::max(lv.max[c], a[size_t(i) * L + j]);
            lv.sum[c] += a[size_t(i) * L + j];
        }
    }
    return lv;
}

// The next coarser level (factor 2f) from a level whose origin is (0, 0).
inline lod_level lod_downsample2(const lod_level & s) {
    lod_level d;
    d.L = s.L;
    d.factor = s.factor * 2;
    d.n_rows = (s.n_rows + 1) / 2;
    d.n_cols = (s.n_cols + 1) / 2;
    d.max.assign(size_t(d.n_rows) * d.n_cols, -std::numeric_limits<float>::infinity());
    d.sum.assign(size_t(d.n_rows) * d.n_cols, 0.0f);
    for (int I = 0; I < s.n_rows; ++I) {
        const float * mx = &s.max[size_t(I) * s.n_cols];
        const float * sm = &s.sum[size_t(I) * s.n_cols];
        float * dmx = &d.max[size_t(I / 2) * d.n_cols];
        float * dsm = &d.sum[size_t(I / 2) * d.n_cols];
        for (int J = 0; J < s.n_cols; ++J) {
            dmx[J / 2] = std::max(dmx[J / 2], mx[J]);
            dsm[J / 2] += sm[J];
        }
    }
    return d;
}

} // namespace attnlab
