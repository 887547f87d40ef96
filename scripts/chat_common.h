// chat_common: what chat_sft, chat_rl and chat_eval share beyond load_model (nanochat/load_model.h): bits per byte
// over SFT batches, reduced over the ranks. Header-only; the chat scripts include it.
//
//   LoadedModel lm = load_model("sft", device, "eval");            // largest tag, last step
//   double bpb = chat_bpb(lm.model, [&] { auto b = loader.next(); return std::pair{b.inputs, b.targets}; }, 10, tb);
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
#include "nanochat/formats/pyjson.h"
#include "nanochat/tokenizer.h"

namespace nanochat {

// Bits per byte (nanochat/loss_eval.py evaluate_bpb, nanochat/loss_eval.h) over `steps` SFT batches (int32 inputs
// widened for the model).
template <typename NextBatch>
double chat_bpb(GPT& model, NextBatch next_batch, int64_t steps, const torch::Tensor& token_bytes) {
  return evaluate_bpb(
      model,
      [&] {
        auto [x, y] = next_batch();
        return std::pair{x.to(torch::kInt64), y};
      },
      steps, token_bytes, [](torch::Tensor& t) { all_reduce(t, Reduce::sum); });
}

}  // namespace nanochat
