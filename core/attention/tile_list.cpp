// Tile lists (and token masks) for the GPU kernels from selections.
#include "attention/tile_list.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace attnlab {

namespace {

// The tile size for a set of heads: their common block when every head is a
// block mask of 64 or 128 (plain lists, no masks), else 128 when all have
// block 128, else 64.
int tile_block_of(const selection * sels, int n_heads, bool & need_masks) {
    need_masks = false;
    bool all128 = true;
    const int b0 = sels[0].block;
    for (int h = 0; h < n_heads; ++h) {
        const selection & s = sels[h];
        if (s.token_level || s.block != b0 || (s.block != 64 && s.block != 128)) need_masks = true;
        if (s.block != 128) all128 = false;
    }
    if (!need_masks) return b0;
    return all128 ? 128 : 64;
}

// One head whose block mask is already the tile grid.
void head_from_blocks(const selection & s, tile_list & t, int h) {
    for (int I = 0; I < t.nqb; ++I) {
        const int b0 = s.blk_ptr[I], b1 = s.blk_ptr[I + 1];
        const size_t row = (size_t)h * t.nqb + I;
        t.kv_num[row] = b1 - b0;
        for (int e = b0; e < b1; ++e) {
            t.kv_idx[row * t.max_kv + (e - b0)] = s.blk_cols[e];
            if (!t.mask_index.empty()) t.mask_index[row * t.max_kv + (e - b0)] = -1;
        }
    }
}

// One head through its rows' kept keys: per query tile, the key tiles any
// row touches, then a mask for each tile not kept whole. The head's masks go
// to `masks`, numbered from 0 (tile_list_build shifts them into place).
void head_from_rows(const selection & s, tile_list & t, int h, std::vector<uint64_t> & masks) {
    const int T = t.block, L = t.n_tokens, W = t.words_per_row();
    std::vector<int32_t> slot(t.nqb, -1), keys;
    std::vector<int64_t> count;
    std::vector<std::vector<int32_t>> rows(T);
    for (int I = 0; I < t.nqb; ++I) {
        const int i0 = I * T, i1 = std::min(L, i0 + T);
        std::vector<int32_t> cols;
        for (int i = i0; i < i1; ++i) {
            selection_row_keys(s, i, rows[i - i0]);
            for (int32_t j : rows[i - i0]) {
                const int J = j / T;
                if (slot[J] < 0) {
                    slot[J] = 0;
                    cols.push_back(J);
                }
            }
        }
        std::sort(cols.begin(), cols.end());
        for (size_t e = 0; e < cols.size(); ++e) slot[cols[e]] = (int32_t)e;
        count.assign(cols.size(), 0);
        for (int i = i0; i < i1; ++i)
            for (int32_t j : rows[i - i0]) ++count[slot[j / T]];
        const size_t row = (size_t)h * t.nqb + I;
        t.kv_num[row] = (int32_t)cols.size();
        std::vector<int64_t> mask_of(cols.size(), -1);
        for (size_t e = 0; e < cols.size(); ++e) {
            t.kv_idx[row * t.max_kv + e] = cols[e];
            if (count[e] != block_pairs(L, T, s.causal, I, cols[e])) {
                mask_of[e] = (int64_t)(masks.size() / ((size_t)T * W));
                masks.resize(masks.size() + (size_t)T * W, 0);
            }
            if (mask_of[e] > INT32_MAX) throw std::invalid_argument("tile_list_build: more than 2^31 token masks");
            t.mask_index[row * t.max_kv + e] = (int32_t)mask_of[e];
        }
        for (int i = i0; i < i1; ++i)
            for (int32_t j : rows[i - i0]) {
                const int64_t m = mask_of[slot[j / T]];
                if (m < 0) continue;
                const int c = j % T;
                masks[((size_t)m * T + (i - i0)) * W + c / 64] |= 1ull << (c % 64);
            }
        for (int32_t J : cols) slot[J] = -1;
    }
}

} // namespace

int64_t tile_list::n_kept_blocks() const {
    int64_t n = 0;
    for (int32_t k : kv_num) n += k;
    return n;
}

int64_t tile_list::bytes() const {
    return (int64_t)(kv_num.size() + kv_idx.size() + mask_index.size()) * 4 + (int64_t)masks.size() * 8;
}

tile_list tile_list_build(const selection * sels, int n_heads) {
    if (!sels || n_heads <= 0) throw std::invalid_argument("tile_list_build: no selections");
    tile_list t;
    t.n_tokens = sels[0].n_tokens;
    t.causal = sels[0].causal;
    t.n_heads = n_heads;
    for (int h = 0; h < n_heads; ++h) {
        const selection & s = sels[h];
        if (s.n_tokens != t.n_tokens || s.causal != t.causal)
            throw std::invalid_argument("tile_list_build: head " + std::to_string(h) + " differs in length or causality");
        if ((int)s.blk_ptr.size() != s.n_blocks() + 1 || (s.token_level && (int64_t)s.tok_ptr.size() != s.n_tokens + 1))
            throw std::invalid_argument("tile_list_build: head " + std::to_string(h) + ": selection arrays of the wrong size");
    }
    bool need_masks = false;
    t.block = tile_block_of(sels, n_heads, need_masks);
    t.nqb = (t.n_tokens + t.block - 1) / t.block;
    t.max_kv = std::max(t.nqb, 1);
    t.kv_num.assign((size_t)n_heads * t.nqb, 0);
    t.kv_idx.assign((size_t)n_heads * t.nqb * t.max_kv, 0);
    if (need_masks) t.mask_index.assign(t.kv_idx.size(), -1);
    // heads in parallel (O(kept pairs) each), each into its own rows of the
    // lists and its own masks; then the masks are concatenated in head order
    std::vector<std::vector<uint64_t>> head_masks(n_heads);
    std::vector<std::string> errs(n_heads);
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < n_heads; ++h) {
        try {
            const selection & s = sels[h];
            if (!s.token_level && s.block == t.block) head_from_blocks(s, t, h);
            else head_from_rows(s, t, h, head_masks[h]);
        } catch (const std::exception & e) {
            errs[h] = e.what();
        }
    }
    for (const std::string & e : errs)
        if (!e.empty()) throw std::invalid_argument(e);
    const size_t per_mask = (size_t)t.block * t.words_per_row();
    size_t total = 0;
    for (const auto & m : head_masks) total += m.size();
    if (total / per_mask > (size_t)INT32_MAX) throw std::invalid_argument("tile_list_build: more than 2^31 token masks");
    t.masks.reserve(total);
    const size_t row_len = (size_t)t.nqb * t.max_kv;
    for (int h = 0; h < n_heads; ++h) {
        const int32_t shift = (int32_t)(t.masks.size() / per_mask);
        if (shift && !head_masks[h].empty())
            for (size_t e = (size_t)h * row_len; e < (size_t)(h + 1) * row_len; ++e)
                if (t.mask_index[e] >= 0) t.mask_index[e] += shift;
        t.masks.insert(t.masks.end(), head_masks[h].begin(), head_masks[h].end());
    }
    return t;
}

bool tile_list_keeps(const tile_list & t, int h, int i, int j) {
    if (i < 0 || j < 0 || i >= t.n_tokens || j >= t.n_tokens || (t.causal && j > i)) return false;
    const int I = i / t.block, J = j / t.block;
    const size_t row = (size_t)h * t.nqb + I;
    for (int e = 0; e < t.kv_num[row]; ++e) {
        if (t.kv_idx[row * t.max_kv + e] != J) continue;
        const int32_t m = t.mask_index.empty() ? -1 : t.mask_index[row * t.max_kv + e];
        if (m < 0) return true;
        const int r = i % t.block, c = j % t.block, W = t.words_per_row();
        return (t.masks[((size_t)m * t.block + r) * W + c / 64] >> (c % 64)) & 1ull;
    }
    return false;
}

} // namespace attnlab
