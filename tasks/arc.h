// tasks/arc: AI2 ARC multiple choice (allenai/ai2_arc, ARC-Easy / ARC-Challenge), a categorical task.
//   ARC task(ShuffledRows(rows));   // rows as in the HF parquet: {id, question, choices: {text, label}, answerKey}
// The conversation: user = render_mc(question, labels, texts), assistant = answerKey, "letters" = labels.
// Rows come from the HF parquet files (tasks/hf_data.h) or from the caller.
#pragma once

#include "tasks/common.h"

namespace nanochat {

class ARC : public Task {
 public:
  // subset ARC-Easy | ARC-Challenge, split train | validation | test; loads allenai/ai2_arc (tasks/hf_data.h).
  ARC(const std::string& subset, const std::string& split, Slice slice = {});
  explicit ARC(ShuffledRows rows, Slice slice = {}) : Task(slice), rows_(std::move(rows)) {}
  static Conversation conversation_from_row(const nlohmann::json& row);

  std::string eval_type() const override { return "categorical"; }
  int64_t num_examples() const override { return rows_.size(); }
  Conversation get_example(int64_t index) const override { return conversation_from_row(rows_[index]); }
  // The response must be one of the conversation's letters; 1 when it is the reference letter.
  int evaluate(const Conversation& conversation, const std::string& response) const override;

 private:
  ShuffledRows rows_;
};

// Shared by ARC and MMLU: checks the response is one of conversation["letters"], compares with the answer.
int evaluate_letter_choice(const Conversation& conversation, const std::string& response, const char* task);

}  // namespace nanochat
