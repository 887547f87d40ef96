// tasks/mmlu: MMLU multiple choice (cais/mmlu), a categorical task. Subset "all" (splits test/validation/dev) or
// "auxiliary_train" (split train; its rows are wrapped under a "train" key, unwrapped here).
//   MMLU task(ShuffledRows(rows), /*auxiliary_train=*/false);   // rows: {question, subject, choices[4], answer}
// The conversation: user = render_mc(question, A-D, choices), assistant = the answer letter, plus "subject" and
// "letters". Rows come from the HF parquet files (tasks/hf_data.h) or from the caller.
#pragma once

#include "tasks/common.h"

namespace nanochat {

class MMLU : public Task {
 public:
  // subset all | auxiliary_train (split train only), split train | validation | dev | test; loads cais/mmlu.
  MMLU(const std::string& subset, const std::string& split, Slice slice = {});
  MMLU(ShuffledRows rows, bool auxiliary_train, Slice slice = {})
      : Task(slice), rows_(std::move(rows)), auxiliary_train_(auxiliary_train) {}
  static Conversation conversation_from_row(const nlohmann::json& row, bool auxiliary_train);

  std::string eval_type() const override { return "categorical"; }
  int64_t num_examples() const override { return rows_.size(); }
  Conversation get_example(int64_t index) const override {
    return conversation_from_row(rows_[index], auxiliary_train_);
  }
  int evaluate(const Conversation& conversation, const std::string& response) const override;

 private:
  ShuffledRows rows_;
  bool auxiliary_train_;
};

}  // namespace nanochat
