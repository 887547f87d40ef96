// core_eval: the CORE metric (DCLM's in-context-learning suite, nanochat/core_eval.py) — for each task of core.yaml,
// few-shot prompts rendered from its JSONL examples, the model scores every option (multiple choice, schema) or checks
// the greedy continuation (language modeling), and CORE is the mean accuracy above the random baseline.
//
//   auto bundle = ensure_eval_bundle();                        // <base_dir>/eval_bundle, downloaded once
//   CoreResult r = evaluate_core(model, tokenizer, bundle, /*max_per_task=*/500);
//   fmt::print("CORE metric: {:.4f}\n", r.core_metric);
//
// Examples are strided over (rank, world_size); the caller sums the per-task correct counts across ranks
// (reduce_counts) when running distributed. Not covered: HuggingFace models (base_eval --hf-path).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nanochat/gpt.h"
#include "nanochat/tokenizer.h"

namespace nanochat {

struct CoreTask {
  std::string label;
  std::string task_type;  // multiple_choice | schema | language_modeling
  std::string dataset_uri;
  int num_fewshot = 0;
  std::string continuation_delimiter = " ";
  double random_baseline = 0.0;  // percent
};

struct CoreTaskResult {
  std::string label;
  double accuracy = 0.0;
  double centered = 0.0;
};

struct CoreResult {
  std::vector<CoreTaskResult> tasks;
  double core_metric = 0.0;
};

// <base_dir>/eval_bundle, downloading and unzipping eval_bundle.zip (under a lock file) if it is missing.
std::filesystem::path ensure_eval_bundle();

// core.yaml + eval_meta_data.csv of a bundle directory, in yaml order.
std::vector<CoreTask> load_core_tasks(const std::filesystem::path& bundle_dir);

// The prompts of one example (nanochat/core_eval.py evaluate_example step 2): one per option (multiple choice, schema),
// or {without continuation, with continuation} for language modeling.
std::vector<std::string> render_core_prompts(const CoreTask& task, const nlohmann::json& item,
                                             const std::vector<nlohmann::json>& fewshot);

// Whether the model gets example `idx` of `data` (already shuffled and truncated) right.
bool evaluate_core_example(GPT& model, const Tokenizer& tokenizer, const CoreTask& task,
                           const std::vector<nlohmann::json>& data, size_t idx);

// Sums a vector of per-example 0/1 results across ranks (identity when running alone).
using ReduceCounts = std::function<void(std::vector<float>&)>;

// Runs every task; prints nanochat's per-task line; max_per_task <= 0 means all examples.
CoreResult evaluate_core(GPT& model, const Tokenizer& tokenizer, const std::filesystem::path& bundle_dir,
                         int64_t max_per_task, int rank = 0, int world_size = 1, const ReduceCounts& reduce = {});

// Python's str.strip(): Unicode whitespace removed from both ends.
std::string python_strip(const std::string& s);

}  // namespace nanochat
