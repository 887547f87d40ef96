// tasks/arc: see arc.h.
#include "tasks/arc.h"

#include <algorithm>

#include "nanochat/common.h"
#include "tasks/hf_data.h"

namespace nanochat {

ARC::ARC(const std::string& subset, const std::string& split, Slice slice) : Task(slice) {
  if (subset != "ARC-Easy" && subset != "ARC-Challenge")
    fail("ARC subset must be ARC-Easy or ARC-Challenge, got '{}'", subset);
  if (split != "train" && split != "validation" && split != "test")
    fail("ARC split must be train|validation|test, got '{}'", split);
  rows_ = load_hf_split("allenai/ai2_arc", subset, split);
}

Conversation ARC::conversation_from_row(const nlohmann::json& row) {
  const std::string question = row.at("question").get<std::string>();
  const auto choices = row.at("choices").at("text").get<std::vector<std::string>>();
  const auto letters = row.at("choices").at("label").get<std::vector<std::string>>();
  const std::string answer = row.at("answerKey").get<std::string>();
  if (std::find(letters.begin(), letters.end(), answer) == letters.end())
    fail("ARC row {}: answer {} is not one of its labels", row.value("id", std::string("?")), answer);
  return {{"messages",
           {{{"role", "user"}, {"content", render_mc(question, letters, choices)}},
            {{"role", "assistant"}, {"content", answer}}}},
          {"letters", letters}};
}

int ARC::evaluate(const Conversation& conversation, const std::string& response) const {
  return evaluate_letter_choice(conversation, response, "ARC");
}

int evaluate_letter_choice(const Conversation& conversation, const std::string& response, const char* task) {
  const auto letters = conversation.at("letters").get<std::vector<std::string>>();
  if (std::find(letters.begin(), letters.end(), response) == letters.end())
    fail("{} answer '{}' is expected to be one of {}", task, response, nlohmann::json(letters).dump());
  return response == conversation.at("messages").back().at("content").get<std::string>() ? 1 : 0;
}

}  // namespace nanochat
