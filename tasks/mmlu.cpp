// tasks/mmlu: see mmlu.h.
#include "tasks/mmlu.h"

#include "nanochat/common.h"
#include "tasks/arc.h"
#include "tasks/hf_data.h"

namespace nanochat {

MMLU::MMLU(const std::string& subset, const std::string& split, Slice slice)
    : Task(slice), auxiliary_train_(subset == "auxiliary_train") {
  if (subset != "all" && subset != "auxiliary_train") fail("MMLU subset must be all|auxiliary_train, got '{}'", subset);
  if (split != "train" && split != "validation" && split != "dev" && split != "test")
    fail("MMLU split must be train|validation|dev|test, got '{}'", split);
  if (auxiliary_train_ && split != "train") fail("MMLU auxiliary_train only has the train split");
  rows_ = load_hf_split("cais/mmlu", subset, split);
}

Conversation MMLU::conversation_from_row(const nlohmann::json& wrapped, bool auxiliary_train) {
  const nlohmann::json& row = auxiliary_train ? wrapped.at("train") : wrapped;
  static const std::vector<std::string> letters = {"A", "B", "C", "D"};
  const auto choices = row.at("choices").get<std::vector<std::string>>();
  if (choices.size() != 4) fail("MMLU rows must have 4 choices, got {}", choices.size());
  const int64_t answer = row.at("answer").get<int64_t>();
  if (answer < 0 || answer >= 4) fail("MMLU answer index {} is not in 0..3", answer);
  return {{"messages",
           {{{"role", "user"}, {"content", render_mc(row.at("question").get<std::string>(), letters, choices)}},
            {{"role", "assistant"}, {"content", letters[size_t(answer)]}}}},
          {"subject", row.at("subject")},
          {"letters", letters}};
}

int MMLU::evaluate(const Conversation& conversation, const std::string& response) const {
  return evaluate_letter_choice(conversation, response, "MMLU");
}

}  // namespace nanochat
