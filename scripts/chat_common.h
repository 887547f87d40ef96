// chat_common: what chat_sft, chat_rl and chat_eval share — a model + tokenizer from a checkpoint (over
// nanochat/load_model.h, keeping the tag it chose), bits per byte over SFT batches, meta's model_config.
// Header-only; the chat scripts include it.
//
//   ChatModel cm = load_chat_model("sft", device, "eval");            // largest tag, last step
//   double bpb = chat_bpb(cm.model, [&] { auto b = loader.next(); return std::pair{b.inputs, b.targets}; }, 10, tb);
//
// Not covered: optimizer state (checkpoint_manager's load_optimizer_state), distributed reduction.
#pragma once

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "nanochat/common.h"
#include "nanochat/gpt.h"
#include "nanochat/load_model.h"
#include "nanochat/loss_eval.h"
#include "nanochat/pyjson.h"
#include "nanochat/tokenizer.h"

namespace nanochat {

struct ChatModel {
  GPT model{nullptr};
  Tokenizer tokenizer;
  Json meta;
  std::string model_tag;
  int64_t step = 0;
};

// source "base" | "sft" | "rl"; phase "train" | "eval". Tag defaults to the largest d<N>, step to the last one.
inline ChatModel load_chat_model(const std::string& source, const torch::Device& device, const std::string& phase,
                                 const std::optional<std::string>& model_tag = std::nullopt,
                                 const std::optional<int64_t>& step = std::nullopt) {
  LoadedModel lm = load_model(source, device, phase, model_tag, step);
  return ChatModel{lm.model, std::move(lm.tokenizer), std::move(lm.meta), lm.dir.filename().string(), lm.step};
}


// Bits per byte (SPEC §12, nanochat/loss_eval.h) over `steps` SFT batches (int32 inputs widened for the model).
template <typename NextBatch>
double chat_bpb(GPT& model, NextBatch next_batch, int64_t steps, const torch::Tensor& token_bytes) {
  return evaluate_bpb(model, [&] {
    auto [x, y] = next_batch();
    return std::pair{x.to(torch::kInt64), y};
  }, steps, token_bytes, [](torch::Tensor& t) { all_reduce(t, Reduce::sum); });
}

}  // namespace nanochat
