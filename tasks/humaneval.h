// tasks/humaneval: OpenAI HumanEval (openai/openai_humaneval, split test, 164 problems), a generative coding task
// graded by running the completion against the problem's tests in the python3 sandbox (nanochat/execution.h).
//   HumanEval task(ShuffledRows(rows));   // rows: {task_id, prompt, canonical_solution, test, entry_point}
// Rows come from the HF parquet files (tasks/hf_data.h) or from the caller.
#pragma once

#include "tasks/common.h"

namespace nanochat {

// Leading "import ..."/"from ..." lines of a prompt (blank and "#" lines skipped), stripped, joined by "\n".
std::string humaneval_extract_imports(const std::string& prompt);
// The first ```python (or bare ```) fenced block of a completion, stripped; else the whole completion stripped.
std::string humaneval_extract_program(const std::string& completion);
// imports + "\n\n" + code + "\n\n" + test + "\n" + "check(<entry_point>)".
std::string humaneval_program(const Conversation& conversation, const std::string& completion);

class HumanEval : public Task {
 public:
  // Loads openai/openai_humaneval, split test (tasks/hf_data.h).
  explicit HumanEval(Slice slice = {});
  explicit HumanEval(ShuffledRows rows, Slice slice = {}) : Task(slice), rows_(std::move(rows)) {}
  static Conversation conversation_from_row(const nlohmann::json& row);

  std::string eval_type() const override { return "generative"; }
  int64_t num_examples() const override { return rows_.size(); }
  Conversation get_example(int64_t index) const override { return conversation_from_row(rows_[index]); }
  // 1 if the program built from the completion runs its tests successfully in the sandbox.
  int evaluate(const Conversation& conversation, const std::string& completion) const override;

 private:
  ShuffledRows rows_;
};

}  // namespace nanochat
