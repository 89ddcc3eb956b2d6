// Selections: builders, conversions and density bookkeeping.
#include "attention/selection.h"

#include <algorithm>
#include <stdexcept>

namespace attnlab {

namespace {

void check_shape(const char * who, int L, int B) {
    if (L < 0) throw std::invalid_argument(std::string(who) + ": negative length");
    if (!block_size_valid(B)) {
        throw std::invalid_argument(std::string(who) + ": block size " + std::to_string(B) +
                                    " (valid: 16, 32, 64, 128)");
    }
}

// Sorts and de-duplicates a [b, e) range in place, keeping entries in [lo, hi];
// returns the new end.
template <typename It> It sort_unique_clip(It b, It e, int lo, int hi) {
    It w = std::remove_if(b, e, [&](int32_t x) { return x < lo || x > hi; });
    std::sort(b, w);
    return std::unique(b, w);
}

} // namespace

bool block_size_valid(int b) { return b == 16 || b == 32 || b == 64 || b == 128; }

int64_t causal_pairs(int L, bool causal) {
    return causal ? (int64_t) L * (L + 1) / 2 : (int64_t) L * L;
}

int64_t causal_blocks(int L, int B, bool causal) {
    const int64_t nb = (L + B - 1) / B;
    return causal ? nb * (nb + 1) / 2 : nb * nb;
}

int64_t block_pairs(int L, int B, bool causal, int I, int J) {
    const int q0 = I * B, q1 = std::min(L, q0 + B);  // rows [q0, q1)
    const int k0 = J * B, k1 = std::min(L, k0 + B);  // keys [k0, k1)
    if (q0 >= q1 || k0 >= k1) return 0;
    if (!causal) return (int64_t) (q1 - q0) * (k1 - k0);
    int64_t n = 0;
    // Row i sees keys [k0, min(k1, i+1)).
    for (int i = q0; i < q1; ++i) n += std::max(0, std::min(k1, i + 1) - k0);
    return n;
}

selection selection_dense(int L, int B, bool causal) {
    check_shape("selection_dense", L, B);
    selection s;
    s.n_tokens = L;
    s.block = B;
    s.causal = causal;
    const int nb = s.n_blocks();
    s.blk_ptr.assign(nb + 1, 0);
    for (int I = 0; I < nb; ++I) {
        const int n_j = causal ? I + 1 : nb;
        for (int J = 0; J < n_j; ++J) s.blk_cols.push_back(J);
        s.blk_ptr[I + 1] = (int32_t) s.blk_cols.size();
    }
    return s;
}

selection selection_from_blocks(int L, int B, bool causal, std::vector<int32_t> blk_ptr,
                                std::vector<int32_t> blk_cols) {
    check_shape("selection_from_blocks", L, B);
    selection s;
    s.n_tokens = L;
    s.block = B;
    s.causal = causal;
    const int nb = s.n_blocks();
    if ((int) blk_ptr.size() != nb + 1 || blk_ptr[0] != 0 || blk_ptr[nb] != (int32_t) blk_cols.size()) {
        throw std::invalid_argument("selection_from_blocks: blk_ptr must have nb+1 entries from 0 to cols.size()");
    }
    s.blk_ptr.assign(nb + 1, 0);
    s.blk_cols.reserve(blk_cols.size());
    for (int I = 0; I < nb; ++I) {
        if (blk_ptr[I + 1] < blk_ptr[I]) throw std::invalid_argument("selection_from_blocks: blk_ptr decreases");
        auto b = blk_cols.begin() + blk_ptr[I], e = blk_cols.begin() + blk_ptr[I + 1];
        e = sort_unique_clip(b, e, 0, causal ? I : nb - 1);
        s.blk_cols.insert(s.blk_cols.end(), b, e);
        s.blk_ptr[I + 1] = (int32_t) s.blk_cols.size();
    }
    return s;
}

selection selection_from_tokens(int L, int B, bool causal, std::vector<int64_t> tok_ptr,
                                std::vector<int32_t> tok_cols) {
    check_shape("selection_from_tokens", L, B);
    if ((int) tok_ptr.size() != L + 1 || tok_ptr[0] != 0 || tok_ptr[L] != (int64_t) tok_cols.size()) {
        throw std::invalid_argument("selection_from_tokens: tok_ptr must have L+1 entries from 0 to cols.size()");
    }
    selection s;
    s.n_tokens = L;
    s.block = B;
    s.causal = causal;
    s.token_level = true;
    s.tok_ptr.assign(L + 1, 0);
    // Compact in place: row i's cleaned keys move down to position w.
    int64_t w = 0;
    for (int i = 0; i < L; ++i) {
        if (tok_ptr[i + 1] < tok_ptr[i]) throw std::invalid_argument("selection_from_tokens: tok_ptr decreases");
        auto b = tok_cols.begin() + tok_ptr[i], e = tok_cols.begin() + tok_ptr[i + 1];
        const int hi = causal ? i : L - 1;
        // Most methods emit clean rows already: check before sorting.
        bool clean = true;
        for (auto it = b; it != e && clean; ++it) clean = *it >= 0 && *it <= hi && (it == b || *(it - 1) < *it);
        if (!clean) e = sort_unique_clip(b, e, 0, hi);
        const int64_t n = e - b;
        if (w != tok_ptr[i]) std::copy(b, e, tok_cols.begin() + w);
        w += n;
        s.tok_ptr[i + 1] = w;
    }
    tok_cols.resize(w);
    s.tok_cols = std::move(tok_cols);
    // Cover: per query block, the union of its rows' key blocks.
    const int nb = s.n_blocks();
    s.blk_ptr.assign(nb + 1, 0);
    std::vector<char> hit(nb, 0);
    for (int I = 0; I < nb; ++I) {
        const int r1 = std::min(L, (I + 1) * B);
        for (int i = I * B; i < r1; ++i) {
            // Sorted keys: skip to the end of each block.
            for (int64_t t = s.tok_ptr[i]; t < s.tok_ptr[i + 1];) {
                const int J = s.tok_cols[t] / B;
                hit[J] = 1;
                t = std::lower_bound(s.tok_cols.begin() + t, s.tok_cols.begin() + s.tok_ptr[i + 1], (J + 1) * B) -
                    s.tok_cols.begin();
            }
        }
        for (int J = 0; J < nb; ++J) {
            if (hit[J]) s.blk_cols.push_back(J);
            hit[J] = 0;
        }
        s.blk_ptr[I + 1] = (int32_t) s.blk_cols.size();
    }
    return s;
}

selection selection_from_rows(int L, int B, bool causal, const std::vector<std::vector<int32_t>> & rows) {
    if ((int) rows.size() != L) throw std::invalid_argument("selection_from_rows: need one key list per row");
    std::vector<int64_t> ptr(L + 1, 0);
    for (int i = 0; i < L; ++i) ptr[i + 1] = ptr[i] + (int64_t) rows[i].size();
    std::vector<int32_t> cols;
    cols.reserve(ptr[L]);
    for (const auto & r : rows) cols.insert(cols.end(), r.begin(), r.end());
    return selection_from_tokens(L, B, causal, std::move(ptr), std::move(cols));
}

void selection_row_keys(const selection & s, int i, std::vector<int32_t> & out) {
    out.clear();
    if (i < 0 || i >= s.n_tokens) return;
    if (s.token_level) {
        out.assign(s.tok_cols.begin() + s.tok_ptr[i], s.tok_cols.begin() + s.tok_ptr[i + 1]);
        return;
    }
    const int I = i / s.block;
    const int last = s.causal ? i : s.n_tokens - 1;
    for (int32_t t = s.blk_ptr[I]; t < s.blk_ptr[I + 1]; ++t) {
        const int k0 = s.blk_cols[t] * s.block;
        const int k1 = std::min(last + 1, k0 + s.block);
        for (int j = k0; j < k1; ++j) out.push_back(j);
    }
}

bool selection_contains(const selection & s, int i, int j) {
    if (i < 0 || i >= s.n_tokens || j < 0 || j >= s.n_tokens) return false;
    if (s.causal && j > i) return false;
    if (s.token_level) {
        auto b = s.tok_cols.begin() + s.tok_ptr[i], e = s.tok_cols.begin() + s.tok_ptr[i + 1];
        return std::binary_search(b, e, j);
    }
    const int I = i / s.block;
    auto b = s.blk_cols.begin() + s.blk_ptr[I], e = s.blk_cols.begin() + s.blk_ptr[I + 1];
    return std::binary_search(b, e, j / s.block);
}

selection selection_to_tokens(const selection & s) {
    if (s.token_level) return s;
    std::vector<int64_t> ptr(s.n_tokens + 1, 0);
    std::vector<int32_t> cols, row;
    for (int i = 0; i < s.n_tokens; ++i) {
        selection_row_keys(s, i, row);
        cols.insert(cols.end(), row.begin(), row.end());
        ptr[i + 1] = (int64_t) cols.size();
    }
    return selection_from_tokens(s.n_tokens, s.block, s.causal, std::move(ptr), std::move(cols));
}

selection selection_to_blocks(const selection & s) {
    selection r = s;
    r.token_level = false;
    r.tok_ptr.clear();
    r.tok_cols.clear();
    return r;
}

int64_t selection_block_pairs(const selection & s) {
    int64_t n = 0;
    const int nb = s.n_blocks();
    for (int I = 0; I < nb; ++I) {
        for (int32_t t = s.blk_ptr[I]; t < s.blk_ptr[I + 1]; ++t) {
            n += block_pairs(s.n_tokens, s.block, s.causal, I, s.blk_cols[t]);
        }
    }
    return n;
}

int64_t selection_pairs(const selection & s) {
    return s.token_level ? (int64_t) s.tok_cols.size() : selection_block_pairs(s);
}

double selection_token_density(const selection & s) {
    const int64_t d = causal_pairs(s.n_tokens, s.causal);
    return d > 0 ? (double) selection_pairs(s) / (double) d : 0.0;
}

double selection_block_density(const selection & s) {
    const int64_t d = causal_blocks(s.n_tokens, s.block, s.causal);
    return d > 0 ? (double) s.n_kept_blocks() / (double) d : 0.0;
}

std::string selection_check(const selection & s) {
    if (!block_size_valid(s.block)) return "block size " + std::to_string(s.block);
    const int nb = s.n_blocks();
    if ((int) s.blk_ptr.size() != nb + 1 || s.blk_ptr[0] != 0 || s.blk_ptr[nb] != (int32_t) s.blk_cols.size()) {
        return "blk_ptr shape";
    }
    for (int I = 0; I < nb; ++I) {
        for (int32_t t = s.blk_ptr[I]; t < s.blk_ptr[I + 1]; ++t) {
            const int J = s.blk_cols[t];
            if (J < 0 || J >= nb || (s.causal && J > I)) return "block " + std::to_string(J) + " out of range";
            if (t > s.blk_ptr[I] && s.blk_cols[t - 1] >= J) return "blocks not strictly increasing";
        }
    }
    if (!s.token_level) return "";
    const int L = s.n_tokens;
    if ((int) s.tok_ptr.size() != L + 1 || s.tok_ptr[0] != 0 || s.tok_ptr[L] != (int64_t) s.tok_cols.size()) {
        return "tok_ptr shape";
    }
    for (int i = 0; i < L; ++i) {
        for (int64_t t = s.tok_ptr[i]; t < s.tok_ptr[i + 1]; ++t) {
            const int j = s.tok_cols[t];
            if (j < 0 || j >= L || (s.causal && j > i)) return "key " + std::to_string(j) + " out of range";
            if (t > s.tok_ptr[i] && s.tok_cols[t - 1] >= j) return "keys not strictly increasing";
            // The cover must hold every kept pair's block.
            const int I = i / s.block;
            if (!std::binary_search(s.blk_cols.begin() + s.blk_ptr[I], s.blk_cols.begin() + s.blk_ptr[I + 1],
                                    j / s.block)) {
                return "token pair outside the block cover";
            }
        }
    }
    return "";
}

} // namespace attnlab
