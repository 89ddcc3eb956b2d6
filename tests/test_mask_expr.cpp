// Mask expressions and the `mask` method against hand-written C++ predicates
// and the fixed patterns they restate.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "attention/selection.h"
#include "base/error.h"
#include "methods/mask_expr.h"
#include "methods/method.h"

using namespace attnlab;

TEST_CASE("mask expressions evaluate like the C++ they spell", "[methods]") {
    struct want {
        const char * text;
        int64_t (*f)(int64_t q, int64_t k, int64_t L);
    };
    const want cases[] = {
        {"k < 4 || d < 256", [](int64_t q, int64_t k, int64_t) -> int64_t { return k < 4 || q - k < 256; }},
        {"d % 64 == 0 || d < 32", [](int64_t q, int64_t k, int64_t) -> int64_t { return (q - k) % 64 == 0 || q - k < 32; }},
        {"q / 128 == k / 128", [](int64_t q, int64_t k, int64_t) -> int64_t { return q / 128 == k / 128; }},
        {"!(k > 10) && q - k * 2 >= -3", [](int64_t q, int64_t k, int64_t) -> int64_t { return !(k > 10) && q - k * 2 >= -3; }},
        {"1 + 2 * 3 - 4 / 2 % 3", [](int64_t, int64_t, int64_t) -> int64_t { return 1 + 2 * 3 - 4 / 2 % 3; }},
        {"-q + --k", [](int64_t q, int64_t k, int64_t) -> int64_t { return -q + k; }},
        {"k >= L - 8 || k <= 2", [](int64_t, int64_t k, int64_t L) -> int64_t { return k >= L - 8 || k <= 2; }},
        {"q != k && (q < k || k == 0)", [](int64_t q, int64_t k, int64_t) -> int64_t { return q != k && (q < k || k == 0); }},
        {"q % 0 + q / 0", [](int64_t, int64_t, int64_t) -> int64_t { return 0; }},   // documented: x / 0 = x % 0 = 0
    };
    std::mt19937 rng(5);
    std::uniform_int_distribution<int64_t> pos(0, 3000);
    for (const want & w : cases) {
        const mask_expr e = mask_expr::compile(w.text);
        for (int t = 0; t < 2000; ++t) {
            const int64_t q = pos(rng), k = pos(rng), L = 3001;
            INFO(w.text << " at q=" << q << " k=" << k);
            REQUIRE(e.eval(q, k, L) == w.f(q, k, L));
        }
    }
}

TEST_CASE("mask expressions refuse bad text with the column", "[methods]") {
    const char * bad[] = {"", "q <", "q = k", "x < 3", "(q < k", "q < k)", "q & k", "99999999999999999999 > q", "q <> k"};
    for (const char * b : bad) {
        INFO(b);
        CHECK_THROWS_AS(mask_expr::compile(b), input_error);
    }
    try {
        mask_expr::compile("q < 4 || y");
        FAIL("no error");
    } catch (const input_error & e) {
        CHECK(std::string(e.what()).find("column 10") != std::string::npos);
        CHECK(e.field() == "expr");
    }
    // nesting and length limits: user input, bounded work
    CHECK_THROWS_AS(mask_expr::compile(std::string(40, '(') + "q" + std::string(40, ')')), input_error);
    CHECK_THROWS_AS(mask_expr::compile(std::string(100, '!') + "q"), input_error);
    std::string longe = "q";
    while (longe.size() <= 512) longe += " + q";
    CHECK_THROWS_AS(mask_expr::compile(longe), input_error);
    CHECK_NOTHROW(mask_expr::compile(std::string(20, '(') + "q" + std::string(20, ')')));
}

TEST_CASE("the mask method selects what sinks_window and strided select", "[methods]") {
    const int L = 700;
    head_inputs in;
    in.n_tokens = L;
    in.head_dim = 8;
    in.causal = true;
    struct pair_t {
        const char * mask, * fixed;
    };
    // symmetric forms: the fixed patterns' windows are |q - k| < w on non-causal heads
    for (const pair_t & p : {pair_t{"mask:expr=k < 4 || (d < 100 && d > -100)", "sinks_window:g=4,w=100"},
                             pair_t{"mask:expr=d % 64 == 0 || (d < 16 && -d < 16)", "strided:m=64,w=16"},
                             pair_t{"mask:expr=d < 32 && d > -32,B=128", "window:w=32,B=128"}}) {
        auto m = method_create(p.mask), f = method_create(p.fixed);
        for (const bool causal : {true, false}) {
            in.causal = causal;
            const selection a = m->select(in), b = f->select(in);
            INFO(p.mask << " causal " << causal);
            REQUIRE(selection_check(a).empty());
            CHECK(a.tok_ptr == b.tok_ptr);
            CHECK(a.tok_cols == b.tok_cols);
            CHECK(a.blk_cols == b.blk_cols);
            CHECK(m->select(in).tok_cols == a.tok_cols);   // the kept selection is the same
        }
    }
    // the canonical spec parses back to the same method
    auto m = method_create("mask:expr=k < 4 || d < 100");
    CHECK(method_create(m->spec())->spec() == m->spec());
    CHECK_THROWS_AS(method_create("mask:expr=q <"), input_error);
}
