// tasks/common: the Task base (a sliceable view over a list of conversations), TaskMixture, TaskSequence, the shared
// multiple-choice prompt format and the HF-style row store every dataset-backed task uses.
//   auto mix = std::make_shared<TaskMixture>(std::vector<TaskPtr>{smoltalk, gsm8k, gsm8k});  // gsm8k twice
//   nlohmann::json conversation = (*mix)[i];   // {"messages": [{"role": "user", "content": ...}, ...], ...}
// Conversations are nlohmann::json values with Python nanochat's structure (tasks/common.py), so the tokenizer's
// render_conversation takes them as they are. Not covered: Python's per-task kwargs beyond start/stop/step.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace nanochat {

using Conversation = nlohmann::json;

// Python's Task(start=0, stop=None, step=1) arguments.
struct Slice {
  int64_t start = 0;
  std::optional<int64_t> stop;
  int64_t step = 1;
};

class Task {
 public:
  explicit Task(Slice slice = {});
  virtual ~Task() = default;

  // "categorical", "generative", or "" for tasks that define none (SmolTalk, CustomJSON, mixtures).
  virtual std::string eval_type() const { return ""; }
  virtual int64_t num_examples() const = 0;
  virtual Conversation get_example(int64_t physical_index) const = 0;

  // len(task) = ceil((stop - start) / step), with stop capped at num_examples (warned once, as Python does).
  int64_t size() const;
  // task[i] = get_example(start + i * step).
  Conversation operator[](int64_t index) const;

  // 1 if the response is right, else 0. Tasks without an evaluation fail with a clear error.
  virtual int evaluate(const Conversation& conversation, const std::string& response) const;
  // RL reward; defaults to float(evaluate(...)) where the task defines one.
  virtual double reward(const Conversation& conversation, const std::string& response) const;

 protected:
  mutable Slice slice_;
  mutable bool warned_ = false;
};

using TaskPtr = std::shared_ptr<Task>;

// All (task, local index) pairs, shuffled once with Python's random.Random(42). Pass a task several times to
// oversample it.
class TaskMixture : public Task {
 public:
  explicit TaskMixture(std::vector<TaskPtr> tasks, Slice slice = {});
  int64_t num_examples() const override { return int64_t(index_map_.size()); }
  Conversation get_example(int64_t index) const override;

 private:
  std::vector<TaskPtr> tasks_;
  std::vector<std::pair<int32_t, int64_t>> index_map_;
};

// Plain concatenation of tasks.
class TaskSequence : public Task {
 public:
  explicit TaskSequence(std::vector<TaskPtr> tasks, Slice slice = {});
  int64_t num_examples() const override { return total_; }
  Conversation get_example(int64_t index) const override;

 private:
  std::vector<TaskPtr> tasks_;
  std::vector<int64_t> lengths_;
  int64_t total_ = 0;
};

// "Multiple Choice question: <q>\n- <choice>=<letter>\n...\nRespond only with the letter of the correct answer."
std::string render_mc(const std::string& question, const std::vector<std::string>& letters,
                      const std::vector<std::string>& choices);

// The rows of an HF dataset split in file order, viewed in the order `.shuffle(seed=42)` gives them
// (numpy default_rng(42).permutation). Rows are kept as compact JSON text and parsed on access, so large splits
// (SmolTalk) cost about their text size in memory.
class ShuffledRows {
 public:
  ShuffledRows() = default;
  explicit ShuffledRows(const std::vector<nlohmann::json>& rows, uint32_t seed = 42);
  explicit ShuffledRows(std::vector<std::string> row_json, uint32_t seed = 42);
  int64_t size() const { return int64_t(rows_.size()); }
  nlohmann::json operator[](int64_t index) const;

 private:
  std::vector<std::string> rows_;
  std::vector<int64_t> order_;
};

// Python's str.strip() for the ASCII whitespace set (space, \t \n \r \v \f, \x1c-\x1f).
std::string py_strip(const std::string& s);

}  // namespace nanochat
