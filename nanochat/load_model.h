// load_model: a ready-to-use model from a checkpoint directory (nanochat's checkpoint_manager.build_model and
// load_model, nanochat/checkpoint_manager.py build_model): the tensors and meta come from checkpoint_manager (which
// strips "_orig_mod.", turns bf16 into fp32 on the CPU and patches old checkpoints), the GPT is built from meta's
// model_config, the weights are adopted with the checkpoint's dtypes, and the tokenizer from <base_dir>/tokenizer is
// checked against the model's vocabulary.
//
//   auto [model, tokenizer, meta] = load_model("base", device, "eval");              // largest tag, last step
//   auto lm = load_model("sft", device, "eval", "d12", 700);
//   LoadedModel lm = build_model(dir, step, device, "train");                          // a directory directly
//
// Missing directories, steps or tokenizer files fail with one line naming the path and the command that makes it.
// Not covered: optimizer state (checkpoint_manager's load_optimizer_state).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "nanochat/gpt.h"
#include "nanochat/formats/pyjson.h"
#include "nanochat/tokenizer.h"

namespace nanochat {

struct LoadedModel {
  GPT model{nullptr};
  Tokenizer tokenizer;
  Json meta;
  std::filesystem::path dir;
  int64_t step = 0;
};

// <base_dir>/tokenizer/tokenizer.pkl; a missing file fails naming the path and `nanochat tok_train`.
Tokenizer load_tokenizer();
// <base_dir>/tokenizer/token_bytes.pt as an int32 tensor on `device` (nanochat's get_token_bytes), checked to be
// what tok_train writes for a tokenizer of vocab_size tokens: 1-D, integer, one count >= 0 per token, not all zero
// (a wrong file would make bits per byte inf or negative without a word).
torch::Tensor load_token_bytes(const torch::Device& device, int64_t vocab_size);

// phase: "eval" or "train" (sets the module mode).
LoadedModel build_model(const std::filesystem::path& checkpoint_dir, int64_t step, const torch::Device& device,
                        const std::string& phase);

// source: "base" | "sft" | "rl". model_tag defaults to the largest d<N>, step to the last committed one.
LoadedModel load_model(const std::string& source, const torch::Device& device, const std::string& phase,
                       const std::optional<std::string>& model_tag = std::nullopt,
                       const std::optional<int64_t>& step = std::nullopt);

// The command that produces checkpoints of a source, for error messages ("nanochat base_train", ...).
std::string command_for_source(const std::string& source);

}  // namespace nanochat
