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

namespace nanochat {

// Accuracy of the model on the task `name` (ARC-Easy, ARC-Challenge, MMLU, GSM8K, HumanEval, SpellingBee):
// categorical tasks score the answer letters' logits in batches of batch_size; generative tasks sample
// num_samples completions per problem (pass@num_samples). max_problems caps the problems (nullopt = all).
double run_chat_eval(const std::string& name, GPT& model, const Tokenizer& tokenizer, Engine& engine,
                     int64_t batch_size = 1, int num_samples = 1, int max_new_tokens = 512, double temperature = 0.0,
                     int64_t top_k = 50, std::optional<int64_t> max_problems = std::nullopt);

// ChatCORE: mean over the given (task, accuracy) pairs of (acc - baseline) / (1 - baseline).
double chatcore_metric(const std::vector<std::pair<std::string, double>>& results);

}  // namespace nanochat
