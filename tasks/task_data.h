// task_data: where the chat tasks' datasets live and how the chat scripts build their tasks by name — the glue
// between tasks/ (which take rows from the caller) and chat_sft / chat_rl / chat_eval.
//
// Files. The dataset tasks read HF parquet splits through tasks/hf_data.h: <base_dir>/hf_datasets/<owner>/<name>/
// <subset>/<split>/*.parquet, downloaded from the HF parquet listing when missing (offline: one line naming the
// directory and the listing URL). In addition, a split directory holding only "*.jsonl" files (one JSON row per
// line, the same columns) is read from those — handy for hand-written data and test fixtures.
//   ARC-Easy / ARC-Challenge  allenai/ai2_arc/ARC-Easy|ARC-Challenge/<split>
//   MMLU                      cais/mmlu/all/<split>    (train split = cais/mmlu/auxiliary_train/train)
//   GSM8K                     openai/gsm8k/main/<split>
//   HumanEval                 openai/openai_humaneval/openai_humaneval/test
//   SmolTalk                  HuggingFaceTB/smol-smoltalk/default/<split>
//
// Task lists ("--mixture" syntax): comma-separated entries NAME[:ARG][*REPEAT], e.g.
//   "SmolTalk,CustomJSON*2,MMLU:train*3,GSM8K*4,SimpleSpelling:200000,SpellingBee:80000"
// ARG is the split for dataset tasks (default: `default_split`), the size for SpellingBee/SimpleSpelling (default
// 1000; their split is `default_split`), the file for CustomJSON (default <base_dir>/identity_conversations.jsonl).
// REPEAT passes the task that many times (oversampling in a TaskMixture).
// Not covered: HF's streaming, dataset revisions, and resuming partial downloads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanochat {

class Task;
using TaskPtr = std::shared_ptr<Task>;

// Rows of the split's *.jsonl files (file-name order) when its directory has no parquet file, else nullopt.
std::optional<std::vector<nlohmann::json>> hf_jsonl_rows(const std::string& repo, const std::string& subset,
                                                         const std::string& split);

// One task by name: ARC-Easy, ARC-Challenge, MMLU, GSM8K, HumanEval, SmolTalk, SpellingBee, SimpleSpelling,
// CustomJSON (names case-insensitive). `arg` as in the list syntax above ("" = default); stop caps the task
// (Python's stop=) when >= 0.
TaskPtr make_task(const std::string& name, const std::string& arg, const std::string& default_split, int64_t stop = -1);
// Parses a task list (syntax above) into tasks, repeats expanded.
std::vector<TaskPtr> parse_task_list(const std::string& spec, const std::string& default_split);

// chat_sft's mixtures (scripts/chat_sft.py's train_dataset) and any list of tasks as a TaskMixture.
TaskPtr sft_default_train_mixture(int64_t mmlu_epochs, int64_t gsm8k_epochs);
TaskPtr sft_default_val_mixture();
TaskPtr make_mixture(std::vector<TaskPtr> tasks);

// chat_eval's task registry (scripts/chat_eval.py run_chat_eval): HumanEval, MMLU, ARC-Easy, ARC-Challenge, GSM8K,
// SpellingBee.
TaskPtr make_chat_eval_task(const std::string& name);
const std::vector<std::string>& chat_eval_task_names();
// ChatCORE's random-guess baseline of a task: 0.25 for ARC/MMLU, 0 otherwise.
double chat_eval_baseline(const std::string& name);

// Task accessors usable without tasks/common.h.
int64_t task_size(const Task& task);
nlohmann::json task_example(const Task& task, int64_t index);
std::string task_eval_type(const Task& task);
int task_evaluate(const Task& task, const nlohmann::json& conversation, const std::string& response);
double task_reward(const Task& task, const nlohmann::json& conversation, const std::string& response);

}  // namespace nanochat
