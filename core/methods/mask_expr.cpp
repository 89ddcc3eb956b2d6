// Mask expressions (mask_expr.h): a recursive-descent parser to postfix code,
// and a stack evaluator.
#include "methods/mask_expr.h"

#include <cctype>
#include <limits>

#include "base/error.h"

namespace attnlab {

namespace {

constexpr size_t k_max_length = 512;
constexpr int k_max_depth = 32;

struct parser {
    const std::string & s;
    size_t p = 0;
    int depth = 0;
    std::vector<mask_expr::instr> out;

    [[noreturn]] void fail(const std::string & msg) const {
        throw input_error(s, "expr", msg + " at column " + std::to_string(p + 1));
    }
    void skip() {
        while (p < s.size() && std::isspace((unsigned char) s[p])) ++p;
    }
    bool eat(const char * tok) {
        skip();
        size_t n = 0;
        while (tok[n]) ++n;
        if (s.compare(p, n, tok) != 0) return false;
        // "<" must not eat the start of "<=", "|" alone is not "||"
        if (n == 1 && p + 1 < s.size() && (tok[0] == '<' || tok[0] == '>' || tok[0] == '!') && s[p + 1] == '=') return false;
        p += n;
        return true;
    }
    void emit(mask_expr::op o, int64_t v = 0) { out.push_back({o, v}); }

    // Each level: operand (op operand)*, left-associative.
    void expr_or() {
        expr_and();
        while (eat("||")) {
            expr_and();
            emit(mask_expr::op::lor);
        }
    }
    void expr_and() {
        expr_eq();
        while (eat("&&")) {
            expr_eq();
            emit(mask_expr::op::land);
        }
    }
    void expr_eq() {
        expr_rel();
        for (;;) {
            if (eat("==")) { expr_rel(); emit(mask_expr::op::eq); }
            else if (eat("!=")) { expr_rel(); emit(mask_expr::op::ne); }
            else return;
        }
    }
    void expr_rel() {
        expr_add();
        for (;;) {
            if (eat("<=")) { expr_add(); emit(mask_expr::op::le); }
            else if (eat(">=")) { expr_add(); emit(mask_expr::op::ge); }
            else if (eat("<")) { expr_add(); emit(mask_expr::op::lt); }
            else if (eat(">")) { expr_add(); emit(mask_expr::op::gt); }
            else return;
        }
    }
    void expr_add() {
        expr_mul();
        for (;;) {
            if (eat("+")) { expr_mul(); emit(mask_expr::op::add); }
            else if (eat("-")) { expr_mul(); emit(mask_expr::op::sub); }
            else return;
        }
    }
    void expr_mul() {
        expr_unary();
        for (;;) {
            if (eat("*")) { expr_unary(); emit(mask_expr::op::mul); }
            else if (eat("/")) { expr_unary(); emit(mask_expr::op::div); }
            else if (eat("%")) { expr_unary(); emit(mask_expr::op::mod); }
            else return;
        }
    }
    void expr_unary() {
        if (++depth > k_max_depth) fail("nesting deeper than " + std::to_string(k_max_depth));
        if (eat("!")) {
            expr_unary();
            emit(mask_expr::op::lnot);
        } else if (eat("-")) {
            expr_unary();
            emit(mask_expr::op::neg);
        } else {
            primary();
        }
        --depth;
    }
    void primary() {
        skip();
        if (p >= s.size()) fail("expected a value");
        const char c = s[p];
        if (c == '(') {
            ++p;
            expr_or();
            if (!eat(")")) fail("expected ')'");
            return;
        }
        if (std::isdigit((unsigned char) c)) {
            int64_t v = 0;
            while (p < s.size() && std::isdigit((unsigned char) s[p])) {
                const int dgt = s[p] - '0';
                if (v > (std::numeric_limits<int64_t>::max() - dgt) / 10) fail("number too large");
                v = v * 10 + dgt;
                ++p;
            }
            emit(mask_expr::op::lit, v);
            return;
        }
        if (std::isalpha((unsigned char) c) || c == '_') {
            const size_t b = p;
            while (p < s.size() && (std::isalnum((unsigned char) s[p]) || s[p] == '_')) ++p;
            const std::string id = s.substr(b, p - b);
            if (id == "q") emit(mask_expr::op::q);
            else if (id == "k") emit(mask_expr::op::k);
            else if (id == "d") emit(mask_expr::op::d);
            else if (id == "L") emit(mask_expr::op::L);
            else {
                p = b;
                fail("unknown name '" + id + "' (use q, k, d = q - k, L)");
            }
            return;
        }
        fail(std::string("unexpected '") + c + "'");
    }
};

} // namespace

mask_expr mask_expr::compile(const std::string & text) {
    if (text.size() > k_max_length)
        throw input_error(text.substr(0, 40) + "...", "expr", "longer than " + std::to_string(k_max_length) + " characters");
    parser ps{text};
    ps.expr_or();
    ps.skip();
    if (ps.p != text.size()) ps.fail("unexpected text");
    if (ps.out.empty()) ps.fail("empty expression");
    mask_expr e;
    e.text_ = text;
    e.prog_ = std::move(ps.out);
    int depth = 0;
    for (const instr & in : e.prog_) {
        const bool operand = in.o == op::lit || in.o == op::q || in.o == op::k || in.o == op::d || in.o == op::L;
        const bool unary = in.o == op::neg || in.o == op::lnot;
        depth += operand ? 1 : unary ? 0 : -1;
        e.max_stack_ = std::max(e.max_stack_, depth);
    }
    return e;
}

int64_t mask_expr::eval(int64_t q, int64_t k, int64_t L) const {
    // max_stack_ <= program length <= 512 (one instruction per character at most)
    int64_t st[k_max_length + 1];
    int n = 0;
    // wrapping arithmetic: no undefined behaviour on overflow
    auto wrap = [](uint64_t x) { return (int64_t) x; };
    for (const instr & in : prog_) {
        switch (in.o) {
        case op::lit: st[n++] = in.v; break;
        case op::q: st[n++] = q; break;
        case op::k: st[n++] = k; break;
        case op::d: st[n++] = q - k; break;
        case op::L: st[n++] = L; break;
        case op::neg: st[n - 1] = wrap(0 - (uint64_t) st[n - 1]); break;
        case op::lnot: st[n - 1] = !st[n - 1]; break;
        default: {
            const int64_t b = st[--n], a = st[n - 1];
            int64_t r = 0;
            switch (in.o) {
            case op::mul: r = wrap((uint64_t) a * (uint64_t) b); break;
            case op::div: r = (b == 0 || (a == std::numeric_limits<int64_t>::min() && b == -1)) ? 0 : a / b; break;
            case op::mod: r = (b == 0 || b == -1) ? 0 : a % b; break;
            case op::add: r = wrap((uint64_t) a + (uint64_t) b); break;
            case op::sub: r = wrap((uint64_t) a - (uint64_t) b); break;
            case op::lt: r = a < b; break;
            case op::le: r = a <= b; break;
            case op::gt: r = a > b; break;
            case op::ge: r = a >= b; break;
            case op::eq: r = a == b; break;
            case op::ne: r = a != b; break;
            case op::land: r = a && b; break;
            case op::lor: r = a || b; break;
            default: break;
            }
            st[n - 1] = r;
        }
        }
    }
    return st[0];
}

} // namespace attnlab
