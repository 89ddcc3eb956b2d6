// attnlab-cli lab commands end to end: train (gate, router, layer_adaptive)
// and the trained files as methods in head / ppl / sweep; sweep --shard and
// merge against the unsharded plan; head, export and claims each checked
// against an independent computation. Runs the real binary (ATTNLAB_CLI).
#include "test_util.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/safetensors.h"
#include "base/sha256.h"
#include "io/trace.h"
#include "data/capture.h"
#include "data/corpus.h"
#include "lab/sweep.h"
#include "methods/learned_gate.h"
#include "methods/method.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/tokenizer.h"

using nlohmann::json;

namespace {

using attnlab_test::cli_path;
using attnlab_test::run_result;

// One OpenMP thread: these commands run small models on a few hundred tokens,
// where thread start-up and waiting cost more than they gain (several times
// more on a loaded machine); what is checked does not depend on it.
run_result run_cli(const std::string & args, bool merge_stderr = true) {
    return attnlab_test::run_sh("OMP_NUM_THREADS=1 " + cli_path() + " " + args, merge_stderr);
}

// --json output of a command that must succeed.
json run_json(const std::string & args) {
    const run_result r = run_cli(args, false);
    INFO(args << "\n" << r.out);
    REQUIRE(r.code == 0);
    return json::parse(r.out);
}

bool have_cli() {
    if (attnlab_test::file_exists(cli_path())) return true;
    if (std::getenv("ATTNLAB_REQUIRE_ASSETS")) FAIL("attnlab-cli not built at " << cli_path());
    WARN("skipped: attnlab-cli not built at " << cli_path());
    return false;
}

std::string fresh_dir(const std::string & name) {
    const std::string d = "/tmp/attnlab_test_cli_lab_" + std::to_string(getpid()) + "_" + name;
    REQUIRE(std::system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str()) == 0);
    return d;
}

void rm_rf(const std::string & d) {
    if (std::system(("rm -rf '" + d + "'").c_str()) != 0) WARN("could not remove " << d);
}

// An int32 tensor of a safetensors file, copied out.
std::vector<int32_t> tensor_i32(const attnlab::safetensors_file & f, const std::string & name) {
    const attnlab::st_tensor * t = f.find(name);
    REQUIRE(t);
    REQUIRE(t->dtype == attnlab::st_dtype::I32);
    std::vector<int32_t> v(size_t(t->n_elements()));
    std::memcpy(v.data(), t->data, v.size() * sizeof(int32_t));
    return v;
}

std::string read_text(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<json> read_jsonl(const std::string & path) {
    std::vector<json> rows;
    std::stringstream ss(read_text(path));
    std::string line;
    while (std::getline(ss, line)) {
        if (!line.empty()) rows.push_back(json::parse(line));
    }
    return rows;
}

void write_jsonl(const std::string & path, const std::vector<json> & rows) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    for (const auto & r : rows) f << r.dump() << "\n";
}

// A plain English text file (not KJV: any part may be used), long enough for
// a few hundred tokens of the tiny test tokenizer.
std::string plain_text_file(const std::string & dir) {
    const std::string path = dir + "/text.txt";
    std::ofstream f(path);
    const char * words[] = {"the", "light", "shineth", "in", "darkness", "and", "word", "was", "with", "God", "all",
                            "things", "were", "made", "by", "him", "life", "of", "men", "witness", "came", "for"};
    uint32_t x = 7;
    for (int i = 0; i < 1500; ++i) {
        x = x * 1103515245u + 12345u;
        f << words[(x >> 16) % 22] << ((i % 13 == 12) ? ".\n" : " ");
    }
    return path;
}

// The calibration part of the KJV file, hashed here from the file itself:
// everything before the line "Matthew 1".
std::string kjv_calib_sha256() {
    const std::string whole = read_text(attnlab_test::kjv_path());
    size_t at = whole.find("\nMatthew 1\n");
    REQUIRE(at != std::string::npos);
    return attnlab::sha256_hex(whole.substr(0, at + 1));
}

// Kept blocks of query block I under block_topk's rule (also learned_gate's):
// ceil(rho·(I+1)) of the I+1 causal blocks, at least the diagonal and block 0.
int kept_blocks(double rho, int I) {
    const int n = I + 1;
    const int budget = std::max(1, (int) std::ceil(rho * n - 1e-9));
    return std::min(n, std::max(budget, I == 0 ? 1 : 2));
}

// Block and token density of that rule on a causal head of L tokens, blocks
// of B (brute-force count: off-diagonal kept blocks are full, the diagonal a triangle).
void rule_density(double rho, int L, int B, double * block_d, double * token_d) {
    const int nb = (L + B - 1) / B;
    double kept = 0, causal_blocks = 0, pairs = 0;
    for (int I = 0; I < nb; ++I) {
        const int k = kept_blocks(rho, I), rows = std::min(B, L - I * B);
        kept += k;
        causal_blocks += I + 1;
        pairs += double(k - 1) * rows * B + double(rows) * (rows + 1) / 2;
    }
    *block_d = kept / causal_blocks;
    *token_d = pairs / (double(L) * (L + 1) / 2);
}

const char * const k_tiny = "/tiny_llama_hd64";

} // namespace

TEST_CASE("sweep_shard puts every plan row in exactly one shard; bad shard specs are refused", "[cli]") {
    const auto tasks = attnlab::sweep_plan({"dense", "window", "block_topk", "oracle_topk"}, {0.1, 0.2, 0.4}, {64, 128}, "T", "M", 0);
    REQUIRE(tasks.size() == 16);
    for (int n = 1; n <= 7; ++n) {
        std::map<std::string, int> seen;
        for (int i = 0; i < n; ++i) {
            const auto part = attnlab::sweep_shard(tasks, i, n);
            size_t k = 0;
            for (size_t t = 0; t < tasks.size(); ++t) {
                if (int(t % n) != i) continue;
                REQUIRE(k < part.size());
                CHECK(part[k++].key == tasks[t].key);   // plan order kept
            }
            CHECK(k == part.size());
            for (const auto & t : part) seen[t.key]++;
        }
        CHECK(seen.size() == tasks.size());
        for (const auto & kv : seen) CHECK(kv.second == 1);
    }
    const attnlab::sweep_shard_spec s = attnlab::sweep_shard_parse("3/8");
    CHECK(s.index == 3);
    CHECK(s.count == 8);
    for (const char * bad : {"8/8", "0/0", "-1/2", "1", "/2", "1/", "a/2", "1/2/3", " 1/2", "1.0/2", ""}) {
        INFO(bad);
        try {
            attnlab::sweep_shard_parse(bad);
            FAIL_CHECK("accepted");
        } catch (const attnlab::input_error & e) {
            CHECK(e.file() == "--shard");
            CHECK(e.field() == "shard");
        }
    }
    CHECK_THROWS_AS(attnlab::sweep_shard(tasks, 0, 0), attnlab::input_error);
    CHECK_THROWS_AS(attnlab::sweep_shard(tasks, 2, 2), attnlab::input_error);
}

TEST_CASE("train gate, router, layer_adaptive on calibration text; the files run as methods", "[cli]") {
    const std::string m = attnlab_test::default_model_path();
    if (!have_cli() || !attnlab_test::need_asset(m) || !attnlab_test::need_asset(attnlab_test::kjv_path())) return;
    const std::string dir = fresh_dir("train");
    const std::string calib_sha = kjv_calib_sha256();
    const std::string gate = dir + "/gate.safetensors", router = dir + "/router.safetensors", table = dir + "/table.json";
    const std::string common = " -q --json -m " + m + " -t kjv:calib --ctx 128 --layers 0,29";

    // gate: two windows (one held out), B=16
    const json g = run_json("train gate" + common + " --windows 2 --block 16 --dg 8 --steps 40 --out " + gate);
    CHECK(g["kind"] == "learned_gate");
    CHECK(g["text_sha256"] == calib_sha);
    CHECK(g["text_part"] == "calibration");
    CHECK(g["layers"] == json({0, 29}));
    CHECK(g["heads"] == 18);
    CHECK(g["val_windows"] == 1);
    CHECK(g["final_loss"].get<double>() < g["initial_loss"].get<double>());
    CHECK(g["bytes"].get<int64_t>() == int64_t(read_text(gate).size()));
    const attnlab::gate_params gp = attnlab::gate_load(gate);
    CHECK(gp.prov.calib_text_sha256 == calib_sha);
    CHECK(gp.layers == std::vector<int>{0, 29});
    CHECK(gp.block == 16);
    CHECK(gp.wq.size() == size_t(2 * 9 * 64 * 8));
    CHECK(gp.mean_final_loss() == Approx(g["final_loss"].get<double>()));

    // head with the gate: its densities are the rule's count (independent of the weights)
    {
        const json h = run_json("head -q --json --source " + m + " --ctx 128 --layer 0 --head 4 --method learned_gate:rho=0.3,B=16,params=" + gate);
        double bd = 0, td = 0;
        rule_density(0.3, 128, 16, &bd, &td);
        CHECK(h["n_tokens"] == 128);
        CHECK(h["block_density"].get<double>() == Approx(bd).margin(1e-12));
        CHECK(h["token_density"].get<double>() == Approx(td).margin(1e-12));
        CHECK(h["method"].get<std::string>().find("params=" + gate) != std::string::npos);
    }

    // router, then ppl: rho=1 keeps every key (sparse ppl = dense), rho=0.05 does not
    const json r = run_json("train router" + common + " --windows 1 --rank 4 --rows 32 --steps 20 --out " + router);
    CHECK(r["kind"] == "asa_router");
    CHECK(r["text_sha256"] == calib_sha);
    CHECK(r["final_loss"].get<double>() < r["initial_loss"].get<double>());
    {
        const std::string base = "ppl -q --json --model " + m + " --text kjv:eval --ctx 64 --max-tokens 64 --method ";
        const json all = run_json(base + "asa_router:rho=1,params=" + router);
        CHECK(all["token_density"].get<double>() == Approx(1.0));
        CHECK(all["ppl"].get<double>() == Approx(all["dense"]["ppl"].get<double>()).epsilon(1e-4));
        const json few = run_json(base + "asa_router:rho=0.05,params=" + router);
        CHECK(few["token_density"].get<double>() < 0.5);
        CHECK(std::fabs(few["ppl"].get<double>() / few["dense"]["ppl"].get<double>() - 1) > 1e-3);
    }

    // layer_adaptive: the table's greedy allocation, recomputed from its own
    // curves (at ctx 128, B=16 the two forced blocks alone are 0.42 of the blocks)
    const json la = run_json("train layer_adaptive" + common + " --windows 1 --block 16 --budget 0.6 --out " + table);
    CHECK(la["kind"] == "layer_adaptive");
    CHECK(la["budget_met"] == true);
    CHECK(la["greedy"]["mean_density"].get<double>() <= 0.6 + 1e-9);
    CHECK(la["greedy"]["mean_recall"].get<double>() >= la["uniform"]["mean_recall"].get<double>() - 1e-9);
    {
        const json t = json::parse(read_text(table));
        CHECK(t["calib_text_sha256"] == calib_sha);
        const std::vector<double> grid = t["grid"], head_rho = t["head_rho"];
        REQUIRE(head_rho.size() == 18);
        REQUIRE(t["curves"].size() == 18);
        double dens = 0;
        for (size_t i = 0; i < head_rho.size(); ++i) {
            // linear interpolation of the head's density curve at its allotted rho
            const std::vector<double> d = t["curves"][i]["density"];
            size_t k = 0;
            while (k + 1 < grid.size() && grid[k + 1] < head_rho[i]) ++k;
            const double f = k + 1 < grid.size() ? (head_rho[i] - grid[k]) / (grid[k + 1] - grid[k]) : 0.0;
            dens += (k + 1 < grid.size() ? d[k] + std::max(0.0, std::min(1.0, f)) * (d[k + 1] - d[k]) : d[k]) / 18;
        }
        CHECK(dens == Approx(la["greedy"]["mean_density"].get<double>()).margin(1e-9));
    }

    // all three in one sweep: provenance in every row, layer_adaptive at its table's budget
    {
        const std::string text = plain_text_file(dir);
        const std::string sw = dir + "/sweep";
        const std::string cmd = "sweep -q --json --model " + m + " --text " + text +
                                " --ctx 64 --max-tokens 64 --no-recall --no-figures --densities 0.5 --out " + sw +
                                " --methods learned_gate:B=16,params=" + gate + ",asa_router:params=" + router +
                                ",layer_adaptive:rho=0.6,table=" + table + ",B=16";
        const json s = run_json(cmd);
        REQUIRE(s["rows"].size() == 3);
        const std::map<std::string, std::string> file_of = {{"learned_gate", gate}, {"asa_router", router}, {"layer_adaptive", table}};
        for (const auto & row : s["rows"]) {
            const std::string name = row["method_name"];
            INFO(name);
            CHECK(row["params_file"] == file_of.at(name));
            CHECK(row["params_sha256"] == attnlab::sha256_hex(read_text(file_of.at(name))));
            CHECK(row["calib_text_sha256"] == calib_sha);
            CHECK(row["density_set"].get<double>() == (name == "layer_adaptive" ? 0.6 : 0.5));
            CHECK(row["key"].get<std::string>().find("|params=" + row["params_sha256"].get<std::string>()) != std::string::npos);
        }
        const std::string csv = read_text(sw + "/results.csv");
        CHECK(csv.find("params_file,params_sha256,calib_text_sha256") != std::string::npos);
        CHECK(csv.find(calib_sha) != std::string::npos);
        // a rerun finds them done
        const json again = run_json(cmd);
        CHECK(again["rows_reused"] == 3);
        CHECK(again["rows_run"] == 0);
    }
    rm_rf(dir);
}

TEST_CASE("train refuses evaluation text and bad options before loading the model", "[cli]") {
    if (!have_cli() || !attnlab_test::need_asset(attnlab_test::kjv_path())) return;
    const std::string dir = fresh_dir("refuse");
    const std::string out = dir + "/g.safetensors";
    // The model path does not exist: each error must come first.
    for (const char * kind : {"gate", "router", "layer_adaptive"}) {
        const run_result r = run_cli(std::string("train ") + kind + " -q -m /nonexistent.gguf -t kjv:eval --out " + out);
        INFO(r.out);
        CHECK(r.code == 2);
        CHECK(r.out.rfind("error: kjv:eval: text part: ", 0) == 0);
        CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
        CHECK(!attnlab_test::file_exists(out));
    }
    const run_result js = run_cli("train gate -q --json -m /nonexistent.gguf -t kjv:eval --out " + out, false);
    CHECK(js.code == 2);
    CHECK(json::parse(js.out)["error"]["field"] == "text part");
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"gate --block 24", "block"},   {"gate --steps 0", "steps"}, {"gate --dg 0", "dg"},
        {"router --rank 0", "rank"},    {"layer_adaptive --budget 1.5", "budget"},
        {"layer_adaptive --grid 0.1,2", "grid"}, {"gate --windows 0", "windows"}};
    for (const auto & b : bad) {
        const run_result r = run_cli("train " + b.first + " -q -m /nonexistent.gguf --out " + out);
        INFO(b.first << ": " << r.out);
        CHECK(r.code == 2);
        CHECK(r.out.find(": " + b.second + ": ") != std::string::npos);
    }
    const run_result nodir = run_cli("train gate -q -m /nonexistent.gguf --out /nonexistent_dir/g.safetensors");
    CHECK(nodir.code == 2);
    CHECK(nodir.out.find("/nonexistent_dir") != std::string::npos);
    rm_rf(dir);
}

TEST_CASE("sweep --shard i/n and merge reproduce the unsharded plan; conflicts are refused", "[cli]") {
    if (!have_cli()) return;
    const std::string dir = fresh_dir("shard");
    const std::string tiny = attnlab_test::data_dir() + k_tiny;
    const std::string text = plain_text_file(dir);
    const std::string base = "sweep -q --json --model " + tiny + " --text " + text +
                             " --ctx 32,64 --max-tokens 128 --densities 0.25,0.5 --no-figures"
                             " --methods dense,window:w=16,B=16,block_topk:B=16 --out ";
    const json full = run_json(base + dir + "/full");
    REQUIRE(full["rows"].size() == 8);
    CHECK(full["plan_rows"] == 8);
    const json s0 = run_json(base + dir + "/s0 --shard 0/2");
    const json s1 = run_json(base + dir + "/s1 --shard 1/2");
    CHECK(s0["plan_rows"] == 8);
    CHECK(s0["rows_run"] == 4);
    CHECK(s1["rows_run"] == 4);
    // shard i holds the plan rows i, i+n, ...
    for (size_t k = 0; k < 4; ++k) {
        CHECK(s0["rows"][k]["key"] == full["rows"][2 * k]["key"]);
        CHECK(s1["rows"][k]["key"] == full["rows"][2 * k + 1]["key"]);
    }
    const json mg = run_json("merge --json --out " + dir + "/merged " + dir + "/s0 " + dir + "/s1");
    CHECK(mg["rows"] == 8);
    CHECK(mg["duplicates_dropped"] == 0);
    CHECK(mg["figures"].size() == 6);   // 3 figures x 2 ctx
    for (const auto & f : mg["figures"]) CHECK(attnlab_test::file_exists(f.get<std::string>()));
    // merged rows == unsharded rows, by key (every measured value but the timings)
    std::map<std::string, json> want;
    for (const auto & r : read_jsonl(dir + "/full/results.jsonl")) want[r["key"]] = r;
    const std::vector<json> got = read_jsonl(dir + "/merged/results.jsonl");
    REQUIRE(got.size() == 8);
    for (const auto & r : got) {
        REQUIRE(want.count(r["key"]));
        const json & w = want[r["key"]];
        for (const char * k : {"method", "ctx", "tokens", "windows", "ppl_dense", "ppl", "top1_agreement", "token_density",
                               "block_density", "mass_recall", "layer_block_density", "density_set"}) {
            INFO(r["key"] << " " << k);
            CHECK(r[k] == w[k]);
        }
    }
    const std::string csv = read_text(dir + "/merged/results.csv");
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 9);
    // the full plan over the merged directory: nothing left to run
    const json resumed = run_json(base + dir + "/merged");
    CHECK(resumed["rows_reused"] == 8);
    CHECK(resumed["rows_run"] == 0);
    // merging again: its own 8 rows kept, the shards' 8 exact duplicates dropped
    const json again = run_json("merge --json --no-figures --out " + dir + "/merged " + dir + "/s0 " + dir + "/s1");
    CHECK(again["rows"] == 8);
    CHECK(again["duplicates_dropped"] == 8);

    // a row of the same key with another value
    REQUIRE(std::system(("cp -r " + dir + "/s1 " + dir + "/conflict").c_str()) == 0);
    std::vector<json> rows = read_jsonl(dir + "/conflict/results.jsonl");
    rows[2]["ppl"] = rows[2]["ppl"].get<double>() * 1.001;
    write_jsonl(dir + "/conflict/results.jsonl", rows);
    {
        const run_result c = run_cli("merge --out " + dir + "/m2 " + dir + "/s0 " + dir + "/s1 " + dir + "/conflict");
        INFO(c.out);
        CHECK(c.code == 2);
        CHECK(c.out.rfind("error: " + dir + "/conflict/results.jsonl: ppl: ", 0) == 0);
        CHECK(!attnlab_test::file_exists(dir + "/m2/results.jsonl"));
    }
    // rows of another model
    rows = read_jsonl(dir + "/s1/results.jsonl");
    for (auto & r : rows) {
        r["model_sha256"] = std::string(64, '0');
        r["key"] = r["key"].get<std::string>() + "x";
    }
    REQUIRE(std::system(("mkdir -p " + dir + "/other").c_str()) == 0);
    write_jsonl(dir + "/other/results.jsonl", rows);
    {
        const run_result c = run_cli("merge --out " + dir + "/m3 " + dir + "/s0 " + dir + "/other");
        INFO(c.out);
        CHECK(c.code == 2);
        CHECK(c.out.rfind("error: " + dir + "/other/results.jsonl: model_sha256: ", 0) == 0);
    }
    {
        const run_result c = run_cli("merge --out " + dir + "/m4 " + dir + "/s0 " + dir + "/missing");
        CHECK(c.code == 2);
        CHECK(c.out.rfind("error: " + dir + "/missing/results.jsonl: file: ", 0) == 0);
    }

    // bad shard specs: one error naming --shard, before the model loads
    for (const char * s : {"2/2", "0/0", "-1/2", "1", "a/2", "1/2/3", "3/2"}) {
        const run_result r = run_cli(base + dir + "/bad --shard " + s, false);
        INFO(s << ": " << r.out);
        CHECK(r.code == 2);
        CHECK(json::parse(r.out)["error"]["file"] == "--shard");
        CHECK(json::parse(r.out)["error"]["field"] == "shard");
        CHECK(!attnlab_test::file_exists(dir + "/bad/results.jsonl"));
    }
    rm_rf(dir);
}

TEST_CASE("head, export and claims agree with independent computations", "[cli]") {
    if (!have_cli()) return;
    const std::string dir = fresh_dir("hec");
    const std::string tiny = attnlab_test::data_dir() + k_tiny;
    const std::string text = plain_text_file(dir);
    const int L = 120, B = 16;   // the last block is partial

    // head: block_topk's densities are a count
    for (double rho : {0.2, 0.5}) {
        const json h = run_json("head -q --json --source " + tiny + " --text " + text + " --ctx " + std::to_string(L) +
                                " --layer 1 --head 2 --method block_topk:rho=" + std::to_string(rho) + ",B=16");
        double bd = 0, td = 0;
        rule_density(rho, L, B, &bd, &td);
        CHECK(h["n_tokens"] == L);
        CHECK(h["block_density"].get<double>() == Approx(bd).margin(1e-12));
        CHECK(h["token_density"].get<double>() == Approx(td).margin(1e-12));
    }

    // export: the block lists are the selection, computed here from our own capture
    {
        const std::string out = dir + "/flex.safetensors";
        const json e = run_json("export -q --json --source " + tiny + " --text " + text + " --ctx " + std::to_string(L) +
                                " --method block_topk:rho=0.3,B=16 --out " + out);
        CHECK(e["n_tokens"] == L);
        attnlab::llama_model mdl = attnlab::llama_model_load(tiny);
        attnlab::bpe_tokenizer tok = attnlab::tokenizer_load(tiny);
        attnlab::capture_options co;
        co.ctx = L;
        const attnlab::qkv_capture cap = attnlab::capture_run(mdl, tok, attnlab::text_load(text), co);
        auto method = attnlab::method_create("block_topk:rho=0.3,B=16");
        attnlab::safetensors_file f = attnlab::safetensors_file::open(out);
        const std::vector<int32_t> num = tensor_i32(f, "kv_num_blocks"), full = tensor_i32(f, "full_kv_num_blocks");
        const std::vector<int32_t> idx = tensor_i32(f, "kv_indices"), fidx = tensor_i32(f, "full_kv_indices");
        const int nq = (L + B - 1) / B, nh = mdl.cfg.n_head;
        REQUIRE(cap.layers.size() == 2);
        REQUIRE(num.size() == size_t(2 * nh * nq));
        const int nk = int(idx.size() / num.size());
        for (size_t li = 0; li < 2; ++li)
            for (int h = 0; h < nh; ++h) {
                const attnlab::selection s = method->select(attnlab::head_inputs_of(capture_layer_io(cap, li), h));
                for (int I = 0; I < nq; ++I) {
                    const size_t o = (li * nh + h) * nq + I;
                    std::set<int> want(s.blk_cols.begin() + s.blk_ptr[I], s.blk_cols.begin() + s.blk_ptr[I + 1]), have;
                    for (int t = 0; t < num[o]; ++t) have.insert(idx[o * nk + t]);
                    for (int t = 0; t < full[o]; ++t) have.insert(fidx[o * nk + t]);
                    INFO("layer " << li << " head " << h << " block " << I);
                    CHECK(num[o] + full[o] == kept_blocks(0.3, I));
                    CHECK(have == want);
                    CHECK(num[o] == 1);   // only the causal diagonal block needs mask_mod
                }
            }
    }

    // claims: its dense perplexity is the ppl command's, and block_topk's recall curve rises to 1
    {
        const json c = run_json("claims -q --json --model " + tiny + " --text " + text +
                                " --ctx 64 --windows 2 --block 16 --grid 0.25,0.5,1 --ppl-densities 0.5");
        const json p = run_json("ppl -q --json --model " + tiny + " --text " + text + " --ctx 64 --max-tokens 128");
        const json & d = c["data"];
        CHECK(d["tokens"] == 128);
        const std::vector<double> rec = d["block_topk_mean_recall"];
        REQUIRE(rec.size() == 3);
        CHECK(rec[0] <= rec[1] + 1e-12);
        CHECK(rec[2] == Approx(1.0).margin(1e-9));
        bool found = false;
        for (const auto & row : d["end_to_end"]) {
            if (row["method_name"] != "dense") continue;
            found = true;
            CHECK(row["ppl_dense"].get<double>() == Approx(p["ppl"].get<double>()).epsilon(1e-6));
            CHECK(row["ppl"].get<double>() == Approx(p["ppl"].get<double>()).epsilon(1e-4));
        }
        CHECK(found);
    }
    rm_rf(dir);
}
