// task_data: where the chat tasks' datasets live and how the chat scripts build their tasks by name — the glue
// between tasks/ (which take rows from the caller) and chat_sft / chat_rl / chat_eval.
//
// Files. HuggingFace datasets are read from HF-hub-style files under <base_dir>/datasets/<owner>/<name>/<subdir>/:
// every "<split>-*.parquet" in name order (e.g. test-00000-of-00001.parquet), else "<split>.jsonl" (one JSON row per
// line). When none is there, the first shard is downloaded from huggingface.co (an HF_TOKEN
// bearer token is not sent: nanochat/download.h has no authentication, and the datasets used here are public);
// without network this fails with one line naming the file and where to get it.
//   ARC-Easy / ARC-Challenge  allenai/ai2_arc/ARC-Easy|ARC-Challenge/<split>
//   MMLU                      cais/mmlu/all/<split>    (train split = cais/mmlu/auxiliary_train/train)
//   GSM8K                     openai/gsm8k/main/<split>
//   HumanEval                 openai/openai_humaneval/openai_humaneval/test
//   SmolTalk                  HuggingFaceTB/smol-smoltalk/data/<split>
//
// Task lists ("--mixture" syntax): comma-separated entries NAME[:ARG][*REPEAT], e.g.
//   "SmolTalk,CustomJSON*2,MMLU:train*3,GSM8K*4,SimpleSpelling:200000,SpellingBee:80000"
// ARG is the split for dataset tasks (default: `default_split`), the size for SpellingBee/SimpleSpelling (default
// 1000; their split is `default_split`), the file for CustomJSON (default <base_dir>/identity_conversations.jsonl).
// REPEAT passes the task that many times (oversampling in a TaskMixture).
//
// This header only forward-declares Task so that scripts which also include dataloader.h (whose SFT
// `Conversation` struct shares the name of tasks' conversation type) can use it.
// Not covered: HF's streaming, dataset revisions, and resuming partial downloads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanochat {

class Task;
using TaskPtr = std::shared_ptr<Task>;

// The local files of an HF dataset split (downloading the first shard when none is present); fails with one line.
std::vector<std::filesystem::path> hf_split_files(const std::string& repo, const std::string& subdir,
                                                  const std::string& split);
// Every row of those files, in file order, as JSON objects.
std::vector<nlohmann::json> load_hf_rows(const std::string& repo, const std::string& subdir, const std::string& split);

// One task by name: ARC-Easy, ARC-Challenge, MMLU, GSM8K, HumanEval, SmolTalk, SpellingBee, SimpleSpelling,
// CustomJSON (names case-insensitive). `arg` as in the list syntax above ("" = default); stop caps the task
// (Python's stop=) when >= 0.
TaskPtr make_task(const std::string& name, const std::string& arg, const std::string& default_split,
                  int64_t stop = -1);
// Parses a task list (syntax above) into tasks, repeats expanded.
std::vector<TaskPtr> parse_task_list(const std::string& spec, const std::string& default_split);

// chat_sft's mixtures (SPEC §17.2) and any list of tasks as a TaskMixture.
TaskPtr sft_default_train_mixture(int64_t mmlu_epochs, int64_t gsm8k_epochs);
TaskPtr sft_default_val_mixture();
TaskPtr make_mixture(std::vector<TaskPtr> tasks);

// chat_eval's task registry (SPEC §19.2): HumanEval, MMLU, ARC-Easy, ARC-Challenge, GSM8K, SpellingBee.
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

// Python's hash() of a tuple of small non-negative ints (SPEC Appendix A.2), as chat_rl's sampling seeds use it.
int64_t python_tuple_hash(const std::vector<int64_t>& items);

}  // namespace nanochat
