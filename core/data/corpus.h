#pragma once
// Real text for experiments, and the one rule that splits it.
//
// The default corpus is the King James Bible as Debian's bible-kjv prints it
// (`bible gen1:1-rev22:21`, saved by scripts/setup.sh to assets/text/kjv.txt).
// The split is made once, here, at a book boundary:
//   calibration = the Old Testament (Genesis 1 .. Malachi 4)
//   evaluation  = the New Testament (Matthew 1 .. Revelation 22)
// A book boundary keeps both parts long continuous prose (retrieval tests need
// 8k+ tokens of context) and puts no verse in both. Anything that is fitted
// (gates, routers, budgets) reads text_part::calibration; every reported
// metric reads text_part::evaluation. Code that fits parameters must call
// text_require_part() so that mistakes fail loudly instead of leaking.
#include <string>

namespace attnlab {

enum class text_part { whole, calibration, evaluation };
const char * text_part_name(text_part p);

struct text_source {
    std::string spec;      // what the user asked for: a path, "kjv:eval", ...
    std::string path;      // the file it was read from
    text_part part = text_part::whole;
    std::string text;      // UTF-8
    std::string sha256;    // of `text` (the part, not the whole file)
};

// The marker that starts the evaluation part in the KJV file.
extern const char * const kjv_evaluation_marker; // "Matthew 1\n"

// Where the default KJV text lives: $ATTNLAB_KJV, else assets/text/kjv.txt
// under the source tree.
std::string kjv_default_path();

// Resolves a text spec: "kjv" / "kjv:all", "kjv:calib", "kjv:eval", or a path
// to a UTF-8 text file ("-" reads standard input). A path may carry a part
// suffix when it is a KJV file: "/x/kjv.txt:eval". Rejects empty text, text
// with NUL bytes and invalid UTF-8 with input_error naming the file.
text_source text_load(const std::string & spec);

// Splits a full KJV text into its two parts; input_error if the marker is absent.
std::string kjv_part(const std::string & whole_text, text_part part, const std::string & path);

// Throws input_error unless src is the wanted part ("calibration text only").
void text_require_part(const text_source & src, text_part wanted, const std::string & what);

// Checks UTF-8 validity; returns the byte offset of the first bad sequence or npos.
size_t utf8_first_invalid(const std::string & s);

// The one rule for text, from a file or given literally (tokenize -s): UTF-8
// without NUL bytes, or input_error(origin, field, "invalid UTF-8 at byte N" /
// "binary data (NUL byte at offset N)"). Invalid bytes are refused, never
// dropped or replaced.
void text_check_utf8(const std::string & text, const std::string & origin, const std::string & field);

} // namespace attnlab
