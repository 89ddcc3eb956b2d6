// Selections: builders, conversions and density bookkeeping against brute
// force (explicit loops over every (i, j) pair).
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "attention/selection.h"
#include "test_util.h"

using namespace attnlab;

namespace {

struct raw_blocks {
    std::vector<int32_t> ptr, cols;
    std::set<std::pair<int, int>> kept;   // (I, J) as given, before causal clipping
};

raw_blocks random_blocks(int L, int B, double p, std::mt19937 & rng) {
    raw_blocks r;
    const int nb = (L + B - 1) / B;
    std::uniform_real_distribution<double> u(0, 1);
    r.ptr.push_back(0);
    for (int I = 0; I < nb; ++I) {
        std::vector<int32_t> row;
        for (int J = 0; J < nb; ++J)
            if (u(rng) < p) {
                row.push_back(J);
                r.kept.insert({I, J});
                if (u(rng) < 0.2) row.push_back(J);   // duplicate
            }
        std::shuffle(row.begin(), row.end(), rng);
        r.cols.insert(r.cols.end(), row.begin(), row.end());
        r.ptr.push_back((int32_t) r.cols.size());
    }
    return r;
}

} // namespace

TEST_CASE("block masks: pairs, densities and conversions match brute force", "[methods]") {
    std::mt19937 rng(7);
    for (int B : {16, 32, 64, 128})
        for (int L : {1, 2, 15, 17, 63, 100, 129, 257, 300})
            for (int causal = 0; causal < 2; ++causal)
                for (double p : {0.0, 0.3, 1.0}) {
                    INFO("B=" << B << " L=" << L << " causal=" << causal << " p=" << p);
                    raw_blocks rb = random_blocks(L, B, p, rng);
                    const selection s = selection_from_blocks(L, B, causal != 0, rb.ptr, rb.cols);
                    REQUIRE(selection_check(s) == "");
                    // Brute force: pairs and blocks by explicit loops.
                    int64_t pairs = 0, causal_pair_count = 0;
                    std::set<std::pair<int, int>> kept_causal, causal_blk;
                    for (int i = 0; i < L; ++i)
                        for (int j = 0; j < L; ++j) {
                            if (causal && j > i) continue;
                            ++causal_pair_count;
                            causal_blk.insert({i / B, j / B});
                            if (rb.kept.count({i / B, j / B})) {
                                ++pairs;
                                kept_causal.insert({i / B, j / B});
                            }
                        }
                    CHECK(causal_pairs(L, causal != 0) == causal_pair_count);
                    CHECK(causal_blocks(L, B, causal != 0) == (int64_t) causal_blk.size());
                    CHECK(s.n_kept_blocks() == (int64_t) kept_causal.size());
                    CHECK(selection_pairs(s) == pairs);
                    CHECK(selection_block_pairs(s) == pairs);
                    if (L > 0) {
                        CHECK(selection_token_density(s) == Approx((double) pairs / causal_pair_count));
                        CHECK(selection_block_density(s) == Approx((double) kept_causal.size() / causal_blk.size()));
                    }
                    // Block -> token expansion holds exactly the brute-force pairs.
                    const selection t = selection_to_tokens(s);
                    REQUIRE(selection_check(t) == "");
                    CHECK(t.token_level);
                    CHECK((int64_t) t.tok_cols.size() == pairs);
                    const auto md = attnlab_test::selection_mask(s), mt = attnlab_test::selection_mask(t);
                    CHECK(md == mt);
                    // Its cover is the same block mask (kept blocks always hold a causal pair).
                    CHECK(t.blk_cols == s.blk_cols);
                    CHECK(t.blk_ptr == s.blk_ptr);
                    std::vector<int32_t> keys;
                    for (int i = 0; i < L; ++i) {
                        selection_row_keys(s, i, keys);
                        std::vector<int32_t> bf;
                        for (int j = 0; j < L; ++j)
                            if (md[(size_t) i * L + j]) bf.push_back(j);
                        REQUIRE(keys == bf);
                        for (int j = 0; j < L; j += 7) REQUIRE(selection_contains(s, i, j) == (md[(size_t) i * L + j] != 0));
                    }
                }
}

TEST_CASE("token masks: sorting, causal clipping and the block cover", "[methods]") {
    std::mt19937 rng(11);
    std::uniform_real_distribution<double> u(0, 1);
    for (int B : {16, 32, 64, 128})
        for (int L : {1, 3, 31, 33, 65, 131, 299})
            for (int causal = 0; causal < 2; ++causal) {
                INFO("B=" << B << " L=" << L << " causal=" << causal);
                std::vector<std::vector<int32_t>> rows(L);
                std::vector<char> want((size_t) L * L, 0);
                for (int i = 0; i < L; ++i) {
                    const double p = u(rng) < 0.1 ? 0.0 : u(rng) * 0.3;   // some empty rows
                    for (int j = -2; j < L + 2; ++j)
                        if (u(rng) < p) {
                            rows[i].push_back(j);
                            if (u(rng) < 0.3) rows[i].push_back(j);
                            if (j >= 0 && j < L && !(causal && j > i)) want[(size_t) i * L + j] = 1;
                        }
                    std::shuffle(rows[i].begin(), rows[i].end(), rng);
                }
                const selection s = selection_from_rows(L, B, causal != 0, rows);
                REQUIRE(selection_check(s) == "");
                CHECK(attnlab_test::selection_mask(s) == want);
                int64_t pairs = 0;
                std::set<std::pair<int, int>> cover;
                for (int i = 0; i < L; ++i)
                    for (int j = 0; j < L; ++j)
                        if (want[(size_t) i * L + j]) {
                            ++pairs;
                            cover.insert({i / B, j / B});
                        }
                CHECK(selection_pairs(s) == pairs);
                CHECK(s.n_kept_blocks() == (int64_t) cover.size());
                for (const auto & c : cover) REQUIRE(selection_contains(selection_to_blocks(s), c.first * B, c.second * B) ==
                                                     (!causal || c.second * B <= c.first * B));
                // The block view keeps every pair of the cover blocks: a superset.
                const selection b = selection_to_blocks(s);
                CHECK_FALSE(b.token_level);
                const auto mb = attnlab_test::selection_mask(b);
                for (size_t x = 0; x < want.size(); ++x)
                    if (want[x]) REQUIRE(mb[x]);
                int64_t cover_pairs = 0;
                for (char x : mb) cover_pairs += x;
                CHECK(selection_block_pairs(s) == cover_pairs);
                CHECK(selection_block_density(s) == Approx((double) cover.size() / causal_blocks(L, B, causal != 0)));
            }
}

TEST_CASE("selection builders reject bad shapes", "[methods]") {
    CHECK_THROWS_AS(selection_dense(10, 48, true), std::invalid_argument);
    CHECK_THROWS_AS(selection_from_blocks(100, 64, true, {0, 1}, {0}), std::invalid_argument);
    CHECK_THROWS_AS(selection_from_tokens(3, 64, true, {0, 1, 1}, {0}), std::invalid_argument);
    const selection d = selection_dense(200, 64, true);
    CHECK(selection_token_density(d) == 1.0);
    CHECK(selection_block_density(d) == 1.0);
    const selection e = selection_dense(0, 64, true);
    CHECK(e.n_blocks() == 0);
    CHECK(selection_token_density(e) == 0.0);
}

// ---- tile lists for the GPU kernels (attention/tile_list.h) ----

#include "attention/tile_list.h"

namespace {

// Rows of a mixed pattern: a window, a few random far keys, some rows empty,
// some rows complete, so that blocks come out whole, partial and absent.
selection random_token_selection(int L, int B, bool causal, std::mt19937 & rng) {
    std::vector<std::vector<int32_t>> rows(L);
    std::uniform_int_distribution<int> key(0, L - 1), kind(0, 9);
    for (int i = 0; i < L; ++i) {
        const int k = kind(rng);
        const int lim = causal ? i : L - 1;
        if (k == 0) continue;                       // empty row
        if (k == 1) {                               // every key
            for (int j = 0; j <= lim; ++j) rows[i].push_back(j);
            continue;
        }
        for (int j = std::max(0, i - 37); j <= std::min(lim, i + (causal ? 0 : 5)); ++j) rows[i].push_back(j);
        for (int r = 0; r < 4; ++r) rows[i].push_back(key(rng));   // non-causal ones are dropped by the builder
    }
    return selection_from_rows(L, B, causal, rows);
}

} // namespace

TEST_CASE("tile lists keep exactly the selected pairs", "[methods]") {
    std::mt19937 rng(7);
    for (const bool causal : {true, false})
        for (const int L : {1, 63, 64, 300, 517}) {
            // heads of every kind at once: token masks, block masks of the
            // tile size, block masks of other sizes (re-tiled with masks)
            std::vector<selection> sels;
            sels.push_back(random_token_selection(L, 64, causal, rng));
            sels.push_back(random_token_selection(L, 16, causal, rng));
            raw_blocks rb = random_blocks(L, 32, 0.3, rng);
            sels.push_back(selection_from_blocks(L, 32, causal, rb.ptr, rb.cols));
            rb = random_blocks(L, 64, 0.4, rng);
            sels.push_back(selection_from_blocks(L, 64, causal, rb.ptr, rb.cols));
            sels.push_back(selection_dense(L, 64, causal));
            const tile_list t = tile_list_build(sels.data(), (int)sels.size());
            INFO("L=" << L << " causal=" << causal);
            REQUIRE(t.block == 64);
            REQUIRE(!t.mask_index.empty());
            int64_t partial = 0;
            for (size_t e = 0; e < t.mask_index.size(); ++e) partial += t.mask_index[e] >= 0;
            for (int h = 0; h < (int)sels.size(); ++h)
                for (int i = 0; i < L; ++i)
                    for (int j = 0; j < L; ++j) {
                        const bool want = selection_contains(sels[h], i, j);
                        if (tile_list_keeps(t, h, i, j) != want) {
                            FAIL_CHECK("head " << h << " pair (" << i << ", " << j << "): selection " << want);
                            return;
                        }
                    }
            // every mask is a real partial block: not empty, not all pairs
            for (int64_t m = 0; m < t.n_masks(); ++m) {
                int64_t bits = 0;
                for (int r = 0; r < t.block * t.words_per_row(); ++r)
                    bits += __builtin_popcountll(t.masks[(size_t)m * t.block * t.words_per_row() + r]);
                CHECK(bits > 0);
            }
            CHECK(t.n_masks() == partial);   // one mask per partially kept block
            if (L >= 300) CHECK(partial > 0);
        }
}

TEST_CASE("tile lists of block masks of 64 or 128 carry no token masks", "[methods]") {
    std::mt19937 rng(3);
    for (const int B : {64, 128}) {
        const int L = 1000;
        std::vector<selection> sels;
        for (int h = 0; h < 3; ++h) {
            raw_blocks rb = random_blocks(L, B, 0.3, rng);
            sels.push_back(selection_from_blocks(L, B, true, rb.ptr, rb.cols));
        }
        const tile_list t = tile_list_build(sels.data(), 3);
        CHECK(t.block == B);
        CHECK(t.mask_index.empty());
        CHECK(t.masks.empty());
        int64_t kept = 0;
        for (const selection & s : sels) kept += s.n_kept_blocks();
        CHECK(t.n_kept_blocks() == kept);
        for (int h = 0; h < 3; ++h)
            for (int i = 0; i < L; i += 7)
                for (int j = 0; j < L; j += 3) CHECK(tile_list_keeps(t, h, i, j) == selection_contains(sels[h], i, j));
    }
    // all heads at block 128 with token masks: tiles of 128
    std::vector<selection> sels = {random_token_selection(500, 128, true, rng), selection_dense(500, 128, true)};
    const tile_list t = tile_list_build(sels.data(), 2);
    CHECK(t.block == 128);
    for (int i = 0; i < 500; ++i)
        for (int j = 0; j < 500; ++j)
            if (tile_list_keeps(t, 0, i, j) != selection_contains(sels[0], i, j)) FAIL("pair " << i << ", " << j);
    // a mismatch of lengths is refused
    std::vector<selection> bad = {selection_dense(100, 64, true), selection_dense(101, 64, true)};
    CHECK_THROWS_AS(tile_list_build(bad.data(), 2), std::invalid_argument);
}
