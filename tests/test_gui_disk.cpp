// The hyperbolic view's disk math (app/gui/plot_math.h): geodesic arcs,
// Möbius translations and measured-point interpolation, checked against
// core's Poincaré distance (core/graph/poincare.h) and brute force.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "../app/gui/plot_math.h"
#include "graph/poincare.h"

using namespace attnlab_gui;

namespace {

double core_dist(disk_pt a, disk_pt b) {
    const double x[2] = {a.real(), a.imag()}, y[2] = {b.real(), b.imag()};
    return attnlab::poincare_dist2(x, y);
}

disk_pt random_point(std::mt19937 & g, double rmax = 0.95) {
    std::uniform_real_distribution<double> u(-1, 1);
    for (;;) {
        disk_pt z(u(g), u(g));
        if (std::abs(z) < rmax) return z;
    }
}

} // namespace

TEST_CASE("disk distance matches core's Poincaré distance", "[gui]") {
    std::mt19937 g(7);
    for (int t = 0; t < 200; ++t) {
        disk_pt a = random_point(g), b = random_point(g);
        CHECK(disk_distance(a, b) == Approx(core_dist(a, b)).epsilon(1e-9).margin(1e-12));
    }
}

TEST_CASE("geodesic arcs are orthogonal to the boundary and shortest", "[gui]") {
    std::mt19937 g(11);
    for (int t = 0; t < 200; ++t) {
        disk_pt a = random_point(g), b = random_point(g);
        const int n = 400;
        std::vector<disk_pt> pts = disk_geodesic(a, b, n);
        REQUIRE(pts.size() == size_t(n + 1));
        CHECK(std::abs(pts.front() - a) < 1e-12);
        CHECK(std::abs(pts.back() - b) < 1e-12);
        // Inside the disk, and the path length (sum of small hyperbolic steps,
        // core's formula) equals the distance: only the geodesic achieves it.
        double len = 0;
        for (int i = 0; i < n; ++i) {
            CHECK(std::abs(pts[i]) < 1.0);
            len += core_dist(pts[i], pts[i + 1]);
        }
        CHECK(len == Approx(core_dist(a, b)).epsilon(1e-4));
        // Points are evenly spaced along the arc, so an off-geodesic curve
        // (e.g. the straight chord) would fail the length check by far more.
        disk_pt mid = pts[n / 2];
        CHECK(core_dist(a, mid) + core_dist(mid, b) == Approx(core_dist(a, b)).epsilon(1e-9));
    }
    // The chord is not a geodesic off the diameter: its midpoint is longer.
    disk_pt a(0.5, 0.5), b(0.5, -0.5);
    disk_pt chord_mid = 0.5 * (a + b);
    CHECK(core_dist(a, chord_mid) + core_dist(chord_mid, b) > core_dist(a, b) * 1.01);
    // Through the origin: a straight diameter.
    std::vector<disk_pt> d = disk_geodesic(disk_pt(-0.6, 0), disk_pt(0.3, 0), 9);
    for (auto & p : d) CHECK(std::fabs(p.imag()) < 1e-12);
}

TEST_CASE("Möbius translations are isometries that move a to the origin", "[gui]") {
    std::mt19937 g(3);
    for (int t = 0; t < 200; ++t) {
        disk_pt a = random_point(g, 0.9), x = random_point(g), y = random_point(g);
        CHECK(std::abs(mobius_translate(a, a)) < 1e-12);
        disk_pt tx = mobius_translate(x, a), ty = mobius_translate(y, a);
        CHECK(std::abs(tx) < 1.0);
        CHECK(core_dist(tx, ty) == Approx(core_dist(x, y)).epsilon(1e-7));
        // The drag carries `from` exactly onto `to` and keeps distances.
        disk_pt from = random_point(g, 0.9), to = random_point(g, 0.9);
        CHECK(std::abs(mobius_drag(from, from, to) - to) < 1e-12);
        CHECK(core_dist(mobius_drag(x, from, to), mobius_drag(y, from, to)) == Approx(core_dist(x, y)).epsilon(1e-7));
    }
}

TEST_CASE("interpolation on measured points says measured, interpolated or outside", "[gui]") {
    std::vector<double> xs{0.1, 0.2, 0.4}, ys{10, 20, 0};
    int st = 9;
    CHECK(interp_measured(xs, ys, 0.2, 1e-3, &st) == 20);
    CHECK(st == 0);
    CHECK(interp_measured(xs, ys, 0.3, 1e-3, &st) == Approx(10));
    CHECK(st == 1);
    CHECK(interp_measured(xs, ys, 0.15, 1e-3, &st) == Approx(15));
    CHECK(st == 1);
    CHECK(std::isnan(interp_measured(xs, ys, 0.5, 1e-3, &st)));
    CHECK(st == -1);
    CHECK(std::isnan(interp_measured({}, {}, 0.5, 1e-3, &st)));
    CHECK(st == -1);
}
