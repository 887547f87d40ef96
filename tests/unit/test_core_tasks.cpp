// Tasks (tasks/*.h). Expected values come from tests/fixtures/tasks/gen_expected.py, a Python script written from
// tasks/*.py and the Python libraries they call (CPython 3.11 `random`, numpy 1.24 `default_rng(42).permutation`,
// Python `re`):
//   cd tests/fixtures/tasks && /usr/bin/python3 gen_expected.py
// SpellingBee / SimpleSpelling use the fixed word list tests/fixtures/words/words.txt; ARC / MMLU / SmolTalk use
// the rows of the parquet fixtures (tests/fixtures/parquet/tasks/*.expected.jsonl) in HF shuffle order.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "tasks/arc.h"
#include "tasks/common.h"
#include "tasks/customjson.h"
#include "tasks/gsm8k.h"
#include "tasks/humaneval.h"
#include "tasks/mmlu.h"
#include "tasks/smoltalk.h"
#include "tasks/spellingbee.h"

using namespace nanochat;
using nlohmann::json;

namespace {

std::string fixture(const std::string& rel) { return std::string(NANOCHAT_FIXTURES) + "/" + rel; }

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f) << "missing " << path;
  std::vector<json> out;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// A task whose example i is {"messages": [], "id": i}, for slicing and mixtures.
class RangeTask : public Task {
 public:
  RangeTask(int64_t n, int tag, Slice s = {}) : Task(s), n_(n), tag_(tag) {}
  int64_t num_examples() const override { return n_; }
  Conversation get_example(int64_t i) const override { return {{"messages", json::array()}, {"id", i}, {"tag", tag_}}; }

 private:
  int64_t n_;
  int tag_;
};

}  // namespace

TEST(Tasks, Slicing) {
  EXPECT_EQ(RangeTask(10, 0).size(), 10);
  RangeTask t(10, 0, {2, 9, 3});  // physical 2, 5, 8
  ASSERT_EQ(t.size(), 3);
  EXPECT_EQ(t[0]["id"], 2);
  EXPECT_EQ(t[1]["id"], 5);
  EXPECT_EQ(t[2]["id"], 8);
  EXPECT_THROW(t[3], Error);
  EXPECT_EQ(RangeTask(10, 0, {5, 100, 1}).size(), 5);  // stop capped at the dataset size
  EXPECT_EQ(RangeTask(10, 0, {4, 4, 1}).size(), 0);
  EXPECT_THROW(RangeTask(10, 0, {-1, std::nullopt, 1}), Error);
  EXPECT_THROW(RangeTask(10, 0, {5, 4, 1}), Error);
  EXPECT_THROW(RangeTask(10, 0, {0, std::nullopt, 0}), Error);
}

TEST(Tasks, MixtureOrderMatchesPython) {
  auto expected = json::parse(read_file(fixture("tasks/mixture.json")));
  std::vector<TaskPtr> tasks;
  int tag = 0;
  for (auto& n : expected["sizes"]) tasks.push_back(std::make_shared<RangeTask>(n.get<int64_t>(), tag++));
  TaskMixture mix(tasks);
  ASSERT_EQ(mix.size(), int64_t(expected["index_map"].size()));
  for (int64_t i = 0; i < mix.size(); i++) {
    auto c = mix[i];
    EXPECT_EQ(c["tag"], expected["index_map"][i][0]) << i;
    EXPECT_EQ(c["id"], expected["index_map"][i][1]) << i;
  }
  // Oversampling: the same task twice doubles its share.
  auto a = std::make_shared<RangeTask>(4, 7);
  EXPECT_EQ(TaskMixture({a, a}).size(), 8);
  TaskSequence seq({std::make_shared<RangeTask>(2, 0), std::make_shared<RangeTask>(3, 1)});
  ASSERT_EQ(seq.size(), 5);
  EXPECT_EQ(seq[1]["tag"], 0);
  EXPECT_EQ(seq[2]["tag"], 1);
  EXPECT_EQ(seq[2]["id"], 0);
  EXPECT_EQ(seq[4]["id"], 2);
}

TEST(Tasks, RenderMC) {
  EXPECT_EQ(render_mc("Q?", {"A", "B"}, {"x", "y"}),
            "Multiple Choice question: Q?\n- x=A\n- y=B\n\nRespond only with the letter of the correct answer.");
}

TEST(Tasks, SpellingBeeMatchesSpec) {
  auto words = read_word_file(fixture("words/words.txt"));
  for (std::string split : {"train", "test"}) {
    auto expected = read_jsonl(fixture("tasks/spellingbee_" + split + ".jsonl"));
    ASSERT_EQ(expected.size(), 100u);
    SpellingBee task(words, 100, split);
    for (int64_t i = 0; i < 100; i++) EXPECT_EQ(task[i], expected[size_t(i)]) << split << " example " << i;
    // The reference answer evaluates as correct, a wrong one does not.
    auto conv = task[3];
    std::string answer = conv["messages"][1]["content"].back()["text"];
    EXPECT_EQ(task.evaluate(conv, answer), 1);
    EXPECT_EQ(task.evaluate(conv, "#### 999"), 0);
    EXPECT_EQ(task.reward(conv, answer), 1.0);
  }
}

TEST(Tasks, SimpleSpellingMatchesSpec) {
  auto words = read_word_file(fixture("words/words.txt"));
  for (std::string split : {"train", "test"}) {
    auto expected = read_jsonl(fixture("tasks/simplespelling_" + split + ".jsonl"));
    SimpleSpelling task(words, 100, split);
    for (int64_t i = 0; i < 100; i++) EXPECT_EQ(task[i], expected[size_t(i)]) << split << " example " << i;
  }
  EXPECT_THROW(SimpleSpelling(std::vector<std::string>{"a"}, 10, "val"), Error);
}

TEST(Tasks, HFConversationsInShuffleOrder) {
  struct Case {
    const char* name;
    std::function<Conversation(const ShuffledRows&, int64_t)> get;
  };
  std::vector<Case> cases = {
      {"arc_easy_test", [](const ShuffledRows& r, int64_t i) { return ARC(r)[i]; }},
      {"mmlu_test", [](const ShuffledRows& r, int64_t i) { return MMLU(r, false)[i]; }},
      {"smoltalk_train", [](const ShuffledRows& r, int64_t i) { return SmolTalk(r)[i]; }},
  };
  for (auto& c : cases) {
    ShuffledRows rows(read_jsonl(fixture(std::string("parquet/tasks/") + c.name + ".expected.jsonl")));
    auto expected = read_jsonl(fixture(std::string("tasks/") + c.name + ".conversations.jsonl"));
    ASSERT_EQ(rows.size(), int64_t(expected.size()));
    for (int64_t i = 0; i < rows.size(); i++) EXPECT_EQ(c.get(rows, i), expected[size_t(i)]) << c.name << " " << i;
  }
}

TEST(Tasks, LetterChoiceEvaluation) {
  ShuffledRows rows(read_jsonl(fixture("parquet/tasks/mmlu_test.expected.jsonl")));
  MMLU mmlu(rows, false);
  auto conv = mmlu[0];
  std::string right = conv["messages"][1]["content"];
  std::string wrong = right == "A" ? "B" : "A";
  EXPECT_EQ(mmlu.evaluate(conv, right), 1);
  EXPECT_EQ(mmlu.evaluate(conv, wrong), 0);
  EXPECT_THROW(mmlu.evaluate(conv, "E"), Error);
  EXPECT_EQ(mmlu.eval_type(), "categorical");
  // auxiliary_train rows are wrapped under "train".
  json row = read_jsonl(fixture("parquet/tasks/mmlu_test.expected.jsonl"))[0];
  EXPECT_EQ(MMLU::conversation_from_row({{"train", row}}, true), MMLU::conversation_from_row(row, false));
  json bad = row;
  bad["choices"].push_back("fifth");
  EXPECT_THROW(MMLU::conversation_from_row(bad, false), Error);
  json arc_row = read_jsonl(fixture("parquet/tasks/arc_easy_test.expected.jsonl"))[0];
  arc_row["answerKey"] = "Z";
  EXPECT_THROW(ARC::conversation_from_row(arc_row), Error);
}

TEST(Tasks, GSM8KAnswerParts) {
  for (auto& c : read_jsonl(fixture("tasks/gsm8k_parts.jsonl")))
    EXPECT_EQ(gsm8k_answer_parts(c["answer"]), c["parts"]) << c["answer"].dump();
  json row = {{"question", "Q"}, {"answer", "12/60 = $<<12/60=0.2>>0.2\n#### 10"}};
  auto conv = GSM8K::conversation_from_row(row);
  EXPECT_EQ(conv["messages"][1]["content"][1], json({{"type", "python"}, {"text", "12/60"}}));
  GSM8K task(ShuffledRows(std::vector<json>{row}));
  EXPECT_EQ(task.evaluate(conv, "so #### 10"), 1);
  EXPECT_EQ(task.evaluate(conv, "#### 1,0"), 1);  // commas are dropped before comparing
  EXPECT_EQ(task.evaluate(conv, "#### 11"), 0);
  EXPECT_EQ(task.evaluate(conv, "no answer"), 0);
}

TEST(Tasks, ExtractAnswer) {
  for (auto& c : read_jsonl(fixture("tasks/extract_answer.jsonl"))) {
    auto got = extract_answer(c["text"]);
    if (c["answer"].is_null())
      EXPECT_FALSE(got.has_value()) << c["text"].dump();
    else
      EXPECT_EQ(got, c["answer"].get<std::string>()) << c["text"].dump();
  }
}

TEST(Tasks, HumanEvalExtraction) {
  for (auto& c : read_jsonl(fixture("tasks/humaneval_extract.jsonl"))) {
    if (c.contains("completion"))
      EXPECT_EQ(humaneval_extract_program(c["completion"]), c["program"]) << c["completion"].dump();
    else
      EXPECT_EQ(humaneval_extract_imports(c["prompt"]), c["imports"]) << c["prompt"].dump();
  }
}

TEST(Tasks, HumanEvalRunsTheTests) {
  json row = {{"task_id", "t/0"},
              {"prompt", "from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    \"\"\"Sum.\"\"\"\n"},
              {"canonical_solution", "    return sum(xs)\n"},
              {"test", "def check(candidate):\n    assert candidate([1, 2]) == 3\n"},
              {"entry_point", "total"}};
  HumanEval task(ShuffledRows(std::vector<json>{row}));
  auto conv = task[0];
  EXPECT_EQ(conv["messages"][1]["content"],
            row["prompt"].get<std::string>() + "\n" + row["canonical_solution"].get<std::string>());
  EXPECT_EQ(task.evaluate(conv, "```python\ndef total(xs: List[int]) -> int:\n    return sum(xs)\n```"), 1);
  EXPECT_EQ(task.evaluate(conv, "def total(xs):\n    return 0"), 0);
}

TEST(Tasks, SmolTalkValidation) {
  json ok = {{"messages",
              {{{"role", "system"}, {"content", "s"}},
               {{"role", "user"}, {"content", "u"}},
               {{"role", "assistant"}, {"content", "a"}}}}};
  EXPECT_EQ(SmolTalk::conversation_from_row(ok)["messages"].size(), 3u);
  json bad = {{"messages", {{{"role", "user"}, {"content", "u"}}, {{"role", "user"}, {"content", "a"}}}}};
  EXPECT_THROW(SmolTalk::conversation_from_row(bad), Error);
  json short_one = {{"messages", {{{"role", "system"}, {"content", "s"}}, {{"role", "user"}, {"content", "u"}}}}};
  EXPECT_THROW(SmolTalk::conversation_from_row(short_one), Error);
}

TEST(Tasks, CustomJSON) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("nanochat-customjson-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "ok.jsonl");
    f << "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]\n\n  \n"
      << "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"},"
         "{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"d\"}]\n";
  }
  CustomJSON task(dir / "ok.jsonl");
  ASSERT_EQ(task.size(), 2);
  EXPECT_EQ(task[1]["messages"][3]["content"], "d");
  EXPECT_EQ(
      task[0],
      json({{"messages", {{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", "hello"}}}}}));
  EXPECT_EQ(CustomJSON(dir / "missing.jsonl").size(), 0);  // a warning, no conversations
  std::ofstream(dir / "bad.jsonl")
      << "[{\"role\":\"assistant\",\"content\":\"x\"},{\"role\":\"user\",\"content\":\"y\"}]\n";
  EXPECT_THROW(CustomJSON(dir / "bad.jsonl"), Error);
  std::ofstream(dir / "bad2.jsonl") << "{not json\n";
  EXPECT_THROW(CustomJSON(dir / "bad2.jsonl"), Error);
  fs::remove_all(dir);
}
