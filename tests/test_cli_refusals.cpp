// attnlab-cli refusals (issue 15): one line "error: ..." and exit code 2 for
// every refusal (option parsing and out-of-memory included), and the inputs
// that used to run silently with a wrong meaning. Runs the real binary.
#include "base/dir_lock.h"
#include "test_util.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace {

using attnlab_test::cli_path;
using attnlab_test::run_result;
using attnlab_test::run_sh;

run_result run_cli(const std::string & args) { return run_sh(cli_path() + " " + args); }

bool have_cli() {
    if (attnlab_test::file_exists(cli_path())) return true;
    if (std::getenv("ATTNLAB_REQUIRE_ASSETS")) FAIL("attnlab-cli not built at " << cli_path());
    WARN("skipped: attnlab-cli not built at " << cli_path());
    return false;
}

// The contract: exactly one line, "error: ...", and exit code 2.
void check_refusal(const run_result & r, const std::string & must_name) {
    INFO(r.out);
    CHECK(r.code == 2);
    CHECK(r.out.rfind("error: ", 0) == 0);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
    CHECK(r.out.find(must_name) != std::string::npos);
}

} // namespace

TEST_CASE("option parsing errors follow the contract: one line, exit 2", "[cli]") {
    if (!have_cli()) return;
    // CLI11 printed two lines and exited 104/105/106/109
    check_refusal(run_cli("ppl -q --model m.gguf --ctx 2147483648"), "--ctx");
    check_refusal(run_cli("ppl -q --model m.gguf --no-such-flag"), "--no-such-flag");
    check_refusal(run_cli("ppl -q"), "--model");
    check_refusal(run_cli("no-such-command"), "subcommand");
    check_refusal(run_cli(""), "subcommand");
    // help and version still exit 0
    CHECK(run_cli("--help").code == 0);
    CHECK(run_cli("ppl --help").code == 0);
    CHECK(run_cli("--version").code == 0);
}

TEST_CASE("out of memory is a refusal too: one line, exit 2", "[cli]") {
    if (!have_cli()) return;
    const std::string m = attnlab_test::default_model_path();
    if (!attnlab_test::need_asset(m)) return;
    // A sanitizer build reserves terabytes of address space: no ulimit -v.
    if (std::getenv("ATTNLAB_SANITIZED")) {
        WARN("skipped under a sanitizer build (ATTNLAB_SANITIZED)");
        return;
    }
    // an endless text under a 1 GB address-space limit: exit 3 before
    const run_result r = run_sh("ulimit -v 1000000; " + cli_path() + " tokenize -m " + m + " -t /dev/zero");
    check_refusal(r, "error: ");
}

TEST_CASE("sim --density outside (0, 1] is refused, not simulated as dense", "[cli]") {
    if (!have_cli()) return;
    for (const char * d : {"0", "-1", "nan", "1.5", "inf"}) {
        INFO(d);
        check_refusal(run_cli(std::string("sim --model smollm2-135m --hw h100-sxm --density ") + d), "--density: density: ");
    }
    const run_result ok = run_cli("sim --json --model smollm2-135m --hw h100-sxm --density 0.25");
    INFO(ok.out);
    REQUIRE(ok.code == 0);
    const nlohmann::json j = nlohmann::json::parse(ok.out.substr(ok.out.find('{')));
    CHECK(j.contains("dense_baseline"));   // a sparse method was simulated
}

TEST_CASE("invalid UTF-8 is refused alike from -s and from a file", "[cli]") {
    if (!have_cli()) return;
    const std::string m = attnlab_test::default_model_path();
    if (!attnlab_test::need_asset(m)) return;
    const std::string file = "/tmp/attnlab_test_cli_bad_utf8_" + std::to_string(::getpid()) + ".txt";
    std::ofstream(file, std::ios::binary) << "ab\xff" << "c";
    const run_result f = run_cli("tokenize -m " + m + " -t " + file);
    check_refusal(f, "invalid UTF-8 at byte 2");
    const run_result s = run_cli("tokenize -m " + m + " -s \"$(printf 'ab\\377c')\"");
    check_refusal(s, "invalid UTF-8 at byte 2");
    CHECK(s.out.find("--string") != std::string::npos);
    CHECK(run_cli("tokenize -m " + m + " -s 'ab c'").code == 0);
    std::remove(file.c_str());
}

TEST_CASE("capture, run and sweep outputs have one writer: a second is refused naming the holder", "[cli]") {
    if (!have_cli()) return;
    const std::string m = attnlab_test::default_model_path();
    if (!attnlab_test::need_asset(m)) return;
    const std::string base = "/tmp/attnlab_test_cli_lock_" + std::to_string(::getpid());
    REQUIRE(std::system(("rm -rf " + base + " && mkdir -p " + base).c_str()) == 0);
    const std::string me = "pid " + std::to_string(::getpid()) + " host ";
    {
        const attnlab::dir_lock held(base + "/t.safetensors", attnlab::dir_lock::file, "out");
        const run_result r = run_cli("capture -q --model " + m + " --ctx 16 --out " + base + "/t.safetensors");
        check_refusal(r, me);
    }
    {
        const attnlab::dir_lock held(base + "/snap", attnlab::dir_lock::file, "out");
        const run_result r = run_cli("run " + attnlab_test::source_dir() + "/scenarios/quadratic_wall.json --small -q --out " + base + "/snap");
        check_refusal(r, me);
    }
    {
        const attnlab::dir_lock held(base + "/sweep", attnlab::dir_lock::directory, "out");
        const run_result r = run_cli("sweep -q --model " + m + " --ctx 64 --methods dense --max-tokens 128 --no-figures --out " + base + "/sweep");
        check_refusal(r, me);
    }
    // once released, capture writes and leaves no lock or temporary behind
    const run_result ok = run_cli("capture -q --model " + m + " --ctx 16 --layers 0 --out " + base + "/t.safetensors");
    INFO(ok.out);
    CHECK(ok.code == 0);
    CHECK(run_sh("ls -A " + base).out == "sweep\nt.safetensors\n");
    REQUIRE(std::system(("rm -rf " + base).c_str()) == 0);
}
