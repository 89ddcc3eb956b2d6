// Numbers as text (see units.h).
#include "lab/units.h"

#include <cmath>
#include <cstdio>

namespace attnlab {

std::string si_text(double x, const char * unit) {
    const char * pre[] = {"", "k", "M", "G", "T", "P", "E"};
    int k = 0;
    while (std::fabs(x) >= 1000.0 && k < 6) {
        x /= 1000.0;
        k++;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3g %s%s", x, pre[k], unit);
    return buf;
}

std::string pow2_label(double x) {
    const double v = std::pow(2.0, x);
    char buf[64];
    if (v >= 1024 * 1024) std::snprintf(buf, sizeof buf, "%gM", v / (1024 * 1024));
    else if (v >= 1024) std::snprintf(buf, sizeof buf, "%gk", v / 1024);
    else std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

} // namespace attnlab
