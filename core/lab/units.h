#pragma once
// Numbers as text for reports, tables and figure axes, shared by the CLI and
// the scenario reports so both print the same.
#include <string>

namespace attnlab {

// 3 significant digits and an SI prefix: si_text(1.5e9, "B") = "1.5 GB".
std::string si_text(double x, const char * unit);

// A log2 axis value as a context length: 10 -> "1k", 20 -> "1M", 5 -> "32".
std::string pow2_label(double x);

} // namespace attnlab
