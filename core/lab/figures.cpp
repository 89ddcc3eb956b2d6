// PNG figures (see figures.h): a minimal rasteriser (discs stamped along
// lines, filled markers, a 5x7 bitmap font with descenders), axes with
// 1-2-5 ticks, and the sweep's three trade-off figures.
#include "lab/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "base/error.h"
#include "base/png_write.h"

namespace attnlab {

namespace {

// 5 columns x 9 rows per glyph (rows 7-8 are descenders), bit 4 = left
// column; printable ASCII 32..126. Drawn for this file.
const uint8_t k_font[95][9] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // ' '
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04, 0x00, 0x00},  // '!'
    {0x0a, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // '"'
    {0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a, 0x00, 0x00},  // '#'
    {0x04, 0x0f, 0x14, 0x0e, 0x05, 0x1e, 0x04, 0x00, 0x00},  // '$'
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00, 0x00},  // '%'
    {0x0c, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0d, 0x00, 0x00},  // '&'
    {0x04, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // '\''
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00, 0x00},  // '('
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00, 0x00},  // ')'
    {0x00, 0x04, 0x15, 0x0e, 0x15, 0x04, 0x00, 0x00, 0x00},  // '*'
    {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00, 0x00, 0x00},  // '+'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x04, 0x08, 0x00},  // ','
    {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00},  // '-'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c, 0x00, 0x00},  // '.'
    {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10, 0x00, 0x00},  // '/'
    {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e, 0x00, 0x00},  // '0'
    {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00},  // '1'
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f, 0x00, 0x00},  // '2'
    {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e, 0x00, 0x00},  // '3'
    {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02, 0x00, 0x00},  // '4'
    {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e, 0x00, 0x00},  // '5'
    {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e, 0x00, 0x00},  // '6'
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00, 0x00},  // '7'
    {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e, 0x00, 0x00},  // '8'
    {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c, 0x00, 0x00},  // '9'
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00, 0x00, 0x00},  // ':'
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x04, 0x08, 0x00, 0x00},  // ';'
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02, 0x00, 0x00},  // '<'
    {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00},  // '='
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08, 0x00, 0x00},  // '>'
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00, 0x00},  // '?'
    {0x0e, 0x11, 0x01, 0x0d, 0x15, 0x15, 0x0e, 0x00, 0x00},  // '@'
    {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x00, 0x00},  // 'A'
    {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e, 0x00, 0x00},  // 'B'
    {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e, 0x00, 0x00},  // 'C'
    {0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c, 0x00, 0x00},  // 'D'
    {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f, 0x00, 0x00},  // 'E'
    {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10, 0x00, 0x00},  // 'F'
    {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f, 0x00, 0x00},  // 'G'
    {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x00, 0x00},  // 'H'
    {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00},  // 'I'
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c, 0x00, 0x00},  // 'J'
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11, 0x00, 0x00},  // 'K'
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f, 0x00, 0x00},  // 'L'
    {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11, 0x00, 0x00},  // 'M'
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x00, 0x00},  // 'N'
    {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00},  // 'O'
    {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10, 0x00, 0x00},  // 'P'
    {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d, 0x00, 0x00},  // 'Q'
    {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11, 0x00, 0x00},  // 'R'
    {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e, 0x00, 0x00},  // 'S'
    {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00},  // 'T'
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00},  // 'U'
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04, 0x00, 0x00},  // 'V'
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a, 0x00, 0x00},  // 'W'
    {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11, 0x00, 0x00},  // 'X'
    {0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x00, 0x00},  // 'Y'
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f, 0x00, 0x00},  // 'Z'
    {0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e, 0x00, 0x00},  // '['
    {0x10, 0x10, 0x08, 0x04, 0x02, 0x01, 0x01, 0x00, 0x00},  // '\\'
    {0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e, 0x00, 0x00},  // ']'
    {0x04, 0x0a, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // '^'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00},  // '_'
    {0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // '`'
    {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f, 0x00, 0x00},  // 'a'
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e, 0x00, 0x00},  // 'b'
    {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e, 0x00, 0x00},  // 'c'
    {0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f, 0x00, 0x00},  // 'd'
    {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e, 0x00, 0x00},  // 'e'
    {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08, 0x00, 0x00},  // 'f'
    {0x00, 0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x01, 0x0e},  // 'g'
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00},  // 'h'
    {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00},  // 'i'
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c},  // 'j'
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00, 0x00},  // 'k'
    {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00, 0x00},  // 'l'
    {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11, 0x00, 0x00},  // 'm'
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00},  // 'n'
    {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e, 0x00, 0x00},  // 'o'
    {0x00, 0x00, 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10},  // 'p'
    {0x00, 0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x01, 0x01},  // 'q'
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00, 0x00},  // 'r'
    {0x00, 0x00, 0x0f, 0x10, 0x0e, 0x01, 0x1e, 0x00, 0x00},  // 's'
    {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06, 0x00, 0x00},  // 't'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d, 0x00, 0x00},  // 'u'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04, 0x00, 0x00},  // 'v'
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a, 0x00, 0x00},  // 'w'
    {0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x00, 0x00},  // 'x'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x01, 0x0e},  // 'y'
    {0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f, 0x00, 0x00},  // 'z'
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02, 0x00, 0x00},  // '{'
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00},  // '|'
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08, 0x00, 0x00},  // '}'
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00, 0x00, 0x00},  // '~'
};

constexpr int k_glyph_w = 5, k_glyph_h = 9, k_advance = 6;

struct canvas {
    int w = 0, h = 0;
    std::vector<uint8_t> rgb;
    int cx0 = 0, cy0 = 0, cx1 = 0, cy1 = 0;   // clip rectangle, inclusive

    canvas(int w_, int h_, uint32_t bg) : w(w_), h(h_), rgb(size_t(w_) * h_ * 3) {
        for (size_t i = 0; i < size_t(w) * h; ++i) {
            rgb[3 * i] = uint8_t(bg >> 16);
            rgb[3 * i + 1] = uint8_t(bg >> 8);
            rgb[3 * i + 2] = uint8_t(bg);
        }
        clip_all();
    }
    void clip_all() { cx0 = 0, cy0 = 0, cx1 = w - 1, cy1 = h - 1; }
    void clip(int x0, int y0, int x1, int y1) { cx0 = x0, cy0 = y0, cx1 = x1, cy1 = y1; }

    void px(int x, int y, uint32_t c) {
        if (x < cx0 || x > cx1 || y < cy0 || y > cy1) return;
        uint8_t * p = &rgb[(size_t(y) * w + x) * 3];
        p[0] = uint8_t(c >> 16);
        p[1] = uint8_t(c >> 8);
        p[2] = uint8_t(c);
    }
    void rect(int x0, int y0, int x1, int y1, uint32_t c) {
        for (int y = y0; y <= y1; ++y) {
            for (int x = x0; x <= x1; ++x) px(x, y, c);
        }
    }
    void disc(double cx, double cy, double r, uint32_t c) {
        const int x0 = int(std::floor(cx - r)), x1 = int(std::ceil(cx + r));
        const int y0 = int(std::floor(cy - r)), y1 = int(std::ceil(cy + r));
        for (int y = y0; y <= y1; ++y) {
            for (int x = x0; x <= x1; ++x) {
                const double dx = x - cx, dy = y - cy;
                if (dx * dx + dy * dy <= r * r + 0.25) px(x, y, c);
            }
        }
    }
    // Thick line: discs stamped every half pixel (round caps and joins);
    // dashed lines skip 5 of every 13 pixels of length.
    void line(double x0, double y0, double x1, double y1, int width, uint32_t c, bool dashed = false) {
        const double len = std::hypot(x1 - x0, y1 - y0);
        const int steps = std::max(1, int(len * 2));
        const double r = std::max(0.5, width / 2.0 - 0.25);
        for (int i = 0; i <= steps; ++i) {
            const double t = double(i) / steps;
            if (dashed && std::fmod(t * len, 13.0) > 8.0) continue;
            if (width <= 1) px(int(std::lround(x0 + t * (x1 - x0))), int(std::lround(y0 + t * (y1 - y0))), c);
            else disc(x0 + t * (x1 - x0), y0 + t * (y1 - y0), r, c);
        }
    }
    void marker(double x, double y, plot_marker m, int s, uint32_t c) {
        switch (m) {
            case plot_marker::none: return;
            case plot_marker::circle:
                disc(x, y, s + 1, 0xFFFFFF);
                disc(x, y, s, c);
                return;
            case plot_marker::square:
                rect(int(x) - s - 1, int(y) - s - 1, int(x) + s + 1, int(y) + s + 1, 0xFFFFFF);
                rect(int(x) - s, int(y) - s, int(x) + s, int(y) + s, c);
                return;
            case plot_marker::triangle:
            case plot_marker::diamond: {
                const double r = s + 1.5;
                for (int yy = int(y - r - 1); yy <= int(y + r + 1); ++yy) {
                    for (int xx = int(x - r - 1); xx <= int(x + r + 1); ++xx) {
                        const double dx = xx - x, dy = yy - y;
                        bool in, edge;
                        if (m == plot_marker::diamond) {
                            in = std::fabs(dx) + std::fabs(dy) <= r;
                            edge = std::fabs(dx) + std::fabs(dy) <= r + 1.5;
                        } else {
                            // apex up: |dx| <= (dy + r) / 2 for dy in [-r, r]
                            in = dy >= -r && dy <= r * 0.8 && std::fabs(dx) <= (dy + r) * 0.62;
                            edge = dy >= -r - 1.5 && dy <= r * 0.8 + 1.2 && std::fabs(dx) <= (dy + r + 1.5) * 0.62 + 0.8;
                        }
                        if (in) px(xx, yy, c);
                        else if (edge) px(xx, yy, 0xFFFFFF);
                    }
                }
                return;
            }
        }
    }
    // Text at (x, y) = top-left, `s` pixels per font pixel; vertical text
    // runs bottom to top from (x, y) = bottom-left.
    void text(int x, int y, const std::string & str, uint32_t c, int s = 2, bool vertical = false) {
        int ox = 0;
        for (unsigned char ch : str) {
            const int g = (ch >= 32 && ch < 127) ? ch - 32 : '?' - 32;
            for (int row = 0; row < k_glyph_h; ++row) {
                for (int col = 0; col < k_glyph_w; ++col) {
                    if (!(k_font[g][row] & (0x10 >> col))) continue;
                    for (int a = 0; a < s; ++a) {
                        for (int b = 0; b < s; ++b) {
                            if (vertical) px(x + row * s + a, y - (ox + col * s + b), c);
                            else px(x + ox + col * s + b, y + row * s + a, c);
                        }
                    }
                }
            }
            ox += k_advance * s;
        }
    }
};

int text_width(const std::string & s, int scale) { return s.empty() ? 0 : int(s.size()) * k_advance * scale - scale; }

std::string fmt_g(double v) {
    if (std::fabs(v) < 1e-12) return "0";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

double nice_step(double range, int target) {
    const double raw = range / std::max(1, target);
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / p;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

std::vector<double> linear_ticks(double lo, double hi, int target) {
    std::vector<double> t;
    const double step = nice_step(hi - lo, target);
    for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    return t;
}

std::vector<double> log_ticks(double lo, double hi) {
    std::vector<double> t;
    for (int k = int(std::floor(std::log10(lo))) - 1; k <= int(std::ceil(std::log10(hi))); ++k) {
        for (double m : {1.0, 2.0, 5.0}) {
            const double v = m * std::pow(10.0, k);
            if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t.push_back(v);
        }
    }
    if (t.size() < 3) {   // a narrow log range: plain ticks read better
        t.clear();
        for (double v : linear_ticks(lo, hi, 5)) {
            if (v > 0) t.push_back(v);
        }
    }
    return t;
}

} // namespace

uint32_t plot_palette(int i) {
    // Distinct on white, readable for most colour-vision types first.
    static const uint32_t pal[] = {0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e, 0x9467bd, 0x8c564b,
                                   0xe377c2, 0x17becf, 0x7f7f7f, 0xbcbd22, 0x000080, 0x800000};
    return pal[size_t(i) % (sizeof pal / sizeof pal[0])];
}

plot_area plot_write_png(const std::string & path, const plot_spec & sp) {
    const int W = std::max(320, sp.width), H = std::max(240, sp.height);
    canvas cv(W, H, k_plot_background);
    const int fs = 2;   // font scale
    const int line_h = k_glyph_h * fs;

    // Data ranges.
    double xmin = HUGE_VAL, xmax = -HUGE_VAL, ymin = HUGE_VAL, ymax = -HUGE_VAL;
    for (const auto & s : sp.series) {
        for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
            if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (sp.y_log && s.y[i] <= 0)) continue;
            xmin = std::min(xmin, s.x[i]);
            xmax = std::max(xmax, s.x[i]);
            ymin = std::min(ymin, s.y[i]);
            ymax = std::max(ymax, s.y[i]);
        }
    }
    if (xmin > xmax) xmin = 0, xmax = 1;
    if (ymin > ymax) ymin = sp.y_log ? 1 : 0, ymax = sp.y_log ? 10 : 1;
    if (xmax - xmin < 1e-12) xmin -= 0.5, xmax += 0.5;
    if (sp.y_log) {
        if (ymax / ymin < 1.0001) ymin /= 1.1, ymax *= 1.1;
        const double r = std::log10(ymax / ymin);
        ymin /= std::pow(10.0, 0.05 * r);
        ymax *= std::pow(10.0, 0.05 * r);
    } else {
        if (ymax - ymin < 1e-12) ymin -= 0.5, ymax += 0.5;
        const double pad = 0.05 * (ymax - ymin);
        ymin -= pad, ymax += pad;
    }
    const double xpad = 0.04 * (xmax - xmin);
    xmin -= xpad, xmax += xpad;
    if (std::isfinite(sp.x_min)) xmin = sp.x_min;
    if (std::isfinite(sp.x_max)) xmax = sp.x_max;
    if (std::isfinite(sp.y_min)) ymin = sp.y_min;
    if (std::isfinite(sp.y_max)) ymax = sp.y_max;

    const auto xf = sp.x_format ? sp.x_format : std::function<std::string(double)>(fmt_g);
    const auto yf = sp.y_format ? sp.y_format : std::function<std::string(double)>(fmt_g);
    const std::vector<double> xt = linear_ticks(xmin, xmax, 8);
    const std::vector<double> yt = sp.y_log ? log_ticks(ymin, ymax) : linear_ticks(ymin, ymax, 7);

    // Layout: title and note on top, y tick labels and y label on the left,
    // legend column on the right.
    int ytw = 0;
    for (double v : yt) ytw = std::max(ytw, text_width(yf(v), fs));
    int legend_w = 0;
    for (const auto & s : sp.series) {
        if (!s.label.empty()) legend_w = std::max(legend_w, 40 + text_width(s.label, fs));
    }
    plot_area a;
    a.x0 = 16 + line_h + 12 + ytw + 10;
    a.y0 = 16 + line_h + (sp.note.empty() ? 0 : line_h + 4) + 18;
    a.x1 = W - 24 - (legend_w ? legend_w + 28 : 0);
    a.y1 = H - (16 + line_h + 12 + line_h + 12);
    if (a.x1 - a.x0 < 100 || a.y1 - a.y0 < 80) throw input_error(path, "figure", "image too small for its labels");

    const auto X = [&](double v) { return a.x0 + (v - xmin) / (xmax - xmin) * (a.x1 - a.x0); };
    const auto Y = [&](double v) {
        const double f = sp.y_log ? std::log10(v / ymin) / std::log10(ymax / ymin) : (v - ymin) / (ymax - ymin);
        return a.y1 - f * (a.y1 - a.y0);
    };

    // Title and note (cut with "..." rather than run off the image).
    const auto fit = [&](std::string s) {
        const size_t max_chars = size_t(std::max(4, (W - 20) / (k_advance * fs)));
        if (s.size() > max_chars) s = s.substr(0, max_chars - 3) + "...";
        return s;
    };
    const std::string title = fit(sp.title), note = fit(sp.note);
    cv.text((W - text_width(title, fs)) / 2, 14, title, 0x000000, fs);
    if (!note.empty()) cv.text((W - text_width(note, fs)) / 2, 14 + line_h + 4, note, 0x555555, fs);

    // Grid, ticks and tick labels.
    for (double v : xt) {
        const int x = int(std::lround(X(v)));
        if (x < a.x0 || x > a.x1) continue;
        cv.line(x, a.y0, x, a.y1, 1, 0xE4E4E4);
        cv.line(x, a.y1, x, a.y1 + 6, 1, 0x000000);
        const std::string s = xf(v);
        cv.text(x - text_width(s, fs) / 2, a.y1 + 10, s, 0x000000, fs);
    }
    for (double v : yt) {
        const int y = int(std::lround(Y(v)));
        if (y < a.y0 || y > a.y1) continue;
        cv.line(a.x0, y, a.x1, y, 1, 0xE4E4E4);
        cv.line(a.x0 - 6, y, a.x0, y, 1, 0x000000);
        const std::string s = yf(v);
        cv.text(a.x0 - 10 - text_width(s, fs), y - (7 * fs) / 2, s, 0x000000, fs);
    }
    // Frame.
    cv.line(a.x0, a.y0, a.x1, a.y0, 1, 0x000000);
    cv.line(a.x0, a.y1, a.x1, a.y1, 1, 0x000000);
    cv.line(a.x0, a.y0, a.x0, a.y1, 1, 0x000000);
    cv.line(a.x1, a.y0, a.x1, a.y1, 1, 0x000000);
    // Axis labels.
    cv.text((a.x0 + a.x1 - text_width(sp.x_label, fs)) / 2, a.y1 + 10 + line_h + 10, sp.x_label, 0x000000, fs);
    cv.text(16, (a.y0 + a.y1 + text_width(sp.y_label, fs)) / 2, sp.y_label, 0x000000, fs, true);

    // Data, clipped to the plot area: lines first, then markers on top.
    cv.clip(a.x0 + 1, a.y0 + 1, a.x1 - 1, a.y1 - 1);
    const auto ok = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!sp.y_log || y > 0); };
    for (const auto & s : sp.series) {
        if (!s.lines) continue;
        const size_t n = std::min(s.x.size(), s.y.size());
        for (size_t i = 1; i < n; ++i) {
            if (!ok(s.x[i - 1], s.y[i - 1]) || !ok(s.x[i], s.y[i])) continue;
            cv.line(X(s.x[i - 1]), Y(s.y[i - 1]), X(s.x[i]), Y(s.y[i]), s.line_width, s.color, s.dashed);
        }
    }
    for (const auto & s : sp.series) {
        const size_t n = std::min(s.x.size(), s.y.size());
        for (size_t i = 0; i < n; ++i) {
            if (ok(s.x[i], s.y[i])) cv.marker(X(s.x[i]), Y(s.y[i]), s.marker, s.marker_size, s.color);
        }
    }
    cv.clip_all();

    // Legend.
    if (legend_w) {
        int n = 0;
        for (const auto & s : sp.series) n += !s.label.empty();
        const int lx = a.x1 + 20, ly = a.y0, row_h = line_h + 10;
        cv.rect(lx - 8, ly - 8, W - 8, ly + n * row_h + 2, 0xF6F6F6);
        int k = 0;
        for (const auto & s : sp.series) {
            if (s.label.empty()) continue;
            const int cy = ly + k * row_h + line_h / 2;
            if (s.lines) cv.line(lx, cy, lx + 28, cy, s.line_width, s.color, s.dashed);
            cv.marker(lx + 14, cy, s.marker, std::min(s.marker_size, 5), s.color);
            cv.text(lx + 38, cy - (7 * fs) / 2, s.label, 0x000000, fs);
            k++;
        }
    }

    png_write_rgb(path, W, H, cv.rgb.data());
    return a;
}

// ---- the sweep's figures ----

std::vector<std::string> sweep_write_figures(const std::string & dir, const std::vector<sweep_row> & rows) {
    std::vector<std::string> written;
    std::set<int> ctxs;
    for (const auto & r : rows) ctxs.insert(r.ctx);
    // Methods in first-seen order, each with a fixed colour and marker.
    std::vector<std::string> names;
    for (const auto & r : rows) {
        if (std::find(names.begin(), names.end(), r.method_name) == names.end()) names.push_back(r.method_name);
    }
    const auto style = [&](const std::string & name, plot_series & s) {
        const int i = int(std::find(names.begin(), names.end(), name) - names.begin());
        // 12 colours x 4 markers: the marker shifts each time the colours
        // wrap, so up to 48 methods get distinct (colour, marker) pairs.
        s.color = plot_palette(i);
        s.marker = plot_marker((i + i / 12) % 4);
        s.label = name;
    };
    const auto pct = [](double v) {
        char b[32];
        const double p = (v - 1.0) * 100.0;
        std::snprintf(b, sizeof b, std::fabs(p) < 10 ? "%+.1f%%" : "%+.0f%%", p);
        return std::string(b);
    };
    for (int ctx : ctxs) {
        std::vector<const sweep_row *> rs;
        for (const auto & r : rows) {
            if (r.ctx == ctx) rs.push_back(&r);
        }
        if (rs.empty()) continue;
        const std::string tag = "_ctx" + std::to_string(ctx);
        const std::string where = "ctx " + std::to_string(ctx) + ", " + rs[0]->text_spec + ", " +
                                  std::to_string(rs[0]->tokens) + " tokens, " + rs[0]->model_id;

        // 1. perplexity (as a ratio to dense, labelled as % change) vs block density.
        {
            plot_spec p;
            p.title = "Perplexity change vs block density";
            p.note = where;
            p.x_label = "block density (kept blocks / causal blocks)";
            p.y_label = "perplexity change vs dense";
            std::vector<double> fx, fy;
            double rmax = 1.0;
            for (const auto & n : names) {
                plot_series s;
                style(n, s);
                std::vector<std::pair<double, double>> pts;
                for (const sweep_row * r : rs) {
                    if (r->method_name != n || !(r->ppl_dense > 0)) continue;
                    pts.push_back({r->block_density, r->ppl / r->ppl_dense});
                }
                std::sort(pts.begin(), pts.end());
                for (const auto & q : pts) {
                    s.x.push_back(q.first);
                    s.y.push_back(q.second);
                    fx.push_back(q.first);
                    fy.push_back(q.second);
                    rmax = std::max(rmax, q.second);
                }
                if (!s.x.empty()) p.series.push_back(s);
            }
            plot_series front;
            front.label = "Pareto front";
            front.color = 0x000000;
            front.dashed = true;
            front.line_width = 2;
            front.marker = plot_marker::none;
            for (int i : pareto_front(fx, fy)) {
                front.x.push_back(fx[size_t(i)]);
                front.y.push_back(fy[size_t(i)]);
            }
            p.series.insert(p.series.begin(), front);
            p.y_log = rmax > 3.0;   // fixed patterns can be off by far more than the good methods
            p.y_format = pct;
            p.x_min = 0.0;
            p.x_max = 1.05;
            const std::string path = dir + "/ppl_vs_block_density" + tag + ".png";
            plot_write_png(path, p);
            written.push_back(path);
        }
        // 2. mass recall vs token density.
        {
            plot_spec p;
            p.title = "Attention-mass recall vs token density (first window, mean over heads)";
            p.note = where;
            p.x_label = "token density (selected pairs / causal pairs)";
            p.y_label = "mass recall";
            for (const auto & n : names) {
                plot_series s;
                style(n, s);
                std::vector<std::pair<double, double>> pts;
                for (const sweep_row * r : rs) {
                    if (r->method_name == n && r->mass_recall >= 0) pts.push_back({r->token_density, r->mass_recall});
                }
                std::sort(pts.begin(), pts.end());
                for (const auto & q : pts) {
                    s.x.push_back(q.first);
                    s.y.push_back(q.second);
                }
                if (!s.x.empty()) p.series.push_back(s);
            }
            p.x_min = 0.0;
            p.x_max = 1.05;
            p.y_min = 0.0;
            p.y_max = 1.04;
            const std::string path = dir + "/recall_vs_density" + tag + ".png";
            plot_write_png(path, p);
            written.push_back(path);
        }
        // 3. per-layer block density: one line per method, at the density
        //    closest to 0.2 for methods with a density key.
        {
            plot_spec p;
            p.title = "Block density per layer (rows nearest density 0.2)";
            p.note = where;
            p.x_label = "layer";
            p.y_label = "block density";
            for (const auto & n : names) {
                const sweep_row * best = nullptr;
                for (const sweep_row * r : rs) {
                    if (r->method_name != n || r->layer_block_density.empty()) continue;
                    if (!best || std::fabs(r->density_set - 0.2) < std::fabs(best->density_set - 0.2)) best = r;
                }
                if (!best) continue;
                plot_series s;
                style(n, s);
                if (best->density_set > 0) s.label = n + " " + fmt_g(best->density_set);
                s.marker_size = 4;
                for (size_t l = 0; l < best->layer_block_density.size(); ++l) {
                    s.x.push_back(double(l));
                    s.y.push_back(best->layer_block_density[l]);
                }
                p.series.push_back(s);
            }
            p.y_min = 0.0;
            p.y_max = 1.04;
            const std::string path = dir + "/layer_density" + tag + ".png";
            plot_write_png(path, p);
            written.push_back(path);
        }
    }
    return written;
}

} // namespace attnlab
