#pragma once
// Accuracy budgets for the regime map, measured: from a sweep's rows, the
// least block density at which each method keeps the perplexity increase
// within a budget, replacing the placeholder densities of a regime table.
//
// What the measurement covers is stated in every entry's source: the sweep's
// model, text and context. The regime map then holds that density constant
// at every context length, which is an assumption (longer contexts usually
// tolerate lower densities), and says so.
#include <string>
#include <vector>

#include "lab/sweep.h"
#include "sim/regimes.h"

namespace attnlab {

struct regime_budget_entry {
    std::string table_name;        // the regime table's method ("block_topk")
    std::string sweep_method;      // the sweep method_name it was measured with ("" when none)
    double density = -1.0;         // least block density within budget; -1: none measured within it
    bool interpolated = false;     // between two measured rows (linear in block density)
    int64_t ctx = 0;
    int rows = 0;                  // sweep rows of that method at ctx
};

// Least block density with delta_ppl_rel <= budget among rows of one method
// at one ctx: the measured row itself, or the crossing of the straight line
// between the densest failing row below it and the sparsest passing row.
// -1 when no row passes.
double least_density_within(const std::vector<sweep_row> & rows, const std::string & method_name, int64_t ctx,
                            double max_delta_ppl_rel, bool * interpolated = nullptr);

// Which sweep method measures a regime-table method: the same name, or for
// the window family the best of window / sinks_window (the least density).
// The table's other keys (costs, kernel efficiency) are kept; methods with
// no row within budget are dropped, methods the sweep did not run are kept
// with "not measured" in their source. input_error when rows is empty or
// the budget is not in (0, 10].
regime_table regime_table_from_sweep(const regime_table & base, const std::vector<sweep_row> & rows,
                                     double max_delta_ppl_rel, const std::string & sweep_dir,
                                     std::vector<regime_budget_entry> * report = nullptr);

} // namespace attnlab
