// Score functions (attention/score.h) in the score table: softmax, relu and
// hyperbolic, each with its keys and its builder from resolved args.
#include "base/error.h"
#include "methods/method.h"

namespace attnlab {

namespace {

const score_registrar softmax_reg([] {
    method_info e;
    e.name = "softmax";
    e.help = "softmax(s*q*k) over the selected keys";
    e.create_score = [](const method_args &) { return score_fn(); };
    e.order = 0;
    return e;
}());

const score_registrar relu_reg([] {
    method_info e;
    e.name = "relu";
    e.help = "relu(s*q*k - b) / L (or / row sum)";
    method_param norm;
    norm.key = "norm";
    norm.kind = method_param::choice;
    norm.def = "L";
    norm.choices = {"L", "row"};
    norm.help = "divide by the sequence length L, or by the row sum";
    e.params = {param_real("b", "0", -1e6, 1e6, false, "bias subtracted before the relu"), norm};
    e.create_score = [](const method_args & a) {
        score_fn f;
        f.kind = score_kind::relu;
        f.relu_bias = (float) a.real("b");
        f.relu_row_norm = a.text("norm") == "row";
        return f;
    };
    e.order = 1;
    return e;
}());

const score_registrar hyperbolic_reg([] {
    method_info e;
    e.name = "hyperbolic";
    e.help = "softmax(-beta*d_c(q,k) - gamma) in the Poincare ball";
    e.params = {param_real("c", "1", 0.0, 1e6, true, "curvature magnitude"),
                param_real("beta", "1", 0.0, 1e6, false, "distance scale"),
                param_real("gamma", "0", -1e6, 1e6, false, "offset")};
    e.create_score = [](const method_args & a) {
        score_fn f;
        f.kind = score_kind::hyperbolic;
        f.c = (float) a.real("c");
        f.beta = (float) a.real("beta");
        f.gamma = (float) a.real("gamma");
        if (!(f.c > 0.0f)) throw input_error(a.spec_text, "c", "value rounds to 0 in float");
        return f;
    };
    e.order = 2;
    return e;
}());

} // namespace

} // namespace attnlab
