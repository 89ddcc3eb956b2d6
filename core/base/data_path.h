#pragma once
// Where the program's data files are (assets/, scenarios/, bench/results/):
// never a path baked in at build time, so a binary copied to another machine
// finds the data beside it. The root is the first of these that holds
// assets/presets/:
//   1. the executable's folder and its parents, up to two levels
//      (build/attnlab-cli finds the checkout above build/);
//   2. $ATTNLAB_DATA_DIR;
//   3. the working directory.
// With none of them, the working directory is used, so that errors name a
// path the user can act on.
#include <string>

namespace attnlab {

// The data root, found once and cached (absolute, no trailing slash).
const std::string & data_root();

// data_root() + "/" + rel.
std::string data_path(const std::string & rel);

// The candidates data_root() tries, in order (for tests and error messages).
std::string data_root_search_order();

} // namespace attnlab
