// chat_eval's evaluation loop (scripts/chat_eval.py run_chat_eval), shared with chat_sft's ChatCORE. See
// scripts/chat_eval.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/engine.h"
#include "nanochat/gpt.h"
#include "nanochat/tokenizer.h"
#include "tasks/common.h"

namespace nanochat {

// Accuracy of the model on the task `name` (ARC-Easy, ARC-Challenge, MMLU, GSM8K, HumanEval, SpellingBee):
// categorical tasks score the answer letters' logits in batches of batch_size; generative tasks sample
// num_samples completions per problem (pass@num_samples), decoding up to batch_size problems together where that
// gives the same answers as one at a time (generative_batch_plan). inexact_batch: batch_size problems together
// wherever batching is possible, even where fp rounding may change answers. max_problems caps the problems
// (nullopt = all).
double run_chat_eval(const std::string& name, GPT& model, const Tokenizer& tokenizer, Engine& engine,
                     int64_t batch_size = 1, int num_samples = 1, int max_new_tokens = 512, double temperature = 0.0,
                     int64_t top_k = 50, std::optional<int64_t> max_problems = std::nullopt,
                     bool inexact_batch = false);

// How many generative problems run_chat_eval decodes together, and why (for its log line). rows == 1 is
// Engine::generate_batch one problem at a time; rows > 1 is a BatchEngine of that many rows.
struct GenerativeBatchPlan {
  int rows = 1;
  bool exact = true;  // the answers equal one-at-a-time answers token for token
  std::string why;
};
GenerativeBatchPlan generative_batch_plan(const GPT& model, int64_t batch_size, int num_samples, bool inexact_batch);

// One generative task's problems [0, num_problems) on this rank (every world_size-th), `rows` at a time (see
// GenerativeBatchPlan), graded by the task; prints the running and final accuracy and returns it (over all
// ranks). completions, when given, receives this rank's completions in problem order, num_samples each.
double run_generative(const Task& task, const Tokenizer& tokenizer, Engine& engine, int rows, int num_samples,
                      int max_new_tokens, double temperature, int64_t top_k, int64_t num_problems,
                      std::vector<std::vector<std::string>>* completions = nullptr);

// ChatCORE: mean over the given (task, accuracy) pairs of (acc - baseline) / (1 - baseline).
double chatcore_metric(const std::vector<std::pair<std::string, double>>& results);

}  // namespace nanochat
