// tasks/humaneval: see humaneval.h.
#include "tasks/humaneval.h"

#include "nanochat/execution.h"
#include "tasks/hf_data.h"

namespace nanochat {

namespace {
bool re_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }
bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
}  // namespace

std::string humaneval_extract_imports(const std::string& prompt) {
  std::string out;
  bool first = true;
  size_t start = 0;
  while (start <= prompt.size()) {
    size_t end = prompt.find('\n', start);
    if (end == std::string::npos) end = prompt.size();
    std::string line = py_strip(prompt.substr(start, end - start));
    if (starts_with(line, "import ") || starts_with(line, "from ")) {
      if (!first) out += "\n";
      out += line;
      first = false;
    } else if (!line.empty() && line[0] != '#') {
      break;
    }
    start = end + 1;
  }
  return out;
}

std::string humaneval_extract_program(const std::string& completion) {
  // Leftmost match of ```(?:python)?\s*\n(.*?)\n``` (DOTALL), trying the alternatives in the order Python's
  // backtracking does: "python" consumed or not, then the longest \s* run whose next char is the \n.
  const std::string& s = completion;
  for (size_t p = s.find("```"); p != std::string::npos; p = s.find("```", p + 1)) {
    for (int with_python = 1; with_python >= 0; with_python--) {
      size_t q = p + 3;
      if (with_python) {
        if (s.compare(q, 6, "python") != 0) continue;
        q += 6;
      }
      size_t run = q;
      while (run < s.size() && re_space(s[run])) run++;
      for (size_t nl = run; nl-- > q;) {
        if (s[nl] != '\n') continue;
        size_t body = nl + 1;
        size_t close = s.find("\n```", body);
        if (close == std::string::npos) continue;
        return py_strip(s.substr(body, close - body));
      }
    }
  }
  return py_strip(completion);
}

std::string humaneval_program(const Conversation& conversation, const std::string& completion) {
  std::string imports = humaneval_extract_imports(conversation.at("messages").at(0).at("content").get<std::string>());
  return imports + "\n\n" + humaneval_extract_program(completion) + "\n\n" +
         conversation.at("test").get<std::string>() + "\n" + "check(" +
         conversation.at("entry_point").get<std::string>() + ")";
}

HumanEval::HumanEval(Slice slice)
    : Task(slice), rows_(load_hf_split("openai/openai_humaneval", "openai_humaneval", "test")) {}

Conversation HumanEval::conversation_from_row(const nlohmann::json& row) {
  const std::string prompt = row.at("prompt").get<std::string>();
  const std::string solution = row.at("canonical_solution").get<std::string>();
  return {{"messages",
           {{{"role", "user"}, {"content", prompt}}, {{"role", "assistant"}, {"content", prompt + "\n" + solution}}}},
          {"entry_point", row.at("entry_point")},
          {"test", row.at("test")}};
}

int HumanEval::evaluate(const Conversation& conversation, const std::string& completion) const {
  return execute_code(humaneval_program(conversation, completion)).success ? 1 : 0;
}

}  // namespace nanochat
