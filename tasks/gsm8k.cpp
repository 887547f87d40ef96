// tasks/gsm8k: see gsm8k.h.
#include "tasks/gsm8k.h"

#include "nanochat/common.h"
#include "tasks/hf_data.h"

namespace nanochat {

std::optional<std::string> extract_answer(const std::string& s) {
  // Leftmost match of `#### (\-?[0-9\.\,]+)`: at each "#### " an optional '-' then at least one [0-9.,].
  auto num_char = [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == ','; };
  for (size_t p = s.find("#### "); p != std::string::npos; p = s.find("#### ", p + 1)) {
    size_t i = p + 5, st = i;
    if (i < s.size() && s[i] == '-') i++;
    size_t j = i;
    while (j < s.size() && num_char(s[j])) j++;
    if (j == i) continue;
    std::string out;
    for (size_t k = st; k < j; k++)
      if (s[k] != ',') out.push_back(s[k]);
    return out;
  }
  return std::nullopt;
}

int evaluate_hash_answer(const Conversation& conversation, const std::string& response) {
  const auto& last = conversation.at("messages").back();
  if (last.at("role") != "assistant") fail("the last message must be from the assistant");
  if (!last.at("content").is_array()) fail("the reference assistant message must be a list of parts");
  auto ref = extract_answer(last.at("content").back().at("text").get<std::string>());
  auto pred = extract_answer(response);
  return pred == ref ? 1 : 0;
}

nlohmann::json gsm8k_answer_parts(const std::string& answer) {
  // Split around matches of <<[^>]+>> (kept), then classify each piece by its form, as Python does.
  std::vector<std::string> pieces;
  size_t last = 0, i = 0;
  while (i + 1 < answer.size()) {
    if (answer[i] == '<' && answer[i + 1] == '<') {
      size_t j = answer.find('>', i + 2);
      if (j != std::string::npos && j > i + 2 && j + 1 < answer.size() && answer[j + 1] == '>') {
        pieces.push_back(answer.substr(last, i - last));
        pieces.push_back(answer.substr(i, j + 2 - i));
        last = i = j + 2;
        continue;
      }
    }
    i++;
  }
  pieces.push_back(answer.substr(last));

  nlohmann::json parts = nlohmann::json::array();
  for (const auto& piece : pieces) {
    bool tool = piece.size() >= 4 && piece.compare(0, 2, "<<") == 0 && piece.compare(piece.size() - 2, 2, ">>") == 0;
    if (!tool) {
      parts.push_back({{"type", "text"}, {"text", piece}});
      continue;
    }
    std::string inner = piece.substr(2, piece.size() - 4);
    size_t eq = inner.rfind('=');
    std::string expr = eq == std::string::npos ? inner : inner.substr(0, eq);
    std::string result = eq == std::string::npos ? "" : inner.substr(eq + 1);
    parts.push_back({{"type", "python"}, {"text", expr}});
    parts.push_back({{"type", "python_output"}, {"text", result}});
  }
  return parts;
}

GSM8K::GSM8K(const std::string& subset, const std::string& split, Slice slice) : Task(slice) {
  if (subset != "main" && subset != "socratic") fail("GSM8K subset must be main|socratic, got '{}'", subset);
  if (split != "train" && split != "test") fail("GSM8K split must be train|test, got '{}'", split);
  rows_ = load_hf_split("openai/gsm8k", subset, split);
}

Conversation GSM8K::conversation_from_row(const nlohmann::json& row) {
  return {{"messages",
           {{{"role", "user"}, {"content", row.at("question").get<std::string>()}},
            {{"role", "assistant"}, {"content", gsm8k_answer_parts(row.at("answer").get<std::string>())}}}}};
}

}  // namespace nanochat
