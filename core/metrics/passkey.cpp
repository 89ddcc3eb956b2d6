#include "metrics/passkey.h"
#include "base/error.h"
#include "base/job.h"
#include "model/llama.h"
#include "model/llama_gpu_api.h"
#include "model/tokenizer.h"

#include <random>

namespace attnlab {

// The wording of the classic passkey test (Mohtashami & Jaggi 2023), with
// real text instead of repeated filler sentences.
static const char * k_intro =
    "There is an important piece of information hidden inside a lot of irrelevant text. "
    "Find it and memorize it. I will quiz you about it.\n\n";
static const char * k_question = "\n\nWhat is the pass key? The pass key is";

passkey_prompt passkey_build(const bpe_tokenizer & tok, const std::string & filler, const passkey_options & opt) {
    if (!(opt.depth >= 0.0 && opt.depth <= 1.0)) throw input_error("passkey", "depth", "must be within 0..1");
    if (opt.n_digits < 1 || opt.n_digits > 12) throw input_error("passkey", "digits", "must be within 1..12");
    passkey_prompt p;
    std::mt19937_64 rng(opt.seed);
    p.key += char('1' + rng() % 9);  // no leading zero
    for (int i = 1; i < opt.n_digits; i++) p.key += char('0' + rng() % 10);

    std::vector<int32_t> intro = tok.encode(k_intro);
    std::vector<int32_t> needle = tok.encode(" The pass key is " + p.key + ". Remember it. " + p.key + " is the pass key. ");
    std::vector<int32_t> question = tok.encode(k_question);
    p.answer = tok.encode(" " + p.key);

    const int fixed = int(intro.size() + needle.size() + question.size() + p.answer.size());
    const int n_fill = opt.ctx - fixed;
    if (n_fill < 16) throw input_error("passkey", "ctx", "too short for the passkey prompt");
    // Filler: n_fill tokens of real text from a seeded offset, starting at a line.
    const size_t want_bytes = size_t(n_fill) * 8 + 4096;
    if (filler.size() < want_bytes) {
        throw input_error("passkey", "filler", "evaluation text too short for ctx " + std::to_string(opt.ctx));
    }
    size_t start = size_t(rng() % (filler.size() - want_bytes + 1));
    while (start > 0 && filler[start - 1] != '\n') start--;
    std::vector<int32_t> fill = tok.encode(filler.substr(start, want_bytes));
    if (int(fill.size()) < n_fill) throw input_error("passkey", "filler", "evaluation text too short");
    fill.resize(size_t(n_fill));

    const int at = int(opt.depth * n_fill);
    p.prompt = intro;
    p.prompt.insert(p.prompt.end(), fill.begin(), fill.begin() + at);
    p.needle_position = int(p.prompt.size());
    p.prompt.insert(p.prompt.end(), needle.begin(), needle.end());
    p.prompt.insert(p.prompt.end(), fill.begin() + at, fill.end());
    p.prompt.insert(p.prompt.end(), question.begin(), question.end());
    return p;
}

passkey_trial passkey_run(const llama_model & m, const bpe_tokenizer & tok, const std::string & filler,
                          const passkey_options & opt, attention_hook * hook, job_progress * progress) {
    llama_check_ctx(m, opt.ctx, 64);
    passkey_prompt p = passkey_build(tok, filler, opt);
    passkey_trial r;
    r.ctx = opt.ctx;
    r.depth = opt.depth;
    r.seed = opt.seed;
    r.n_digits = opt.n_digits;
    r.key = p.key;
    r.needle_position = p.needle_position;
    const std::vector<int32_t> & answer = p.answer;
    const int answer_at = int(p.prompt.size());
    std::vector<int32_t> ids = p.prompt;
    ids.insert(ids.end(), answer.begin(), answer.end());

    job_step(progress, 0.0, "passkey ctx " + std::to_string(opt.ctx));
    // Position p predicts token p+1: the answer's tokens are predicted from
    // answer_at-1 onwards. Count leading digits while greedy stays on track.
    std::vector<int32_t> best(answer.size());
    if (opt.gpu) {   // argmaxes reduced on the GPU: no [n, vocab] logits to the host
        opt.gpu->set_observer(hook);
        llama_gpu_scores sc;
        try {
            sc = opt.gpu->score(ids, opt.method, opt.score);
        } catch (...) {
            opt.gpu->set_observer(nullptr);
            throw;
        }
        opt.gpu->set_observer(nullptr);
        for (size_t i = 0; i < answer.size(); i++) best[i] = sc.argmax.at(size_t(answer_at - 1) + i);
    } else {
        forward_options fo;
        fo.hook = hook;
        fo.progress = progress;
        matrix_rm logits = llama_forward(m, ids, fo);
        for (size_t i = 0; i < answer.size(); i++) {
            Eigen::Index b;
            logits.row(answer_at - 1 + int(i)).maxCoeff(&b);
            best[i] = int32_t(b);
        }
    }
    int correct_tokens = 0;
    for (size_t i = 0; i < answer.size(); i++) {
        if (best[i] != answer[i]) break;
        correct_tokens++;
    }
    // Tokens to digits: decode the correctly predicted prefix.
    std::vector<int32_t> got(answer.begin(), answer.begin() + correct_tokens);
    std::string text = tok.decode(got);
    for (char c : text) {
        if (c >= '0' && c <= '9') r.digits_correct++;
    }
    r.retrieved = correct_tokens == int(answer.size());
    return r;
}

} // namespace attnlab
