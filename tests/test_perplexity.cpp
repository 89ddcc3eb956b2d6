// End-to-end perplexity of the default model against Hugging Face transformers
// on the same tokens (tests/data/ppl_smollm2.json, tools/gen_ppl_golden.py).
#include "data/corpus.h"
#include "metrics/perplexity.h"
#include "model/model_files.h"
#include "model/tokenizer.h"
#include "model/llama.h"
#include "test_util.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

using namespace attnlab;

TEST_CASE("perplexity on a KJV evaluation slice at ctx 1024 matches transformers within 0.5%", "[model]") {
    if (!attnlab_test::need_asset(attnlab_test::default_model_path())) return;
    std::ifstream f(attnlab_test::data_dir() + "/ppl_smollm2.json");
    REQUIRE(f.good());
    nlohmann::json g = nlohmann::json::parse(f);
    std::vector<int32_t> ids = g["token_ids"].get<std::vector<int32_t>>();
    REQUIRE(ids.size() == 4096);
    if (attnlab_test::need_asset(attnlab_test::kjv_path())) {
        // the same ids come out of our tokenizer on kjv:eval, so `attnlab-cli ppl
        // --text kjv:eval --ctx 1024 --max-tokens 4096` is this very measurement
        bpe_tokenizer tok = tokenizer_load(attnlab_test::default_model_path());
        text_source eval = text_load("kjv:eval");
        std::vector<int32_t> ours = tok.encode(eval.text.substr(0, 200000));
        ours.resize(ids.size());
        CHECK(ours == ids);
    }
    llama_model m = llama_model_load(attnlab_test::default_model_path());
    perplexity_result r = perplexity_eval(m, ids, g["ctx"].get<int>());
    double ref = g["ppl"].get<double>();
    INFO("ours " << r.ppl << " reference " << ref << " (" << r.seconds << " s)");
    CHECK(r.n_predicted == g["n_predicted"].get<int64_t>());
    CHECK(r.n_windows == 4);
    CHECK(std::fabs(r.ppl - ref) / ref <= 0.005);
}
