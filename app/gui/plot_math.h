#pragma once
// The GUI-free half of the plotting module: colour maps, value scales, axis
// ticks and transforms, and level-of-detail (LOD) block pooling of large
// matrices. Header-only on purpose: tests/test_gui_plot.cpp checks it without a
// display and without linking the app (the test target globs tests/*.cpp).
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "attention/lod_level.h"

namespace attnlab_gui {

// ---- colour maps ----

struct rgb8 {
    uint8_t r = 0, g = 0, b = 0;
};

enum class colormap { viridis, magma, grays, diverging };
inline const char * colormap_name(colormap c) {
    switch (c) {
        case colormap::viridis: return "viridis";
        case colormap::magma: return "magma";
        case colormap::grays: return "grays";
        case colormap::diverging: return "diverging";
    }
    return "?";
}

namespace detail {
// Anchor colours sampled at t = 0, 1/8, ..., 1 from the published maps
// (matplotlib's viridis/magma definitions); linear interpolation between them
// stays within a few 1/255 of the originals, plenty for a heatmap.
constexpr uint8_t k_viridis[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},   {44, 113, 142}, {33, 144, 141},
                                     {39, 173, 129}, {92, 200, 99},  {170, 220, 50},  {253, 231, 37}};
constexpr uint8_t k_magma[9][3] = {{0, 0, 4},       {28, 16, 68},   {79, 18, 123},   {129, 37, 129}, {181, 54, 122},
                                   {229, 80, 100},  {251, 135, 97}, {254, 194, 135}, {252, 253, 191}};
// Blue - white - red for signed differences, t = 0.5 is zero.
constexpr uint8_t k_diverging[9][3] = {{5, 48, 97},     {33, 102, 172}, {67, 147, 195},  {146, 197, 222}, {247, 247, 247},
                                       {244, 165, 130}, {214, 96, 77},  {178, 24, 43},   {103, 0, 31}};

inline rgb8 lerp_table(const uint8_t (*tab)[3], double t) {
    double x = t * 8.0;
    int i = std::min(7, std::max(0, int(x)));
    double f = x - i;
    rgb8 c;
    c.r = uint8_t(std::lround(tab[i][0] + (tab[i + 1][0] - tab[i][0]) * f));
    c.g = uint8_t(std::lround(tab[i][1] + (tab[i + 1][1] - tab[i][1]) * f));
    c.b = uint8_t(std::lround(tab[i][2] + (tab[i + 1][2] - tab[i][2]) * f));
    return c;
}
} // namespace detail

// t in [0, 1] (clamped); NaN maps to a neutral grey so "no data" is visible.
inline rgb8 colormap_eval(colormap cm, double t) {
    if (std::isnan(t)) return {40, 40, 46};
    t = std::min(1.0, std::max(0.0, t));
    switch (cm) {
        case colormap::viridis: return detail::lerp_table(detail::k_viridis, t);
        case colormap::magma: return detail::lerp_table(detail::k_magma, t);
        case colormap::diverging: return detail::lerp_table(detail::k_diverging, t);
        case colormap::grays: {
            uint8_t v = uint8_t(std::lround(t * 255.0));
            return {v, v, v};
        }
    }
    return {};
}

// ---- value scales ----

// Maps a value to [0, 1] for a colour map. Log scales clamp at lo (> 0);
// symmetric scales (differences) map [-hi, hi] with 0 at 0.5.
struct value_scale {
    enum kind_t { linear, log10, symmetric } kind = linear;
    double lo = 0.0, hi = 1.0;

    double normalize(double v) const {
        if (std::isnan(v)) return v;
        switch (kind) {
            case linear: return hi > lo ? (v - lo) / (hi - lo) : 0.0;
            case log10: {
                double l = std::log10(std::max(lo, 1e-300)), h = std::log10(std::max(hi, 1e-300));
                if (!(h > l)) return 0.0;
                if (v <= lo) return 0.0;
                return (std::log10(v) - l) / (h - l);
            }
            case symmetric: return hi > 0 ? 0.5 + 0.5 * v / hi : 0.5;
        }
        return 0.0;
    }
    // Inverse of normalize (for colour-bar ticks and legends).
    double value_at(double t) const {
        switch (kind) {
            case linear: return lo + t * (hi - lo);
            case log10: return std::pow(10.0, std::log10(lo) + t * (std::log10(hi) - std::log10(lo)));
            case symmetric: return (t - 0.5) * 2.0 * hi;
        }
        return 0.0;
    }
};

// ---- ticks ----

// "Nice" linear ticks (1, 2, 5 x 10^k steps) inside [lo, hi], about `target` of them.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
    std::vector<double> out;
    if (!(hi > lo) || target < 1 || !std::isfinite(lo) || !std::isfinite(hi)) return out;
    double raw = (hi - lo) / target;
    double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
        step = m * mag;
        if (step >= raw) break;
    }
    double first = std::ceil(lo / step - 1e-9) * step;
    for (double v = first; v <= hi + step * 1e-9; v += step) {
        out.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
        if (out.size() > 1000) break;
    }
    return out;
}

// Ticks at powers of ten inside [lo, hi] (lo > 0); every k-th decade when
// there are more than max_ticks decades.
inline std::vector<double> log_ticks(double lo, double hi, int max_ticks = 8) {
    std::vector<double> out;
    if (!(lo > 0) || !(hi > lo)) return out;
    int e0 = int(std::ceil(std::log10(lo) - 1e-9)), e1 = int(std::floor(std::log10(hi) + 1e-9));
    int n = e1 - e0 + 1;
    int every = std::max(1, (n + max_ticks - 1) / std::max(1, max_ticks));
    for (int e = e0; e <= e1; ++e) {
        if ((e - e0) % every == 0) out.push_back(std::pow(10.0, e));
    }
    return out;
}

// Compact tick labels: integers as integers, small/large values in 1e-3 form.
inline std::string format_tick(double v) {
    char buf[32];
    double a = std::fabs(v);
    if (v == 0.0) return "0";
    if (a >= 1e5 || a < 1e-3) {
        std::snprintf(buf, sizeof buf, "%.0e", v);
    } else if (std::fabs(v - std::round(v)) < 1e-9 * std::max(1.0, a)) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    } else {
        std::snprintf(buf, sizeof buf, "%.3g", v);
    }
    return buf;
}

// Human units for byte counts and FLOPs (powers of 1000, SI, exact input).
inline std::string format_si(double v, const char * unit) {
    const char * pre[] = {"", "k", "M", "G", "T", "P", "E"};
    int i = 0;
    double a = std::fabs(v);
    while (a >= 1000.0 && i < 6) { a /= 1000.0; v /= 1000.0; ++i; }
    char buf[48];
    std::snprintf(buf, sizeof buf, a >= 100 ? "%.0f %s%s" : a >= 10 ? "%.1f %s%s" : "%.2f %s%s", v, pre[i], unit);
    return buf;
}

// ---- axis transforms ----

// Linear map between a value range and a pixel range (either may be reversed).
struct axis_map {
    double v0 = 0.0, v1 = 1.0;
    double p0 = 0.0, p1 = 1.0;
    double to_px(double v) const { return p0 + (v - v0) * (p1 - p0) / (v1 - v0); }
    double to_val(double p) const { return v0 + (p - p0) * (v1 - v0) / (p1 - p0); }
};

// Zooms [lo, hi] by `factor` (< 1 zooms in) keeping `anchor` fixed on screen,
// then clamps the span to [min_span, max_hi - min_lo] and the range inside
// [min_lo, max_hi].
inline void zoom_range(double & lo, double & hi, double anchor, double factor, double min_span, double min_lo,
                       double max_hi) {
    double span = (hi - lo) * factor;
    span = std::max(min_span, std::min(span, max_hi - min_lo));
    double t = (hi > lo) ? (anchor - lo) / (hi - lo) : 0.5;
    lo = anchor - t * span;
    hi = lo + span;
    if (lo < min_lo) { hi += min_lo - lo; lo = min_lo; }
    if (hi > max_hi) { lo -= hi - max_hi; hi = max_hi; }
    lo = std::max(lo, min_lo);
}

// Moves [lo, hi] by delta, keeping it inside [min_lo, max_hi].
inline void pan_range(double & lo, double & hi, double delta, double min_lo, double max_hi) {
    double span = hi - lo;
    lo += delta;
    hi += delta;
    if (lo < min_lo) { lo = min_lo; hi = lo + span; }
    if (hi > max_hi) { hi = max_hi; lo = hi - span; }
}

// ---- level-of-detail block pooling ----
//
// An L x L matrix (here: a head's attention weights) is kept as a pyramid of
// levels. A level with factor f has cells of f x f tokens; cell (I, J) covers
// rows row0 + I*f .. and cols col0 + J*f .., clipped to L. It stores the max
// and the sum over its tokens, so that the mean over any cell-aligned region
// is exact (sum of sums / token count), whatever level it is read from.

enum class pool_mode { max, mean };

// lod_level, lod_from_dense and lod_downsample2 live in core
// (attention/lod_level.h): the CPU and GPU head maps build the same levels.
using attnlab::lod_level;
using attnlab::lod_from_dense;
using attnlab::lod_downsample2;

// Pools the token rectangle rows [r0, r1) x cols [c0, c1) (fractional) into an
// out_h x out_w image. Output pixel (y, x) takes every cell its token span
// touches (at least one): max of maxes, or sum of sums / token count. Pixels
// outside the level or the matrix are NaN ("no data").
inline void lod_pool(const lod_level & lv, double r0, double r1, double c0, double c1, int out_h, int out_w,
                     pool_mode mode, float * out) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // Per axis: the cell range of every output pixel.
    auto spans = [&](double t0, double t1, int n_out, int origin, int n_cells, std::vector<int> & a,
                     std::vector<int> & b) {
        a.resize(n_out);
        b.resize(n_out);
        double d = (t1 - t0) / n_out;
        for (int p = 0; p < n_out; ++p) {
            double lo = t0 + p * d, hi = t0 + (p + 1) * d;
            if (hi <= 0 || lo >= lv.L) { a[p] = b[p] = 0; continue; }
            int ca = int(std::floor((std::max(0.0, lo) - origin) / lv.factor));
            int cb = int(std::ceil((std::min(double(lv.L), hi) - origin) / lv.factor));
            cb = std::max(cb, ca + 1);
            ca = std::max(ca, 0);
            cb = std::min(cb, n_cells);
            if (cb <= ca) { a[p] = b[p] = 0; continue; }
            a[p] = ca;
            b[p] = cb;
        }
    };
    std::vector<int> ya, yb, xa, xb;
    spans(r0, r1, out_h, lv.row0, lv.n_rows, ya, yb);
    spans(c0, c1, out_w, lv.col0, lv.n_cols, xa, xb);
    std::vector<double> col_count(lv.n_cols);
    for (int J = 0; J < lv.n_cols; ++J) col_count[J] = lv.cols_in(J);
    for (int y = 0; y < out_h; ++y) {
        float * o = out + size_t(y) * out_w;
        if (yb[y] <= ya[y]) { std::fill(o, o + out_w, nan); continue; }
        for (int x = 0; x < out_w; ++x) {
            if (xb[x] <= xa[x]) { o[x] = nan; continue; }
            if (mode == pool_mode::max) {
                float m = -std::numeric_limits<float>::infinity();
                for (int I = ya[y]; I < yb[y]; ++I) {
                    const float * row = &lv.max[size_t(I) * lv.n_cols];
                    for (int J = xa[x]; J < xb[x]; ++J) m = std::max(m, row[J]);
                }
                o[x] = m;
            } else {
                double s = 0.0, cnt = 0.0, cc = 0.0;
                for (int J = xa[x]; J < xb[x]; ++J) cc += col_count[J];
                for (int I = ya[y]; I < yb[y]; ++I) {
                    const float * row = &lv.sum[size_t(I) * lv.n_cols];
                    for (int J = xa[x]; J < xb[x]; ++J) s += row[J];
                    cnt += lv.rows_in(I) * cc;
                }
                o[x] = cnt > 0 ? float(s / cnt) : nan;
            }
        }
    }
}

// The coarsest level whose cells are no larger than one output pixel
// (tokens_per_px); levels are ordered fine to coarse. -1 when even the finest
// is coarser (the caller should compute exact values for the window).
inline int lod_pick_level(const std::vector<int> & factors, double tokens_per_px) {
    int best = -1;
    for (size_t i = 0; i < factors.size(); ++i) {
        if (factors[i] <= tokens_per_px + 1e-9) best = int(i);
    }
    return best;
}

// ---- the Poincaré disk (hyperbolic view) ----
//
// Points are complex numbers with |z| < 1 (curvature -1).

using disk_pt = std::complex<double>;

// Möbius translation z -> (z - a) / (1 - conj(a) z): an isometry of the disk
// that moves a to the origin (a = -b moves the origin to b).
inline disk_pt mobius_translate(disk_pt z, disk_pt a) { return (z - a) / (1.0 - std::conj(a) * z); }

// The isometry that carries `from` to `to` (the view drag): from -> 0 -> to.
inline disk_pt mobius_drag(disk_pt z, disk_pt from, disk_pt to) {
    return mobius_translate(mobius_translate(z, from), -to);
}

// Hyperbolic distance in the disk: arcosh(1 + 2|a - b|^2 / ((1 - |a|^2)(1 - |b|^2))).
inline double disk_distance(disk_pt a, disk_pt b) {
    double t = 2.0 * std::norm(a - b) / ((1.0 - std::norm(a)) * (1.0 - std::norm(b)));
    return std::log1p(t + std::sqrt(t * (t + 2.0)));
}

// The geodesic from a to b sampled at n + 1 points (a first, b last): an arc
// of the circle through a and b orthogonal to the unit circle, or the straight
// segment when a, b and the origin are collinear (a diameter).
// The orthogonal circle's centre c satisfies 2 c.a = 1 + |a|^2 and
// 2 c.b = 1 + |b|^2 (from |c - a| = r and |c|^2 = r^2 + 1).
inline std::vector<disk_pt> disk_geodesic(disk_pt a, disk_pt b, int n = 32) {
    n = std::max(1, n);
    std::vector<disk_pt> out;
    out.reserve(size_t(n) + 1);
    const double det = 2.0 * (a.real() * b.imag() - a.imag() * b.real());
    const double ra = 1.0 + std::norm(a), rb = 1.0 + std::norm(b);
    // Nearly collinear with the origin: the centre runs off to infinity and
    // the arc is a straight line to within float precision.
    if (std::fabs(det) < 1e-9 * (1.0 + std::abs(a) + std::abs(b)) || std::abs(a - b) < 1e-12) {
        for (int i = 0; i <= n; ++i) out.push_back(a + (b - a) * (double(i) / n));
        return out;
    }
    const disk_pt c((ra * b.imag() - rb * a.imag()) / det, (a.real() * rb - b.real() * ra) / det);
    const double r = std::abs(a - c);
    const double t0 = std::arg(a - c);
    double dt = std::arg(b - c) - t0;
    // The arc inside the disk subtends less than pi at the centre.
    while (dt > M_PI) dt -= 2 * M_PI;
    while (dt <= -M_PI) dt += 2 * M_PI;
    for (int i = 0; i <= n; ++i) out.push_back(c + std::polar(r, t0 + dt * double(i) / n));
    out.front() = a;
    out.back() = b;
    return out;
}

// ---- linear interpolation on measured points (trade-offs slider) ----

// y at x on the polyline through (xs[i], ys[i]) sorted by x. `status`: 0 when
// x is within tol of a measured x (that point's y), 1 interpolated between two
// measured points, -1 outside the measured range (NaN returned).
inline double interp_measured(const std::vector<double> & xs, const std::vector<double> & ys, double x, double tol,
                              int * status) {
    int st = -1;
    double y = std::numeric_limits<double>::quiet_NaN();
    size_t best = 0;
    double bd = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < xs.size(); ++i) {
        if (std::fabs(xs[i] - x) < bd) { bd = std::fabs(xs[i] - x); best = i; }
    }
    if (!xs.empty() && bd <= tol) {
        st = 0;
        y = ys[best];
    } else {
        for (size_t i = 0; i + 1 < xs.size(); ++i) {
            if (x >= xs[i] && x <= xs[i + 1] && xs[i + 1] > xs[i]) {
                double f = (x - xs[i]) / (xs[i + 1] - xs[i]);
                y = ys[i] + f * (ys[i + 1] - ys[i]);
                st = 1;
                break;
            }
        }
    }
    if (status) *status = st;
    return y;
}

} // namespace attnlab_gui
