// loss_eval: bits per byte (nanochat/loss_eval.py evaluate_bpb) — the tokenizer-independent validation
// loss: total cross-entropy in nats over the scored targets divided by ln 2 × the UTF-8 bytes those targets
// stand for. Special tokens (token_bytes 0) and ignored targets (-1) count neither nats nor bytes.
//
//   double bpb = evaluate_bpb(model, [&] { auto b = val_loader.next(); return std::pair{b.inputs, b.targets}; },
//                             eval_steps, token_bytes);
//
// Runs under no_grad; the caller sets eval mode. Totals are summed across ranks when a process group is given.
// Returns +inf when no byte was scored.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include <torch/torch.h>

#include "nanochat/gpt.h"

namespace nanochat {

using BatchSource = std::function<std::pair<torch::Tensor, torch::Tensor>()>;  // (inputs, targets) int64 [B, T]

// all_reduce_sum, when given, sums a 1-element tensor (fp32 nats, int64 bytes) across ranks in place.
double evaluate_bpb(GPT& model, const BatchSource& batches, int64_t steps, const torch::Tensor& token_bytes,
                    const std::function<void(torch::Tensor&)>& all_reduce_sum = {});

}  // namespace nanochat
