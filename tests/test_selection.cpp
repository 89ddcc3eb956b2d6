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
