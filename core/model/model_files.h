#pragma once
// What kind of file the user handed us, and the tokenizer that goes with it.
#include <string>

namespace attnlab {

class bpe_tokenizer;

enum class file_kind { gguf, hf_checkpoint, trace, safetensors, tokenizer_json, unknown };
const char * file_kind_name(file_kind k);

// Looks at magic bytes and directory contents, never at the extension alone.
file_kind file_kind_detect(const std::string & path);

// Throws input_error(path, "file", ...) for a path whose kind is unknown,
// saying why: no such file, a directory that is not a checkpoint, or a file
// that is none of `expected` (e.g. "a GGUF file, a Hugging Face checkpoint
// directory or an AttnLab trace").
[[noreturn]] void file_kind_refuse(const std::string & path, const std::string & expected);

// The tokenizer of a GGUF file, of a HF checkpoint directory (its
// tokenizer.json), or a tokenizer.json itself. input_error otherwise.
bpe_tokenizer tokenizer_load(const std::string & path);

struct llama_model;

// A tokenizer that can emit ids the model has no embedding for is the wrong
// tokenizer: input_error naming the tokenizer's source and both sizes.
void tokenizer_check_model(const bpe_tokenizer & tok, const llama_model & m, const std::string & tok_source);

} // namespace attnlab
