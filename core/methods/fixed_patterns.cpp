// Fixed patterns (METHODS.md, seed 004): window, sinks_window, global_tokens,
// block_local, strided, random, bigbird, and dense. None looks at Q or K.
//
// Causal heads keep only j <= i. For non-causal (encoder) heads the window is
// symmetric, |i − j| < w, strides count |i − j|, and random keys range over
// the whole row. Token-level patterns are built a row at a time; the kernel
// visits the cover blocks and masks inside them.
#include <algorithm>
#include <cmath>

#include "methods/method.h"

namespace attnlab {

namespace {

class pattern_method : public sparse_method {
public:
    pattern_method(std::string name, const method_args & a) : name_(std::move(name)), spec_(method_args_spec(name_, a)) {
        B_ = a.integer("B");
    }
    std::string name() const override { return name_; }
    std::string spec() const override { return spec_; }

    selection select(const head_inputs & in) const override {
        const int L = in.n_tokens;
        std::vector<int64_t> ptr(L + 1, 0);
        std::vector<int32_t> cols, row;
        std::vector<uint8_t> mark(L, 0);  // scratch for distinct random draws
        for (int i = 0; i < L; ++i) {
            row.clear();
            row_keys(in, i, row, mark);
            cols.insert(cols.end(), row.begin(), row.end());
            ptr[i + 1] = (int64_t) cols.size();
        }
        return selection_from_tokens(L, B_, in.causal, std::move(ptr), std::move(cols));
    }

protected:
    // Appends row i's keys: any order, duplicates and out-of-range allowed
    // (the builder sorts, de-duplicates and clips to the causal range).
    virtual void row_keys(const head_inputs & in, int i, std::vector<int32_t> & out, std::vector<uint8_t> & mark) const = 0;

    static void add_window(const head_inputs & in, int i, int w, std::vector<int32_t> & out) {
        const int lo = std::max(0, i - w + 1);
        const int hi = in.causal ? i : std::min(in.n_tokens - 1, i + w - 1);
        for (int j = lo; j <= hi; ++j) out.push_back(j);
    }
    static int last_key(const head_inputs & in, int i) { return in.causal ? i : in.n_tokens - 1; }

    std::string name_, spec_;
    int B_ = 64;
};

class dense_method : public sparse_method {
public:
    explicit dense_method(const method_args & a) : spec_(method_args_spec("dense", a)), B_(a.integer("B")) {}
    std::string name() const override { return "dense"; }
    std::string spec() const override { return spec_; }
    selection select(const head_inputs & in) const override { return selection_dense(in.n_tokens, B_, in.causal); }
    gpu_selector gpu_selection() const override {
        gpu_selector g;
        g.kind = gpu_selector::dense;
        return g;
    }
    // With softmax, the dense flash kernel itself: a "dense" end-to-end run is
    // bit-identical to the unpatched model.
    void attend(const attention_layer_io & io, const selection * sels, const score_fn & score) const override {
        if (score.kind == score_kind::softmax) attention_dense_flash(io);
        else sparse_method::attend(io, sels, score);
    }

private:
    std::string spec_;
    int B_;
};

class window_method : public pattern_method {
public:
    explicit window_method(const method_args & a) : pattern_method("window", a), w_(a.integer("w")) {}

protected:
    void row_keys(const head_inputs & in, int i, std::vector<int32_t> & out, std::vector<uint8_t> &) const override {
        add_window(in, i, w_, out);
    }
    int w_;
};

class sinks_window_method : public pattern_method {
public:
    explicit sinks_window_method(const method_args & a)
        : pattern_method("sinks_window", a), g_(a.integer("g")), w_(a.integer("w")) {}

protected:
    void row_keys(const head_inputs & in, int i, std::vector<int32_t> & out, std::vector<uint8_t> &) const override {
        const int n_sink = std::min(g_, last_key(in, i) + 1);
        for (int j = 0; j < n_sink; ++j) out.push_back(j);
        add_window(in, i, w_, out);
    }
    int g_, w_;
};

class global_tokens_method : public pattern_method {
public:
    explicit global_tokens_method(const method_args & a)
        : pattern_method("global_tokens", a), P_(a.positions("P")), w_(a.integer("w")) {
        std::sort(P_.begin(), P_.end());
        P_.erase(std::unique(P_.begin(), P_.end()), P_.end());
    }

protected:
    void row_keys(const head_inputs & in, int i, std::vector<int32_t> & out, std::vector<uint8_t> &) const override {
        if (std::binary_search(P_.begin(), P_.end(), i)) {
            // A global query attends to every (causal) key.
            for (int j = 0; j <= last_key(in, i); ++j) out.push_back(j);
            return;
        }
        for (int p : P_) {
            if (p < in.n_tokens) out.push_back(p);
        }
        add_window(in, i, w_, out);
    }
    std::vector<int> P_;
    int w_;
};

class block_local_method : public sparse_method {
public:
    explicit block_local_method(const method_args & a) : spec_(method_args_spec("block_local", a)), B_(a.integer("B")) {}
    std::string name() const override { return "block_local"; }
    std::string spec() const override { return spec_; }
    selection select(const head_inputs & in) const override {
        const int nb = (in.n_tokens + B_ - 1) / B_;
        std::vector<int32_t> ptr(nb + 1), cols(nb);
        for (int I = 0; I < nb; ++I) {
            ptr[I + 1] = I + 1;
            cols[I] = I;
        }
        return selection_from_blocks(in.n_tokens, B_, in.causal, std::move(ptr), std::move(cols));
    }

private:
    std::string spec_;
    int B_;
};

class strided_method : public pattern_method {
public:
    explicit strided_method(const method_args & a) : pattern_method("strided", a), m_(a.integer("m")), w_(a.integer("w")) {}

protected:
    void row_keys(const head_inputs & in, int i, std::vector<int32_t> & out, std::vector<uint8_t> &) const override {
        for (int j = i; j >= 0; j -= m_) out.push_back(j);
        if (!in.causal) {
            for (int j = i + m_; j < in.n_tokens; j += m_) out.push_back(j);
        }
        add_window(in, i, w_, out);
    }
    int m_, w_;
};

// Keys of row i kept independently with probability p: the gaps between kept
// keys are geometric, so a row costs O(kept keys), not O(i). Draw t of row i
// is mix_uniform(mix_hash(seed, layer, head, i, t)). The diagonal is always
// kept so that no row is empty.
void random_row(const head_inputs & in, int i, double p, uint64_t seed, std::vector<int32_t> & out) {
    const int last = in.causal ? i : in.n_tokens - 1;
    if (p > 0.0) {
        const double lq = std::log1p(-p);  // -inf for p = 1: every gap is 0
        double j = -1.0;
        for (uint64_t t = 0;; ++t) {
            const double u = mix_uniform(mix_hash(seed, in.layer, in.head, i, t));
            const double gap = p >= 1.0 ? 0.0 : std::floor(std::log(u) / lq);
            j += 1.0 + gap;
            if (j > last) break;
            out.push_back((int32_t) j);
        }
    }
    out.push_back(i);
}

class random_method : public pattern_method {
public:
    explicit random_method(const method_args & a) : pattern_method("random", a), p_(a.real("p")), seed_(a.integer("seed")) {}

protected:
    void row_keys(const head_inputs & in, int i, std::vector<int32_t> & out, std::vector<uint8_t> &) const override {
        random_row(in, i, p_, (uint64_t) seed_, out);
    }
    double p_;
    int seed_;
};

// BigBird at token level: window w, the first g tokens global (they see and
// are seen by all), and r distinct random keys per row: the first r distinct
// values of mix_hash(seed, layer, head, i, t) mod n_keys, t = 0, 1, ... (all
// keys when the row has at most r).
class bigbird_method : public pattern_method {
public:
    explicit bigbird_method(const method_args & a)
        : pattern_method("bigbird", a), w_(a.integer("w")), g_(a.integer("g")), r_(a.integer("r")), seed_(a.integer("seed")) {}

protected:
    void row_keys(const head_inputs & in, int i, std::vector<int32_t> & out, std::vector<uint8_t> & mark) const override {
        const int n_keys = last_key(in, i) + 1;
        if (i < g_) {
            for (int j = 0; j < n_keys; ++j) out.push_back(j);
            return;
        }
        for (int j = 0; j < std::min(g_, n_keys); ++j) out.push_back(j);
        add_window(in, i, w_, out);
        if (n_keys <= r_) {
            for (int j = 0; j < n_keys; ++j) out.push_back(j);
            return;
        }
        const size_t first = out.size();
        int got = 0;
        for (uint64_t t = 0; got < r_; ++t) {
            const int j = (int) (mix_hash((uint64_t) seed_, in.layer, in.head, i, t) % (uint64_t) n_keys);
            if (!mark[j]) {
                mark[j] = 1;
                out.push_back(j);
                ++got;
            }
        }
        for (size_t t = first; t < out.size(); ++t) mark[out[t]] = 0;
    }
    int w_, g_, r_, seed_;
};

// ---- the entries ----

template <class M> std::unique_ptr<sparse_method> create(const method_args & a) { return std::make_unique<M>(a); }

method_info entry(const char * name, const char * help, std::vector<method_param> params, method_factory f, int order,
                  method_info::grain_t grain = method_info::token) {
    method_info e;
    e.name = name;
    e.help = help;
    e.params = std::move(params);
    e.params.push_back(param_block());
    e.create = f;
    e.grain = grain;
    e.order = order;
    return e;
}

method_param p_window(const char * def) { return param_int("w", def, 1, k_any_length, "window: keys i-w+1..i"); }
method_param p_seed() { return param_int("seed", "0", 0, 2147483647.0, "random seed"); }

const method_registrar dense_reg([] {
    method_info e = entry("dense", "exact attention", {}, create<dense_method>, 0, method_info::block);
    e.gpu = gpu_selector::dense;
    e.cost = method_cost::dense;
    e.family = "dense";
    return e;
}());

const method_registrar window_reg([] {
    method_info e = entry("window", "keys i-w+1..i (sliding window)", {p_window("256")}, create<window_method>, 10);
    e.cost = method_cost::window;
    e.family = "window";
    return e;
}());

const method_registrar sinks_window_reg(entry("sinks_window", "first g keys (attention sinks) + window w",
                                              {param_int("g", "4", 0, k_any_length, "sink tokens"), p_window("256")},
                                              create<sinks_window_method>, 20));

const method_registrar global_tokens_reg([] {
    method_param P;
    P.key = "P";
    P.kind = method_param::positions;
    P.def = "0";
    P.help = "global positions, ';'-separated";
    return entry("global_tokens", "positions in P attend to and are attended by all, + window w", {P, p_window("256")},
                 create<global_tokens_method>, 30);
}());

const method_registrar block_local_reg(entry("block_local", "block-diagonal: keys in the query's own block of B", {},
                                             create<block_local_method>, 40, method_info::block));

const method_registrar strided_reg(entry("strided", "keys j with j = i (mod m), or in the window w",
                                         {param_int("m", "64", 1, k_any_length, "stride"), p_window("64")},
                                         create<strided_method>, 50));

const method_registrar random_reg(entry("random", "each causal key kept with probability p (plus the diagonal)",
                                        {param_real("p", "0.1", 0.0, 1.0, false, "keep probability"), p_seed()},
                                        create<random_method>, 60));

const method_registrar bigbird_reg(entry("bigbird", "window w + first g tokens global + r random keys per row",
                                         {p_window("192"), param_int("g", "128", 0, k_any_length, "global tokens"),
                                          param_int("r", "192", 0, k_any_length, "random keys per row"), p_seed()},
                                         create<bigbird_method>, 70));

} // namespace

} // namespace attnlab
