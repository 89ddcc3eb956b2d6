#pragma once
// The two stages every block predictor shares (block_topk, learned_gate,
// hybrid, the gate's training): mean-pooling Q and K over blocks, and the
// per-query-block choice of key blocks from scores.
#include <cstdint>
#include <vector>

#include "methods/method.h"

namespace attnlab {

// Mean-pools Q and K of a head over blocks of B tokens (the last block over
// the tokens it has), into nb x d row-major doubles (block_topk's Stage 1).
void pool_blocks(const head_inputs & in, int B, std::vector<double> & qm, std::vector<double> & km);

// Stage 2 for query block I with nb_c causal key blocks, row[J] its scores
// (overwritten): the blocks with score >= tau (tau > 0), or the top
// ceil(rho·nb_c); always the diagonal I and block 0, which count toward the
// budget. `top` gets the kept J, ascending.
void select_block_row(double * row, int I, int nb_c, double rho, double tau, std::vector<int32_t> & top);

// Stage 2 over a whole nb x nb score matrix (row-major).
selection select_blocks_by_score(int L, int B, bool causal, const std::vector<double> & score, double rho, double tau);

} // namespace attnlab
