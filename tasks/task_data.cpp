// task_data: see task_data.h.
#include "tasks/task_data.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "nanochat/common.h"
#include "tasks/arc.h"
#include "tasks/common.h"
#include "tasks/customjson.h"
#include "tasks/gsm8k.h"
#include "tasks/hf_data.h"
#include "tasks/humaneval.h"
#include "tasks/mmlu.h"
#include "tasks/smoltalk.h"
#include "tasks/spellingbee.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<nlohmann::json> read_jsonl_rows(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read {}", path.string());
  std::vector<nlohmann::json> rows;
  std::string line;
  int64_t n = 0;
  while (std::getline(f, line)) {
    n++;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      rows.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      fail("{} line {} is not valid JSON ({})", path.string(), n, e.what());
    }
  }
  return rows;
}

// The (repo, subdir) of a dataset task and its split, after nanochat's special cases.
struct HfSource {
  std::string repo, subdir, split;
};

HfSource hf_source(const std::string& name, const std::string& split) {
  if (name == "arc-easy") return {"allenai/ai2_arc", "ARC-Easy", split};
  if (name == "arc-challenge") return {"allenai/ai2_arc", "ARC-Challenge", split};
  if (name == "mmlu")
    return split == "train" ? HfSource{"cais/mmlu", "auxiliary_train", "train"} : HfSource{"cais/mmlu", "all", split};
  if (name == "gsm8k") return {"openai/gsm8k", "main", split};
  if (name == "humaneval") return {"openai/openai_humaneval", "openai_humaneval", split};
  if (name == "smoltalk") return {"HuggingFaceTB/smol-smoltalk", "default", split};
  fail("no dataset for task '{}'", name);
}

Slice slice_with_stop(int64_t stop) {
  Slice s;
  if (stop >= 0) s.stop = stop;
  return s;
}

}  // namespace

std::optional<std::vector<nlohmann::json>> hf_jsonl_rows(const std::string& repo, const std::string& subset,
                                                         const std::string& split) {
  fs::path dir = hf_split_dir(repo, subset, split);
  std::vector<fs::path> jsonl;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".parquet") return std::nullopt;
    if (e.path().extension() == ".jsonl") jsonl.push_back(e.path());
  }
  if (jsonl.empty()) return std::nullopt;
  std::sort(jsonl.begin(), jsonl.end());
  std::vector<nlohmann::json> rows;
  for (auto& path : jsonl) {
    auto r = read_jsonl_rows(path);
    rows.insert(rows.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
  }
  return rows;
}

TaskPtr make_task(const std::string& name_in, const std::string& arg, const std::string& default_split, int64_t stop) {
  std::string name = lower(name_in);
  Slice slice = slice_with_stop(stop);
  auto split_arg = [&] { return arg.empty() ? default_split : arg; };
  auto size_arg = [&]() -> int64_t {
    if (arg.empty()) return 1000;
    try {
      size_t used = 0;
      int64_t n = std::stoll(arg, &used);
      if (used == arg.size() && n > 0) return n;
    } catch (const std::exception&) {}
    fail("task {}: size '{}' is not a positive integer", name_in, arg);
  };
  if (name == "spellingbee") return std::make_shared<SpellingBee>(size_arg(), default_split, slice);
  if (name == "simplespelling") return std::make_shared<SimpleSpelling>(size_arg(), default_split, slice);
  if (name == "customjson") {
    fs::path file = arg.empty() ? get_base_dir() / "identity_conversations.jsonl" : fs::path(arg);
    return std::make_shared<CustomJSON>(file, slice);
  }
  if (name == "arc-easy" || name == "arc-challenge" || name == "mmlu" || name == "gsm8k" || name == "humaneval" ||
      name == "smoltalk") {
    std::string split = split_arg();
    if (name == "humaneval") split = "test";  // the only split HumanEval has
    HfSource src = hf_source(name, split);
    if (auto rows = hf_jsonl_rows(src.repo, src.subdir, src.split)) {  // hand-written rows
      ShuffledRows shuffled(*rows);
      if (name == "arc-easy" || name == "arc-challenge") return std::make_shared<ARC>(std::move(shuffled), slice);
      if (name == "mmlu") return std::make_shared<MMLU>(std::move(shuffled), src.subdir == "auxiliary_train", slice);
      if (name == "gsm8k") return std::make_shared<GSM8K>(std::move(shuffled), slice);
      if (name == "humaneval") return std::make_shared<HumanEval>(std::move(shuffled), slice);
      return std::make_shared<SmolTalk>(std::move(shuffled), slice);
    }
    // The HF parquet split, downloaded by the task when missing (tasks/hf_data.h).
    if (name == "arc-easy" || name == "arc-challenge") return std::make_shared<ARC>(src.subdir, src.split, slice);
    if (name == "mmlu") return std::make_shared<MMLU>(src.subdir, src.split, slice);
    if (name == "gsm8k") return std::make_shared<GSM8K>(src.subdir, src.split, slice);
    if (name == "humaneval") return std::make_shared<HumanEval>(slice);
    return std::make_shared<SmolTalk>(src.split, slice);
  }
  fail(
      "unknown task '{}' (known: ARC-Easy, ARC-Challenge, MMLU, GSM8K, HumanEval, SmolTalk, SpellingBee, "
      "SimpleSpelling, CustomJSON)",
      name_in);
}

std::vector<TaskPtr> parse_task_list(const std::string& spec, const std::string& default_split) {
  std::vector<TaskPtr> tasks;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string entry = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front()))) entry.erase(0, 1);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back()))) entry.pop_back();
    if (entry.empty()) continue;
    int64_t repeat = 1;
    size_t star = entry.rfind('*');
    if (star != std::string::npos && star + 1 < entry.size() &&
        entry.find_first_not_of("0123456789", star + 1) == std::string::npos) {
      repeat = std::stoll(entry.substr(star + 1));
      entry = entry.substr(0, star);
      if (repeat < 1) fail("task list entry '{}': repeat must be at least 1", entry);
    }
    size_t colon = entry.find(':');
    std::string name = entry.substr(0, colon);
    std::string arg = colon == std::string::npos ? "" : entry.substr(colon + 1);
    TaskPtr task = make_task(name, arg, default_split);
    for (int64_t r = 0; r < repeat; r++) tasks.push_back(task);
  }
  if (tasks.empty()) fail("the task list '{}' names no task (e.g. \"SmolTalk,SpellingBee:1000\")", spec);
  return tasks;
}

TaskPtr sft_default_train_mixture(int64_t mmlu_epochs, int64_t gsm8k_epochs) {
  std::vector<TaskPtr> tasks;
  tasks.push_back(make_task("SmolTalk", "train", "train"));
  TaskPtr identity = make_task("CustomJSON", "", "train");
  tasks.push_back(identity);
  tasks.push_back(identity);  // twice: oversampled, as nanochat does
  TaskPtr mmlu = make_task("MMLU", "train", "train");
  for (int64_t e = 0; e < mmlu_epochs; e++) tasks.push_back(mmlu);
  TaskPtr gsm8k = make_task("GSM8K", "train", "train");
  for (int64_t e = 0; e < gsm8k_epochs; e++) tasks.push_back(gsm8k);
  tasks.push_back(make_task("SimpleSpelling", "200000", "train"));
  tasks.push_back(make_task("SpellingBee", "80000", "train"));
  return make_mixture(std::move(tasks));
}

TaskPtr sft_default_val_mixture() {
  return make_mixture({make_task("SmolTalk", "test", "test"), make_task("MMLU", "test", "test", 5200),
                       make_task("GSM8K", "test", "test", 420)});
}

TaskPtr make_mixture(std::vector<TaskPtr> tasks) { return std::make_shared<TaskMixture>(std::move(tasks)); }

const std::vector<std::string>& chat_eval_task_names() {
  static const std::vector<std::string> names = {"ARC-Easy", "ARC-Challenge", "MMLU",
                                                 "GSM8K",    "HumanEval",     "SpellingBee"};
  return names;
}

TaskPtr make_chat_eval_task(const std::string& name) {
  if (name == "HumanEval") return make_task("HumanEval", "test", "test");
  if (name == "MMLU") return make_task("MMLU", "test", "test");
  if (name == "ARC-Easy" || name == "ARC-Challenge") return make_task(name, "test", "test");
  if (name == "GSM8K") return make_task("GSM8K", "test", "test");
  if (name == "SpellingBee") return make_task("SpellingBee", "256", "test");
  fail("unknown chat eval task '{}' (known: ARC-Easy, ARC-Challenge, MMLU, GSM8K, HumanEval, SpellingBee)", name);
}

double chat_eval_baseline(const std::string& name) {
  return (name == "ARC-Easy" || name == "ARC-Challenge" || name == "MMLU") ? 0.25 : 0.0;
}

int64_t task_size(const Task& task) { return task.size(); }
nlohmann::json task_example(const Task& task, int64_t index) { return task[index]; }
std::string task_eval_type(const Task& task) { return task.eval_type(); }
int task_evaluate(const Task& task, const nlohmann::json& conversation, const std::string& response) {
  return task.evaluate(conversation, response);
}
double task_reward(const Task& task, const nlohmann::json& conversation, const std::string& response) {
  return task.reward(conversation, response);
}

}  // namespace nanochat
