#include "data/corpus.h"
#include "base/data_path.h"
#include "base/error.h"
#include "base/read_file.h"
#include "base/sha256.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace attnlab {

const char * const kjv_evaluation_marker = "Matthew 1\n";

const char * text_part_name(text_part p) {
    switch (p) {
        case text_part::whole: return "whole";
        case text_part::calibration: return "calibration";
        case text_part::evaluation: return "evaluation";
    }
    return "?";
}

std::string kjv_default_path() {
    if (const char * e = std::getenv("ATTNLAB_KJV")) return e;
    return attnlab::data_path("assets/text/kjv.txt");
}

void text_check_utf8(const std::string & text, const std::string & origin, const std::string & field) {
    if (text.find('\0') != std::string::npos) {
        throw input_error(origin, field, "binary data (NUL byte at offset " + std::to_string(text.find('\0')) + "), expected UTF-8 text");
    }
    const size_t bad = utf8_first_invalid(text);
    if (bad != std::string::npos) throw input_error(origin, field, "invalid UTF-8 at byte " + std::to_string(bad));
}

size_t utf8_first_invalid(const std::string & s) {
    size_t i = 0, n = s.size();
    while (i < n) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (len == 0 || i + len > n) return i;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
        for (int k = 1; k < len; k++) {
            unsigned char cc = static_cast<unsigned char>(s[i + k]);
            if ((cc >> 6) != 0x2) return i;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // overlong forms, surrogates and values past U+10FFFF are invalid
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
            return i;
        }
        i += len;
    }
    return std::string::npos;
}

std::string kjv_part(const std::string & whole, text_part part, const std::string & path) {
    if (part == text_part::whole) return whole;
    size_t at = whole.find(kjv_evaluation_marker);
    // the marker must begin a line: the heading of Matthew chapter 1
    while (at != std::string::npos && at > 0 && whole[at - 1] != '\n') at = whole.find(kjv_evaluation_marker, at + 1);
    if (at == std::string::npos) {
        throw input_error(path, "text", "not a KJV text from bible-kjv: no line \"Matthew 1\" to split at");
    }
    return part == text_part::calibration ? whole.substr(0, at) : whole.substr(at);
}

static std::string read_all(const std::string & path) {
    if (path == "-") {
        // stdin has no size to check first: read in chunks up to the cap
        const uint64_t cap = text_max_bytes();
        std::string s;
        char buf[1 << 16];
        while (std::cin.read(buf, sizeof(buf)) || std::cin.gcount() > 0) {
            s.append(buf, (size_t)std::cin.gcount());
            if (s.size() > cap) {
                throw input_error("-", "file", "standard input is over the " + std::to_string(cap) +
                                                   "-byte limit for texts (raise it with ATTNLAB_MAX_TEXT_BYTES)");
            }
        }
        return s;
    }
    return read_text_input(path, "file"); // regular files only, size-capped
}

static bool parse_part(const std::string & s, text_part * out) {
    if (s == "all" || s == "whole") { *out = text_part::whole; return true; }
    if (s == "calib" || s == "calibration") { *out = text_part::calibration; return true; }
    if (s == "eval" || s == "evaluation") { *out = text_part::evaluation; return true; }
    return false;
}

text_source text_load(const std::string & spec) {
    text_source src;
    src.spec = spec;
    std::string path = spec;
    text_part part = text_part::whole;
    bool kjv = false;
    if (spec == "kjv" || spec.rfind("kjv:", 0) == 0) {
        path = kjv_default_path();
        kjv = true;
        if (spec.size() > 4 && !parse_part(spec.substr(4), &part)) {
            throw input_error(spec, "text part", "unknown part '" + spec.substr(4) + "' (use all, calib or eval)");
        }
    } else {
        size_t colon = spec.rfind(':');
        text_part p;
        if (colon != std::string::npos && parse_part(spec.substr(colon + 1), &p)) {
            path = spec.substr(0, colon);
            part = p;
            kjv = true;
        }
    }
    std::string whole = read_all(path);
    if (kjv) whole = kjv_part(whole, part, path);
    if (whole.empty()) throw input_error(path, "text", "text is empty");
    text_check_utf8(whole, path, "text");
    src.path = path;
    src.part = part;
    src.text = std::move(whole);
    src.sha256 = sha256_hex(src.text);
    return src;
}

void text_require_part(const text_source & src, text_part wanted, const std::string & what) {
    if (src.part != wanted) {
        throw input_error(src.spec, "text part",
                          what + " needs the " + text_part_name(wanted) + " part of the text, got " +
                              text_part_name(src.part) + " (use kjv:" +
                              (wanted == text_part::calibration ? "calib" : "eval") + ")");
    }
}

} // namespace attnlab
