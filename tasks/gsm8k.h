// tasks/gsm8k: grade-school math word problems (openai/gsm8k, subsets main/socratic), a generative task whose
// reference answers use the calculator tool.
//   GSM8K task(ShuffledRows(rows));   // rows: {question, answer}
// The assistant message is a list of parts parsed from the answer: the <<expr=result>> annotations become
// {"type": "python", "text": expr} + {"type": "python_output", "text": result}, the rest {"type": "text"}.
// evaluate compares the "#### <number>" of the response with the reference's.
#pragma once

#include <optional>

#include "tasks/common.h"

namespace nanochat {

// The number after the first "#### " (regex `#### (\-?[0-9\.\,]+)`), with "," removed; nullopt if none.
std::optional<std::string> extract_answer(const std::string& completion);

// The 0/1 evaluation GSM8K and SpellingBee share: extract_answer of the last part of the reference assistant
// message equals extract_answer of the response.
int evaluate_hash_answer(const Conversation& conversation, const std::string& response);

// Python's re.split(r'(<<[^>]+>>)', answer) turned into assistant parts.
nlohmann::json gsm8k_answer_parts(const std::string& answer);

class GSM8K : public Task {
 public:
  // subset main | socratic, split train | test; loads openai/gsm8k (tasks/hf_data.h).
  GSM8K(const std::string& subset, const std::string& split, Slice slice = {});
  explicit GSM8K(ShuffledRows rows, Slice slice = {}) : Task(slice), rows_(std::move(rows)) {}
  static Conversation conversation_from_row(const nlohmann::json& row);

  std::string eval_type() const override { return "generative"; }
  int64_t num_examples() const override { return rows_.size(); }
  Conversation get_example(int64_t index) const override { return conversation_from_row(rows_[index]); }
  int evaluate(const Conversation& conversation, const std::string& response) const override {
    return evaluate_hash_answer(conversation, response);
  }

 private:
  ShuffledRows rows_;
};

}  // namespace nanochat
