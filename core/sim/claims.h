#pragma once
// The seeds' numeric claims set against exact arithmetic (and, where the claim
// is about speed or peak memory, against the simulator, labelled so).
// Conventions: "128k" is 128,000 tokens where the claim is in decimal GB and
// 131,072 (2^17) where it is in binary units; each row says which.
#include <string>
#include <vector>

namespace attnlab {

struct claim_row {
    std::string seed;        // "004"
    std::string claim;       // the claim as the seed states it
    std::string quantity;    // what was computed, with its assumptions
    std::string unit;        // of claimed and exact
    std::string kind;        // "exact" (arithmetic), "datasheet", "simulated"
    std::string relation;    // "approx" (claimed ~ exact), "at_least" (claim says "over"), "floor" (claimed must be >= exact)
    double claimed = 0.0;
    double exact = 0.0;
    double ratio = 0.0;      // claimed / exact
    std::string verdict;
    std::string note;
};

// Rows needing a preset (Llama-3-70B, Llama-2-13B, H100, B200, A100) are left
// out when it cannot be loaded from preset_dir.
std::vector<claim_row> seed_claims_check(const std::string & preset_dir = "");

// Exact helpers the rows use (bytes).
double claim_scores_bytes(double L, double bytes_per_score);             // L^2 * bytes, one head
double claim_topk_bytes(double L, double k, double bytes_per_score);     // L * k * bytes, one head

} // namespace attnlab
