#include "io/byte_ranges.h"
#include "base/error.h"

#include <algorithm>
#include <numeric>

namespace attnlab {

std::vector<size_t> byte_ranges_disjoint(const std::string & file, const std::vector<byte_range> & ranges) {
    std::vector<size_t> order(ranges.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const byte_range & x = ranges[a];
        const byte_range & y = ranges[b];
        return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
    });
    // The range reaching furthest so far: a later range starting before its
    // end overlaps it (an empty range in between must not hide the overlap).
    const byte_range * reach = nullptr;
    for (size_t k : order) {
        const byte_range & r = ranges[k];
        if (r.begin == r.end) continue;
        if (reach && r.begin < reach->end) {
            throw input_error(file, r.field, "data of tensor \"" + r.name + "\" (bytes " + std::to_string(r.begin) + ".." +
                                                 std::to_string(r.end) + ") overlaps tensor \"" + reach->name + "\" (bytes " +
                                                 std::to_string(reach->begin) + ".." + std::to_string(reach->end) + ")");
        }
        if (!reach || r.end > reach->end) reach = &r;
    }
    return order;
}

} // namespace attnlab
