#pragma once
// Mask expressions: a boolean formula over query position q, key position k,
// their distance d = q - k and the length L, such as `k < 4 || d < 256`, the
// way attention-gym writes a mask_mod, compiled once and evaluated per pair.
//
// Grammar (C precedence, lowest first):  || ; && ; == != ; < <= > >= ; + - ;
// * / % ; unary ! - ; a 64-bit integer literal, q, k, d, L, or ( expr ).
// Integer arithmetic in 64 bits (x / 0 and x % 0 are 0); any non-zero value
// is true. Causality is the selection's (pairs with k > q are never kept on
// a causal head), not the expression's. At most 512 characters and 32 levels
// of nesting: a spec is user input.
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

class mask_expr {
public:
    // Throws input_error(text, "expr", message with the offending column).
    static mask_expr compile(const std::string & text);
    int64_t eval(int64_t q, int64_t k, int64_t L) const;
    bool keeps(int64_t q, int64_t k, int64_t L) const { return eval(q, k, L) != 0; }
    const std::string & text() const { return text_; }

    // Postfix program: operands pushed, operators pop (for the evaluator).
    enum class op : uint8_t { lit, q, k, d, L, neg, lnot, mul, div, mod, add, sub, lt, le, gt, ge, eq, ne, land, lor };
    struct instr {
        op o;
        int64_t v = 0;
    };

private:
    std::string text_;
    std::vector<instr> prog_;
    int max_stack_ = 0;
};

} // namespace attnlab
