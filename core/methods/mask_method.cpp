// mask:expr=... : a method written as a mask expression (methods/mask_expr.h),
// e.g. `mask:expr=k < 4 || d < 256` (sinks + window) or `mask:expr=d % 64 == 0
// || d < 32` (strided). A fixed pattern: it ignores Q and K, so every head of
// every layer at one length has the same selection, built once and kept.
#include <memory>
#include <mutex>

#include "methods/mask_expr.h"
#include "methods/method.h"

namespace attnlab {

namespace {

class mask_method : public sparse_method {
public:
    explicit mask_method(const method_args & a)
        : spec_(method_args_spec("mask", a)), expr_(mask_expr::compile(a.text("expr"))), B_(a.integer("B")) {}
    std::string name() const override { return "mask"; }
    std::string spec() const override { return spec_; }

    selection select(const head_inputs & in) const override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (last_ && last_->n_tokens == in.n_tokens && last_->causal == in.causal) return *last_;
        }
        const int L = in.n_tokens;
        std::vector<std::vector<int32_t>> rows(L);
#pragma omp parallel for schedule(dynamic, 64)
        for (int i = 0; i < L; ++i) {
            const int last = in.causal ? i : L - 1;
            for (int j = 0; j <= last; ++j)
                if (expr_.keeps(i, j, L)) rows[i].push_back(j);
        }
        auto s = std::make_shared<selection>(selection_from_rows(L, B_, in.causal, rows));
        std::lock_guard<std::mutex> lock(mu_);
        last_ = s;
        return *s;
    }

private:
    std::string spec_;
    mask_expr expr_;
    int B_;
    mutable std::mutex mu_;
    mutable std::shared_ptr<const selection> last_;   // of the last (length, causality)
};

const method_registrar reg([] {
    method_info e;
    e.name = "mask";
    e.help = "a mask expression over q, k, d = q - k and L, e.g. expr=k < 4 || d < 256 (C operators: || && == != < "
             "<= > >= + - * / % ! and parentheses)";
    e.params = {param_text("expr", "d < 256", "the expression (mask_expr.h); no commas"), param_block()};
    e.create = [](const method_args & a) -> std::unique_ptr<sparse_method> { return std::make_unique<mask_method>(a); };
    e.grain = method_info::token;
    e.family = "window";
    e.order = 75;
    return e;
}());

} // namespace

} // namespace attnlab
