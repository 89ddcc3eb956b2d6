// Snapshots: atomic writing, strict reading (corrupt, partial, staged and
// modified snapshots refused with the file and field named), exact metric
// comparison, and verify's re-run plumbing (with a stand-in runner).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

#include <omp.h>

#include "base/error.h"
#include "base/sha256.h"
#include "lab/snapshot.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace attnlab;

namespace {

// A fresh parent directory per test; the snapshot goes to PARENT/snap.
struct snap_tmp {
    std::string parent, dir;
    explicit snap_tmp(const std::string & name) {
        parent = "/tmp/attnlab_test_snapshot_" + std::to_string(::getpid()) + "_" + name;
        fs::remove_all(parent);
        fs::create_directories(parent);
        dir = parent + "/snap";
    }
    ~snap_tmp() {
        std::error_code ec;
        fs::remove_all(parent, ec);
    }
    // Entries of the parent other than the snapshot itself (staging leftovers).
    std::vector<std::string> siblings() const {
        std::vector<std::string> out;
        for (const auto & e : fs::directory_iterator(parent)) {
            if (e.path().filename() != "snap") out.push_back(e.path().filename().string());
        }
        return out;
    }
};

void write_text(const std::string & path, const std::string & text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
}

std::string read_text(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

nlohmann::json base_manifest(double ppl = 8.108759890585032) {
    return {{"scenario", {{"kind", "test"}}},
            {"threads", 2},
            {"seeds", {{"gate", 7}}},
            {"metrics", {{"ppl", ppl}, {"rows", nlohmann::json::array({1, 2.5})}}}};
}

// Writes a snapshot with "abc" (whose SHA-256 is the FIPS 180-2 test vector)
// and two more files, one in a subdirectory.
nlohmann::json write_example(const std::string & dir, bool overwrite = false, const std::string & extra = "v1") {
    snapshot_writer w(dir, overwrite);
    write_text(w.path("abc.txt"), "abc");
    write_text(w.path("figures/fig.png"), "not really a png " + extra);
    write_text(w.path("results.csv"), "a,b\n1,2\n");
    return w.commit(base_manifest());
}

using attnlab_test::expect_input_error;

// pid of a process that has exited (for "killed writer" leftovers).
pid_t dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return pid;
}

const char * const abc_sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

// The real binary (ATTNLAB_CLI, set by ctest).
std::string cli_path() {
    const char * e = std::getenv("ATTNLAB_CLI");
    return e ? e : attnlab::data_path("build/attnlab-cli");
}

struct cli_result {
    int code = -1;
    std::string out; // stdout + stderr
};

cli_result cli_run(const std::string & args) {
    cli_result r;
    FILE * p = ::popen((cli_path() + " " + args + " 2>&1").c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int st = ::pclose(p);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

} // namespace

TEST_CASE("snapshot: write, read back, files hashed", "[snapshot]") {
    snap_tmp t("roundtrip");
    const nlohmann::json written = write_example(t.dir);
    CHECK(t.siblings().empty());
    const nlohmann::json m = snapshot_read(t.dir);
    CHECK(m == written);
    CHECK(m["schema"] == "attnlab.snapshot/1");
    CHECK(m["program"]["name"] == "attnlab");
    CHECK(m["program"]["version"] == ATTNLAB_VERSION);
    const std::string commit = m["program"]["git_commit"];
    CHECK((commit == "unknown" || (commit.size() == 40 && commit.find_first_not_of("0123456789abcdef") == std::string::npos)));
    CHECK(m["threads"] == 2);
    CHECK(m["host"]["cpu"].is_string());
    CHECK(m["metrics"]["ppl"].get<double>() == 8.108759890585032);
    // created_utc like 2026-11-23T18:00:00Z
    const std::string created = m["created_utc"];
    CHECK(created.size() == 20);
    CHECK(created.back() == 'Z');
    REQUIRE(m["files"].size() == 3);
    // sorted by path; sizes and the known SHA-256 of "abc"
    CHECK(m["files"][0]["path"] == "abc.txt");
    CHECK(m["files"][0]["bytes"] == 3);
    CHECK(m["files"][0]["sha256"] == abc_sha256);
    CHECK(m["files"][1]["path"] == "figures/fig.png");
    CHECK(m["files"][2]["path"] == "results.csv");
    CHECK(m["files"][2]["bytes"] == 8);
    CHECK(read_text(t.dir + "/abc.txt") == "abc");
    const std::vector<snapshot_file> listed = snapshot_list_files(t.dir);
    REQUIRE(listed.size() == 3);
    for (size_t i = 0; i < listed.size(); i++) {
        CHECK(listed[i].path == m["files"][i]["path"]);
        CHECK(listed[i].bytes == m["files"][i]["bytes"]);
        CHECK(listed[i].sha256 == m["files"][i]["sha256"]);
    }
    // add_copy copies bytes exactly
    snap_tmp t2("copy");
    {
        snapshot_writer w(t2.dir);
        w.add_copy(t.dir + "/results.csv", "trained/gate.csv");
        w.commit(base_manifest());
    }
    CHECK(read_text(t2.dir + "/trained/gate.csv") == "a,b\n1,2\n");
    CHECK(snapshot_read(t2.dir)["files"][0]["path"] == "trained/gate.csv");
}

TEST_CASE("snapshot: corrupt and partial snapshots are refused", "[snapshot]") {
    snap_tmp t("corrupt");
    write_example(t.dir);
    REQUIRE_NOTHROW(snapshot_read(t.dir));

    SECTION("one flipped byte") {
        const std::string p = t.dir + "/figures/fig.png";
        std::string s = read_text(p);
        s[3] ^= 0x01;
        write_text(p, s);
        const input_error e = expect_input_error([&] { snapshot_read(t.dir); });
        CHECK(e.file() == p);
        CHECK(e.field() == "sha256");
    }
    SECTION("a file cut short") {
        const std::string p = t.dir + "/results.csv";
        write_text(p, "a,b\n");
        const input_error e = expect_input_error([&] { snapshot_read(t.dir); });
        CHECK(e.file() == p);
        CHECK(e.field() == "bytes");
    }
    SECTION("a deleted file") {
        fs::remove(t.dir + "/abc.txt");
        const input_error e = expect_input_error([&] { snapshot_read(t.dir); });
        CHECK(e.file() == t.dir + "/abc.txt");
        CHECK(e.field() == "file");
    }
    SECTION("an added file") {
        write_text(t.dir + "/figures/extra.png", "x");
        const input_error e = expect_input_error([&] { snapshot_read(t.dir); });
        CHECK(e.file() == t.dir + "/figures/extra.png");
        CHECK(e.field() == "files");
    }
    SECTION("a truncated manifest") {
        const std::string mp = t.dir + "/manifest.json";
        const std::string s = read_text(mp);
        write_text(mp, s.substr(0, s.size() / 2));
        const input_error e = expect_input_error([&] { snapshot_read(t.dir); });
        CHECK(e.file() == mp);
        CHECK(e.field() == "json");
    }
    SECTION("an empty manifest") {
        write_text(t.dir + "/manifest.json", "");
        CHECK(expect_input_error([&] { snapshot_read(t.dir); }).field() == "json");
    }
    SECTION("a missing manifest") {
        fs::remove(t.dir + "/manifest.json");
        const input_error e = expect_input_error([&] { snapshot_read(t.dir); });
        CHECK(e.file() == t.dir + "/manifest.json");
        CHECK(e.field() == "manifest");
    }
    SECTION("a manifest of another schema") {
        nlohmann::json m = nlohmann::json::parse(read_text(t.dir + "/manifest.json"));
        m["schema"] = "attnlab.snapshot/2";
        write_text(t.dir + "/manifest.json", m.dump());
        CHECK(expect_input_error([&] { snapshot_read(t.dir); }).field() == "schema");
    }
    SECTION("a manifest whose file list escapes the directory") {
        nlohmann::json m = nlohmann::json::parse(read_text(t.dir + "/manifest.json"));
        m["files"][0]["path"] = "../abc.txt";
        write_text(t.dir + "/manifest.json", m.dump());
        CHECK(expect_input_error([&] { snapshot_read(t.dir); }).field() == "files[0].path");
    }
    SECTION("a manifest without metrics") {
        nlohmann::json m = nlohmann::json::parse(read_text(t.dir + "/manifest.json"));
        m.erase("metrics");
        write_text(t.dir + "/manifest.json", m.dump());
        CHECK(expect_input_error([&] { snapshot_read(t.dir); }).field() == "metrics");
    }
    SECTION("not a directory at all") {
        CHECK(expect_input_error([&] { snapshot_read(t.dir + "/abc.txt"); }).field() == "dir");
        CHECK(expect_input_error([&] { snapshot_read(t.parent + "/nothing_here"); }).field() == "dir");
    }
}

TEST_CASE("snapshot: an interrupted export leaves nothing that looks whole", "[snapshot]") {
    snap_tmp t("interrupt");
    SECTION("writer destroyed without commit (exception, cancel)") {
        {
            snapshot_writer w(t.dir);
            write_text(w.path("abc.txt"), "abc");
            CHECK(fs::is_directory(w.staging_dir()));
        }
        CHECK_FALSE(fs::exists(t.dir));
        CHECK(t.siblings().empty());
    }
    SECTION("process killed before commit: staging left, never read, cleaned by the next writer") {
        // The child stages files and dies without running destructors, like SIGKILL.
        const pid_t pid = ::fork();
        if (pid == 0) {
            try {
                snapshot_writer * w = new snapshot_writer(t.dir);
                write_text(w->path("abc.txt"), "abc");
            } catch (...) {
            }
            ::_exit(0);
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        CHECK_FALSE(fs::exists(t.dir));
        std::vector<std::string> left = t.siblings();
        // the dead writer's lock file stays too (the kernel freed its lock)
        const auto lock_at = std::find(left.begin(), left.end(), "snap.attnlab-lock");
        REQUIRE(lock_at != left.end());
        left.erase(lock_at);
        REQUIRE(left.size() == 1);
        CHECK(left[0].rfind(".snap.staging-" + std::to_string(pid) + "-", 0) == 0);
        CHECK(expect_input_error([&] { snapshot_read(t.dir); }).field() == "dir");
        CHECK_THROWS_AS(snapshot_read(t.parent + "/" + left[0]), input_error);
        write_example(t.dir);
        CHECK(t.siblings().empty());
        CHECK_NOTHROW(snapshot_read(t.dir));
    }
    SECTION("killed between the manifest and the rename: a complete staging dir is still refused") {
        snap_tmp whole("interrupt_whole");
        write_example(whole.dir);
        const std::string staged = t.parent + "/.snap.staging-" + std::to_string(dead_pid()) + "-0123abcd";
        fs::rename(whole.dir, staged);
        write_text(staged + "/.attnlab-staging", "pid 1\n");   // the mark stays until just before the rename
        const input_error e = expect_input_error([&] { snapshot_read(staged); });
        CHECK(e.field() == "dir");
        CHECK(std::string(e.what()).find("staging") != std::string::npos);
        CHECK_FALSE(fs::exists(t.dir));
        write_example(t.dir);
        CHECK_FALSE(fs::exists(staged));
    }
}

TEST_CASE("snapshot: stale-staging cleanup removes only folders the program made", "[snapshot]") {
    // issue 15: any dead-pid sibling named like a staging folder was deleted.
    snap_tmp t("lookalike");
    const std::string pid = std::to_string(dead_pid());
    const std::string mine = t.parent + "/.snap.staging-" + pid + "-00000001";
    const std::string lookalike = t.parent + "/.snap.staging-" + pid + "-notours";
    const std::string old_lookalike = t.parent + "/.snap.old-" + pid + "-notours";
    for (const std::string & d : {mine, lookalike, old_lookalike}) {
        fs::create_directories(d);
        write_text(d + "/data.txt", "user data");
    }
    write_text(mine + "/.attnlab-staging", "pid " + pid + "\n");
    write_example(t.dir);
    CHECK_FALSE(fs::exists(mine));
    CHECK(read_text(lookalike + "/data.txt") == "user data");
    CHECK(read_text(old_lookalike + "/data.txt") == "user data");
    // the published snapshot carries no mark
    CHECK_FALSE(fs::exists(t.dir + "/.attnlab-staging"));
}

TEST_CASE("snapshot: replacing an existing directory", "[snapshot]") {
    snap_tmp t("replace");
    write_example(t.dir, false, "old");
    const std::string old_sha = snapshot_read(t.dir)["files"][1]["sha256"];
    SECTION("refused without overwrite") {
        CHECK(expect_input_error([&] { snapshot_writer w(t.dir); }).field() == "out");
        CHECK(snapshot_read(t.dir)["files"][1]["sha256"] == old_sha);
    }
    SECTION("replaced whole with overwrite") {
        {
            snapshot_writer w(t.dir, true);
            write_text(w.path("figures/fig.png"), "new figure");
            w.commit(base_manifest(1.0));
        }
        const nlohmann::json m = snapshot_read(t.dir);
        REQUIRE(m["files"].size() == 1); // the old abc.txt and results.csv are gone
        CHECK(m["files"][0]["sha256"] != old_sha);
        CHECK(m["metrics"]["ppl"] == 1.0);
        CHECK(read_text(t.dir + "/figures/fig.png") == "new figure");
        CHECK(t.siblings().empty());
    }
    SECTION("an overwrite that is abandoned keeps the old snapshot") {
        {
            snapshot_writer w(t.dir, true);
            write_text(w.path("figures/fig.png"), "new figure");
        }
        CHECK(snapshot_read(t.dir)["files"][1]["sha256"] == old_sha);
        CHECK(t.siblings().empty());
    }
    SECTION("a directory that is not a snapshot is never replaced") {
        snap_tmp other("replace_other");
        fs::create_directories(other.dir);
        write_text(other.dir + "/thesis.tex", "precious");
        CHECK(expect_input_error([&] { snapshot_writer w(other.dir, true); }).field() == "out");
        CHECK(read_text(other.dir + "/thesis.tex") == "precious");
    }
    SECTION("an empty directory is filled") {
        snap_tmp empty("replace_empty");
        fs::create_directories(empty.dir);
        write_example(empty.dir);
        CHECK_NOTHROW(snapshot_read(empty.dir));
    }
}

TEST_CASE("snapshot: staged paths stay inside the snapshot", "[snapshot]") {
    snap_tmp t("paths");
    snapshot_writer w(t.dir);
    CHECK(expect_input_error([&] { w.path("../escape.txt"); }).field() == "path");
    CHECK(expect_input_error([&] { w.path("/etc/passwd"); }).field() == "path");
    CHECK(expect_input_error([&] { w.path("a//b"); }).field() == "path");
    CHECK(expect_input_error([&] { w.path("manifest.json"); }).field() == "path");
    CHECK(expect_input_error([&] { w.commit(nlohmann::json{{"threads", 1}}); }).field() == "metrics");
    CHECK_FALSE(fs::exists(t.dir));
}

TEST_CASE("snapshot: exact metric comparison", "[snapshot]") {
    const nlohmann::json rec = {{"ppl", 0.1}, {"rows", {{{"ppl", 2.0}, {"n", 3}}, {{"ppl", 4.0}, {"n", 5}}}}, {"name", "x"}};
    CHECK(snapshot_compare_metrics(rec, rec).empty());
    // through text, as verify sees both sides
    CHECK(snapshot_compare_metrics(nlohmann::json::parse(rec.dump()), rec).empty());

    nlohmann::json m = rec;
    const double up = std::nextafter(4.0, 5.0);
    m["rows"][1]["ppl"] = up;
    auto d = snapshot_compare_metrics(rec, m);
    REQUIRE(d.size() == 1);
    CHECK(d[0].path == "/rows/1/ppl");
    CHECK(d[0].recorded == "4.0");
    CHECK(nlohmann::json::parse(d[0].measured).get<double>() == up); // printed exactly (round-trips)

    m = rec;
    m["ppl"] = std::nextafter(0.1, 0.0);
    m["name"] = "y";
    m["rows"][0].erase("n");
    m["new"] = 1;
    d = snapshot_compare_metrics(rec, m);
    REQUIRE(d.size() == 4);
    CHECK(d[0].path == "/name");
    CHECK(d[1].path == "/ppl");
    CHECK(d[2].path == "/rows/0/n");
    CHECK(d[2].measured == "<missing>");
    CHECK(d[3].path == "/new");
    CHECK(d[3].recorded == "<missing>");

    // sign of zero is a bit difference; an integer equal to a double is not
    CHECK(snapshot_compare_metrics({{"z", 0.0}}, {{"z", -0.0}}).size() == 1);
    CHECK(snapshot_compare_metrics({{"n", 3}}, {{"n", 3.0}}).empty());
    CHECK(snapshot_compare_metrics({{"n", 3}}, {{"n", "3"}}).size() == 1);
    CHECK(snapshot_compare_metrics({{"a", {1, 2}}}, {{"a", {1, 2, 3}}}).size() == 1);
    CHECK(snapshot_compare_metrics({{"a/b", 1}}, {{"a/b", 2}})[0].path == "/a~1b");
}

TEST_CASE("snapshot: verify re-runs with the recorded threads and compares", "[snapshot]") {
    snap_tmp t("verify");
    {
        snapshot_writer w(t.dir);
        write_text(w.path("results.csv"), "ppl\n8.1\n");
        nlohmann::json man = base_manifest();
        man["threads"] = 1;
        man["inputs"] = {{"model", {{"path", "m.gguf"}, {"sha256", "aa"}}}, {"text", {{"spec", "kjv:eval"}, {"sha256", "bb"}}}};
        w.commit(man);
    }
    const int threads_before = omp_get_max_threads();
    int threads_seen = -1;
    double ppl = 8.108759890585032;
    std::string model_sha = "aa", csv = "ppl\n8.1\n";
    const snapshot_runner runner = [&](const nlohmann::json & scenario, const std::string & out, job_progress *) {
        CHECK(scenario == nlohmann::json{{"kind", "test"}});
        threads_seen = omp_get_max_threads();
        snapshot_writer w(out);
        write_text(w.path("results.csv"), csv);
        nlohmann::json man = base_manifest(ppl);
        man["threads"] = omp_get_max_threads();
        man["inputs"] = {{"model", {{"path", "m.gguf"}, {"sha256", model_sha}}}, {"text", {{"spec", "kjv:eval"}, {"sha256", "bb"}}}};
        w.commit(man);
    };

    snapshot_verify_result r = snapshot_verify(t.dir, runner);
    CHECK(r.ok());
    CHECK(threads_seen == 1);
    CHECK(omp_get_max_threads() == threads_before);
    CHECK(r.rerun_dir.empty());

    ppl = std::nextafter(ppl, 0.0);
    model_sha = "cc";
    csv = "ppl\n8.0\n";
    const std::string keep = t.parent + "/kept";
    r = snapshot_verify(t.dir, runner, keep);
    CHECK_FALSE(r.ok());
    REQUIRE(r.diffs.size() == 2);
    CHECK(r.diffs[0].path == "/metrics/ppl");
    CHECK(r.diffs[1].path == "/inputs/model/sha256");
    CHECK(r.files_differ == std::vector<std::string>{"results.csv"});
    CHECK(r.rerun_dir == keep);
    CHECK_NOTHROW(snapshot_read(keep));
    // --keep never overwrites
    CHECK(expect_input_error([&] { snapshot_verify(t.dir, runner, keep); }).field() == "--keep");

    // a snapshot without a scenario cannot be verified
    snap_tmp bare("verify_bare");
    {
        snapshot_writer w(bare.dir);
        w.commit(nlohmann::json{{"metrics", nlohmann::json::object()}, {"threads", 1}});
    }
    CHECK(expect_input_error([&] { snapshot_verify(bare.dir, runner); }).field() == "scenario");
}

TEST_CASE("snapshot: attnlab-cli run, snapshot info and verify end to end", "[snapshot]") {
    if (!attnlab_test::file_exists(cli_path())) {
        if (std::getenv("ATTNLAB_REQUIRE_ASSETS")) FAIL("attnlab-cli not built at " << cli_path());
        WARN("skipped: attnlab-cli not built at " << cli_path());
        return;
    }
    // The quadratic wall is simulated (no model): the whole run takes < 1 s.
    snap_tmp t("cli");
    cli_result r = cli_run("run " + attnlab_test::source_dir() + "/scenarios/quadratic_wall.json --small -q --out " + t.dir);
    INFO(r.out);
    REQUIRE(r.code == 0);
    r = cli_run("snapshot info --json " + t.dir);
    REQUIRE(r.code == 0);
    const nlohmann::json info = nlohmann::json::parse(r.out);
    CHECK(info["manifest"] == snapshot_read(t.dir));
    CHECK(info["manifest"]["metrics"].size() > 0);

    r = cli_run("snapshot verify -q " + t.dir);
    INFO(r.out);
    CHECK(r.code == 0);
    CHECK(r.out.find("ok: all") != std::string::npos);

    SECTION("a recorded metric one ulp off fails verify, naming it") {
        nlohmann::json m = nlohmann::json::parse(read_text(t.dir + "/manifest.json"));
        std::string key;
        for (auto it = m["metrics"].begin(); it != m["metrics"].end() && key.empty(); ++it) {
            for (auto jt = it.value().begin(); it.value().is_array() && jt != it.value().end() && key.empty(); ++jt) {
                for (auto kt = jt->begin(); jt->is_object() && kt != jt->end(); ++kt) {
                    if (kt.value().is_number_float() && kt.value().get<double>() > 0.0) {
                        key = "/metrics/" + it.key() + "/" + std::to_string(jt - it.value().begin()) + "/" + kt.key();
                        kt.value() = std::nextafter(kt.value().get<double>(), 1e300);
                        break;
                    }
                }
            }
        }
        REQUIRE_FALSE(key.empty());
        write_text(t.dir + "/manifest.json", m.dump(2));
        r = cli_run("snapshot verify -q --json " + t.dir);
        INFO(r.out);
        CHECK(r.code == 1);
        const nlohmann::json v = nlohmann::json::parse(r.out.substr(r.out.find('{')));
        CHECK(v["ok"] == false);
        REQUIRE(v["diffs"].size() == 1);
        CHECK(v["diffs"][0]["path"] == key);
    }
    SECTION("a damaged figure is refused by info and verify with exit 2") {
        const nlohmann::json m = snapshot_read(t.dir);
        std::string fig;
        for (const auto & f : m["files"]) {
            if (f["path"].get<std::string>().rfind("figures/", 0) == 0) fig = f["path"];
        }
        REQUIRE_FALSE(fig.empty());
        std::string bytes = read_text(t.dir + "/" + fig);
        bytes[bytes.size() / 2] ^= 0x40;
        write_text(t.dir + "/" + fig, bytes);
        for (const char * cmd : {"snapshot info ", "snapshot verify -q "}) {
            r = cli_run(cmd + t.dir);
            INFO(r.out);
            CHECK(r.code == 2);
            CHECK(r.out.find("error: " + t.dir + "/" + fig + ": sha256: ") != std::string::npos);
        }
    }
}

TEST_CASE("snapshot: a manifest summarised for display and restore", "[snapshot]") {
    // A scenario snapshot: what the app's Snapshots view shows, field by field.
    const nlohmann::json m = nlohmann::json::parse(R"({
        "schema": "attnlab.snapshot/1",
        "program": {"name": "attnlab", "version": "0.9", "git_commit": "0123456789abcdef0123", "build_type": "Release"},
        "created_utc": "2026-11-23T18:00:00Z",
        "scenario": {"kind": "sweep", "title": "Trade-offs", "ctx": [1024, 2048]},
        "small": true,
        "inputs": {"model": {"path": "assets/models/m.gguf", "id": "m", "sha256": "aa11"},
                   "text": {"spec": "kjv:eval", "sha256": "bb22"}},
        "methods": ["dense", "window:w=256", "gate:params=g.bin", {"odd": 1}, "block_topk:rho=0.2,B=64"],
        "threads": 4,
        "metrics": {"ppl": 8.5, "note": "text", "rows": [1, 2]},
        "files": [{"path": "results.csv"}, {"path": "figures/a.png"}, {"path": "figures/b.png"}]
    })");
    const snapshot_summary s = snapshot_summarize(m);
    CHECK(s.program_name == "attnlab");
    CHECK(s.program_version == "0.9");
    CHECK(s.git_commit == "0123456789abcdef0123");
    CHECK(s.build_type == "Release");
    CHECK(s.created_utc == "2026-11-23T18:00:00Z");
    CHECK(s.has_scenario);
    CHECK(s.small);
    CHECK_FALSE(s.gui_export);
    CHECK(s.scenario_title == "Trade-offs");
    CHECK(s.scenario_kind == "sweep");
    CHECK(s.model == "assets/models/m.gguf");
    CHECK(s.model_sha256 == "aa11");
    CHECK(s.text_spec == "kjv:eval");
    CHECK(s.text_sha256 == "bb22");
    CHECK(s.methods == std::vector<std::string>{"dense", "window:w=256", "gate:params=g.bin", "{\"odd\":1}",
                                                 "block_topk:rho=0.2,B=64"});
    CHECK(s.threads == 4);
    CHECK(s.n_files == 3);
    CHECK(s.figures == std::vector<std::string>{"figures/a.png", "figures/b.png"});
    REQUIRE(s.metrics.size() == 3);   // nlohmann orders keys
    CHECK(s.metrics[0] == std::make_pair(std::string("note"), std::string("text")));
    CHECK(s.metrics[1] == std::make_pair(std::string("ppl"), std::string("8.5")));
    CHECK(s.metrics[2] == std::make_pair(std::string("rows"), std::string("[1,2]")));
    CHECK(s.can_restore());
    CHECK(s.restore_model == "assets/models/m.gguf");
    CHECK(s.restore_text == "kjv:eval");
    CHECK(s.restore_ctx == 1024);                    // the first of the scenario's ctx list
    CHECK(s.restore_method == "window:w=256");       // not dense, has parameters, no file

    // An app export: "gui" decides ctx, method and layers.
    const nlohmann::json g = nlohmann::json::parse(R"({
        "gui": {"ctx": 300, "method": "oracle_topk:rho=0.1", "layers_spec": "0-3"},
        "inputs": {"model": {"path": "m.gguf"}, "text": {"spec": "typed"}},
        "methods": ["window:w=8"], "files": []
    })");
    const snapshot_summary sg = snapshot_summarize(g);
    CHECK(sg.gui_export);
    CHECK_FALSE(sg.has_scenario);
    CHECK(sg.restore_ctx == 300);
    CHECK(sg.restore_method == "oracle_topk:rho=0.1");
    CHECK(sg.restore_layers_spec == "0-3");

    // Presets only (no model file), missing and mistyped fields: empty, no throw.
    const nlohmann::json p = nlohmann::json::parse(R"({
        "program": "x", "scenario": {"source": "llama3-8b", "ctx": 4096}, "inputs": {"model": 5},
        "methods": ["dense", "gate:params=g.bin"], "threads": "many", "metrics": [1]
    })");
    const snapshot_summary sp = snapshot_summarize(p);
    CHECK(sp.program_name.empty());
    CHECK(sp.preset_source == "llama3-8b");
    CHECK(sp.preset_hw == "-");
    CHECK(sp.model.empty());
    CHECK_FALSE(sp.can_restore());
    CHECK(sp.restore_ctx == 4096);
    CHECK(sp.restore_method.empty());
    CHECK(sp.threads == 0);
    CHECK(sp.metrics.empty());
    CHECK(snapshot_summarize(nlohmann::json()).n_files == 0);
}

TEST_CASE("snapshot: the app's export manifest", "[snapshot]") {
    snapshot_gui_state st;
    st.model_path = "m.gguf";
    st.capture.model_id = "m";
    st.capture.model_sha256 = "aa";
    st.capture.text_spec = "kjv:eval";
    st.capture.text_sha256 = "bb";
    st.capture.layers = {0, 1, 2};
    st.capture.token_ids = {1, 2, 3};
    st.layer = 2;
    st.head = 1;
    st.threads = 2;
    st.method = "window:w=8";
    st.layers_spec = "0-2";
    st.capture_seconds = 0.5;
    const nlohmann::json m = snapshot_gui_manifest(st);
    CHECK(m["gui"] == nlohmann::json::parse(
                          R"({"ctx":3,"method":"window:w=8","layer":2,"head":1,"layers_spec":"0-2","capture_seconds":0.5})"));
    CHECK(m["inputs"]["model"] == nlohmann::json::parse(R"({"path":"m.gguf","id":"m","sha256":"aa"})"));
    CHECK(m["inputs"]["text"] == nlohmann::json::parse(R"({"spec":"kjv:eval","sha256":"bb"})"));
    CHECK(m["methods"] == nlohmann::json::array({"window:w=8"}));
    CHECK(m["threads"] == 2);
    CHECK(m["metrics"]["capture_tokens"] == 3);
    CHECK(m["metrics"]["capture_layers"] == nlohmann::json::array({0, 1, 2}));
    // sha256 of the ids' bytes (little-endian int32): 01 00 00 00 02 00 00 00 03 00 00 00
    const std::string bytes("\x01\0\0\0\x02\0\0\0\x03\0\0\0", 12);
    CHECK(m["metrics"]["token_ids_sha256"] == sha256_hex(bytes));
    // What the view reads back from it.
    const snapshot_summary s = snapshot_summarize(m);
    CHECK(s.restore_ctx == 3);
    CHECK(s.restore_method == "window:w=8");
    CHECK(s.restore_layers_spec == "0-2");
}
