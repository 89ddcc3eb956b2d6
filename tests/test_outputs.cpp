// Outputs under hostile conditions (issue 15): non-finite metrics that read
// back, one writer per output directory, a killed run's temporaries removed
// (only those), and a cancel request that reaches a long write.
#include "base/atomic_write.h"
#include "base/dir_lock.h"
#include "base/error.h"
#include "base/job.h"
#include "lab/sweep.h"
#include "test_util.h"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

struct tmp_dir {
    std::string path;
    explicit tmp_dir(const std::string & name) {
        path = "/tmp/attnlab_test_outputs_" + std::to_string(::getpid()) + "_" + name;
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~tmp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string read_text(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_text(const std::string & path, const std::string & text) { std::ofstream(path, std::ios::binary) << text; }

// A pid no process has: a child that already exited and was reaped.
pid_t dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return pid;
}

sweep_row fake_row(const sweep_task & t, double ppl) {
    sweep_row r;
    r.model_sha256 = "m";
    r.text_sha256 = "t";
    r.text_spec = "kjv:eval";
    r.tokens = 100;
    r.windows = 1;
    r.ppl_dense = 10.0;
    r.ppl = ppl;
    r.delta_ppl = ppl - r.ppl_dense;
    r.delta_ppl_rel = r.delta_ppl / r.ppl_dense;
    r.top1_agreement = 0.9;
    r.token_density = r.block_density = t.density_set > 0 ? t.density_set : 0.5;
    r.layer_block_density = {0.5, std::nan("")};
    r.layer_token_density = {0.5, HUGE_VAL};
    r.seconds = 0.01;
    return r;
}

using attnlab_test::expect_input_error;

} // namespace

TEST_CASE("a non-finite metric is written explicitly and reads back: later sweeps and merges work", "[outputs]") {
    // issue 15: NaN was written as "ppl":null, after which every later sweep
    // or merge of the directory failed.
    tmp_dir t("nan");
    const std::string dir = t.path + "/sweep";
    const auto tasks = sweep_plan({"block_topk"}, {0.1, 0.2}, {64}, "T", "M", 0);
    REQUIRE(tasks.size() == 2);
    const auto nan_runner = [](const sweep_task & tk, job_progress *) {
        return fake_row(tk, tk.density_set < 0.15 ? std::nan("") : -HUGE_VAL);
    };
    sweep_execute({tasks[0]}, dir, nan_runner);
    const std::string line = read_text(dir + "/results.jsonl");
    const nlohmann::json j = nlohmann::json::parse(line.substr(0, line.find('\n')));
    CHECK(j["ppl"] == "nan");
    CHECK(j["delta_ppl"] == "nan");
    CHECK(j["layer_block_density"][1] == "nan");
    CHECK(j["layer_token_density"][1] == "inf");
    CHECK(j["non_finite"] == nlohmann::json({"ppl", "delta_ppl", "delta_ppl_rel", "layer_token_density", "layer_block_density"}));
    // the next sweep of the directory reads the row and runs the rest
    int ran = 0;
    const sweep_outcome o = sweep_execute(tasks, dir, [&](const sweep_task & tk, job_progress * p) {
        ran++;
        return nan_runner(tk, p);
    });
    CHECK(ran == 1);
    CHECK(o.reused == 1);
    REQUIRE(o.rows.size() == 2);
    CHECK(std::isnan(o.rows[0].ppl));
    CHECK(std::isnan(o.rows[0].layer_block_density[1]));
    CHECK(o.rows[0].layer_token_density[1] == HUGE_VAL);
    CHECK(o.rows[1].ppl == -HUGE_VAL);
    // merge of the directory, twice (duplicates compare equal)
    const sweep_merge_result m = sweep_merge({dir}, t.path + "/merged");
    CHECK(m.rows.size() == 2);
    const sweep_merge_result m2 = sweep_merge({dir}, t.path + "/merged");
    CHECK(m2.duplicates == 2);
    CHECK(std::isnan(sweep_load_rows(t.path + "/merged")[0].ppl));
    // a directory written before the fix (null) reads again as NaN
    std::string old = read_text(dir + "/results.jsonl");
    const size_t at = old.find("\"ppl\":\"nan\"");
    REQUIRE(at != std::string::npos);
    old.replace(at, 11, "\"ppl\":null");
    write_text(dir + "/results.jsonl", old);
    CHECK(std::isnan(sweep_load_rows(dir)[0].ppl));
    // any other non-number is still refused, naming the file
    old.replace(old.find("\"ppl\":null"), 10, "\"ppl\":\"x\"");
    write_text(dir + "/results.jsonl", old);
    CHECK(expect_input_error([&] { sweep_load_rows(dir); }).file() == dir + "/results.jsonl");
}

TEST_CASE("an output directory has one writer; a dead writer's lock is taken over", "[outputs]") {
    tmp_dir t("lock");
    const std::string dir = t.path + "/out";
    char host[256] = "";
    ::gethostname(host, sizeof host - 1);
    SECTION("a second writer is refused, naming the holder's pid and host") {
        const dir_lock first(dir, dir_lock::directory, "out");
        const input_error e = expect_input_error([&] { dir_lock second(dir, dir_lock::directory, "out"); });
        CHECK(e.file() == dir);
        CHECK(e.field() == "out");
        CHECK(std::string(e.what()).find("pid " + std::to_string(::getpid())) != std::string::npos);
        CHECK(std::string(e.what()).find(std::string("host ") + host) != std::string::npos);
        // sweeps and merges into it too
        const auto tasks = sweep_plan({"dense"}, {}, {64}, "T", "M", 0);
        int ran = 0;
        CHECK_THROWS_AS(sweep_execute(tasks, dir, [&](const sweep_task & tk, job_progress *) {
                            ran++;
                            return fake_row(tk, 1.0);
                        }),
                        input_error);
        CHECK(ran == 0);
        CHECK_THROWS_AS(sweep_merge({dir}, dir), input_error);
    }
    SECTION("released on destruction: the next writer gets it, no lock file left") {
        { const dir_lock first(dir, dir_lock::directory, "out"); }
        CHECK_FALSE(fs::exists(dir_lock_path(dir, dir_lock::directory)));
        CHECK_NOTHROW(dir_lock(dir, dir_lock::directory, "out"));
    }
    SECTION("another process holding it: refused; killed with the lock held: taken over") {
        int to_child[2], to_parent[2];
        REQUIRE(::pipe(to_child) == 0);
        REQUIRE(::pipe(to_parent) == 0);
        const pid_t pid = ::fork();
        if (pid == 0) {
            try {
                new dir_lock(dir, dir_lock::directory, "out");   // never released: the process dies holding it
            } catch (...) {
                ::_exit(1);
            }
            char c = 'x';
            (void) !::write(to_parent[1], &c, 1);
            (void) !::read(to_child[0], &c, 1);
            ::raise(SIGKILL);
        }
        char c;
        REQUIRE(::read(to_parent[0], &c, 1) == 1);
        const input_error e = expect_input_error([&] { dir_lock second(dir, dir_lock::directory, "out"); });
        CHECK(std::string(e.what()).find("pid " + std::to_string(pid) + " host ") != std::string::npos);
        (void) !::write(to_child[1], &c, 1);
        int st = 0;
        ::waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st));
        // the lock file is still there, with the dead holder's text
        CHECK(read_text(dir_lock_path(dir, dir_lock::directory)).find("pid " + std::to_string(pid)) != std::string::npos);
        {
            const dir_lock taken(dir, dir_lock::directory, "out");
            CHECK(read_text(taken.lock_path()).find("pid " + std::to_string(::getpid())) != std::string::npos);
        }
        for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) ::close(fd);
    }
    SECTION("a file output: the lock sits beside it") {
        const std::string f = t.path + "/trace.safetensors";
        const dir_lock first(f, dir_lock::file, "out");
        CHECK(first.lock_path() == f + ".attnlab-lock");
        CHECK_THROWS_AS(dir_lock(f, dir_lock::file, "out"), input_error);
    }
}

TEST_CASE("a killed writer's temporary is removed by the next run; other files never", "[outputs]") {
    // issue 15: kill -9 during capture's write left a large .tmp behind.
    tmp_dir t("tmp");
    const std::string target = t.path + "/trace.safetensors";
    // a writer killed mid-write: no destructor runs
    const pid_t pid = ::fork();
    if (pid == 0) {
        auto * f = new atomic_file(target);
        const std::string big(1 << 20, 'x');
        f->write(big.data(), big.size());
        ::raise(SIGKILL);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    const std::string left = atomic_temp_name(target, pid);
    REQUIRE(fs::exists(left));
    CHECK(fs::file_size(left) == (1u << 20));
    CHECK_FALSE(fs::exists(target));
    // files that only look alike, and a live process's temporary
    const std::string user_tmp = target + ".tmp";
    const std::string live = atomic_temp_name(target, ::getppid());
    const std::string not_pid = target + ".attnlab-tmp-12ab";
    const std::string dir_named = atomic_temp_name(t.path + "/folder", dead_pid());
    for (const std::string & p : {user_tmp, live, not_pid}) write_text(p, "keep");
    fs::create_directories(dir_named);
    write_file_atomic(target, "new");
    CHECK(read_text(target) == "new");
    CHECK_FALSE(fs::exists(left));
    for (const std::string & p : {user_tmp, live, not_pid}) CHECK(read_text(p) == "keep");
    CHECK(fs::is_directory(dir_named));
    // a directory lock sweeps the directory's dead temporaries of any name
    const std::string other = atomic_temp_name(t.path + "/results.csv", dead_pid());
    write_text(other, "partial");
    { const dir_lock lock(t.path, dir_lock::directory, "out"); }
    CHECK_FALSE(fs::exists(other));
    CHECK(read_text(user_tmp) == "keep");
    long parsed = 0;
    CHECK(atomic_temp_parse("x.attnlab-tmp-42", &parsed));
    CHECK(parsed == 42);
    CHECK_FALSE(atomic_temp_parse("x.attnlab-tmp-", &parsed));
    CHECK_FALSE(atomic_temp_parse(".attnlab-tmp-42", &parsed));
}

TEST_CASE("a cancel request reaches a long write: nothing half-written, nothing left", "[outputs]") {
    // issue 15: Ctrl-C during capture's final write was ignored.
    tmp_dir t("cancel");
    const std::string target = t.path + "/big.bin";
    write_text(target, "old");
    job_progress job;
    const std::string big(size_t(64) << 20, 'y');
    SECTION("cancelled before the write") {
        job.cancel();
        CHECK_THROWS_AS(write_file_atomic(target, big, &job), job_cancelled);
    }
    SECTION("cancelled between pieces of one large write") {
        atomic_file f(target, &job);
        f.write(big.data(), 1 << 20);
        job.cancel();
        CHECK_THROWS_AS(f.write(big.data(), big.size()), job_cancelled);
        CHECK(fs::file_size(f.tmp_path()) < big.size());
    }
    SECTION("cancelled after the data, before the rename") {
        atomic_file f(target, &job);
        f.write(big.data(), big.size());
        job.cancel();
        CHECK_THROWS_AS(f.commit(), job_cancelled);
    }
    CHECK(read_text(target) == "old");
    size_t entries = 0;
    for (const auto & e : fs::directory_iterator(t.path)) entries += e.path().filename() != "big.bin";
    CHECK(entries == 0);
}
