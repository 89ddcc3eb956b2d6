// The calibration/evaluation split of the KJV and text loading.
#include "base/error.h"
#include "data/corpus.h"
#include "test_util.h"

#include <cstdio>
#include <fstream>

using namespace attnlab;

static std::string write_temp(const std::string & name, const std::string & bytes) {
    std::string p = "/tmp/attnlab_test_" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
}

TEST_CASE("KJV split: calibration is the Old Testament, evaluation the New, disjoint and complete", "[corpus]") {
    if (!attnlab_test::need_asset(attnlab_test::kjv_path())) return;
    text_source whole = text_load("kjv");
    text_source calib = text_load("kjv:calib");
    text_source eval = text_load("kjv:eval");
    REQUIRE(calib.part == text_part::calibration);
    REQUIRE(eval.part == text_part::evaluation);
    CHECK(calib.text + eval.text == whole.text);
    CHECK(eval.text.rfind("Matthew 1\n", 0) == 0);
    CHECK(calib.text.find("\nGenesis 1\n") != std::string::npos);
    CHECK(calib.text.find("\nMalachi 4\n") != std::string::npos);
    CHECK(calib.text.find("\nMatthew 1\n") == std::string::npos);
    CHECK(eval.text.find("\nGenesis 1\n") == std::string::npos);
    CHECK(eval.text.find("\nRevelation 22\n") != std::string::npos);
    // The New Testament is about a fifth of the KJV by bytes.
    double share = double(eval.text.size()) / double(whole.text.size());
    CHECK(share > 0.18);
    CHECK(share < 0.28);
    CHECK(calib.sha256 != eval.sha256);
    CHECK(eval.sha256.size() == 64);
}

TEST_CASE("text_require_part refuses the wrong part", "[corpus]") {
    text_source s;
    s.spec = "kjv:eval";
    s.part = text_part::evaluation;
    CHECK_THROWS_AS(text_require_part(s, text_part::calibration, "gate training"), input_error);
    CHECK_NOTHROW(text_require_part(s, text_part::evaluation, "metrics"));
    s.part = text_part::whole;
    CHECK_THROWS_AS(text_require_part(s, text_part::calibration, "gate training"), input_error);
}

TEST_CASE("kjv_part needs the Matthew marker at a line start", "[corpus]") {
    CHECK_THROWS_AS(kjv_part("no bible here", text_part::evaluation, "x.txt"), input_error);
    CHECK_THROWS_AS(kjv_part("see Matthew 1\nin text", text_part::evaluation, "x.txt"), input_error);
    CHECK(kjv_part("Genesis 1\na\nMatthew 1\nb\n", text_part::evaluation, "x") == "Matthew 1\nb\n");
    CHECK(kjv_part("Genesis 1\na\nMatthew 1\nb\n", text_part::calibration, "x") == "Genesis 1\na\n");
}

TEST_CASE("UTF-8 validation against known sequences", "[corpus]") {
    CHECK(utf8_first_invalid("plain ascii") == std::string::npos);
    CHECK(utf8_first_invalid("\xF0\x9F\x99\x82 \xE4\xB8\xAD\xC3\xA9") == std::string::npos); // emoji, CJK, é
    CHECK(utf8_first_invalid("ab\xC0\xAF") == 2);       // overlong '/'
    CHECK(utf8_first_invalid("\xED\xA0\x80") == 0);     // surrogate
    CHECK(utf8_first_invalid("x\xF4\x90\x80\x80") == 1); // above U+10FFFF
    CHECK(utf8_first_invalid("\xE4\xB8") == 0);         // truncated
    CHECK(utf8_first_invalid("\x80") == 0);             // stray continuation
    CHECK(utf8_first_invalid("\xFF") == 0);
}

TEST_CASE("text_load rejects empty, binary, invalid and missing text, naming the file", "[corpus]") {
    std::string empty = write_temp("empty.txt", "");
    std::string binary = write_temp("binary.txt", std::string("abc\0def", 7));
    std::string bad = write_temp("bad.txt", "ok \xC3\x28 no");
    for (const std::string & p : {empty, binary, bad, std::string("/nonexistent/attnlab.txt")}) {
        try {
            text_load(p);
            FAIL("accepted " << p);
        } catch (const input_error & e) {
            CHECK(e.file() == p);
            CHECK(std::string(e.what()).find(p) != std::string::npos);
        }
    }
    CHECK_THROWS_AS(text_load("kjv:nonsense"), input_error);
    std::string good = write_temp("good.txt", "In the beginning");
    text_source s = text_load(good);
    CHECK(s.text == "In the beginning");
    CHECK(s.part == text_part::whole);
    // sha256 of "In the beginning" (coreutils sha256sum)
    CHECK(s.sha256 == "633d21a649b80004199165cd9a3ff23cba683e9ea66fc733ed06a9e48ba9db0e");
}
