// Tests for nanochat/core_eval: prompt rendering (nanochat/core_eval.py evaluate_example's verified examples), Python's
// str.strip, and the CORE numbers of the Python reference on the mini bundle in tests/fixtures/python_basedir
// (expected_core.json: every task's accuracy exactly, CORE within 1e-6, also with max_per_task = 10).
#include <gtest/gtest.h>

#include <fstream>

#include "nanochat/checkpoint_manager.h"
#include "nanochat/core_eval.h"

using namespace nanochat;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {
const fs::path kBaseDir = fs::path(NANOCHAT_FIXTURES) / "python_basedir";

GPT load_fixture_model() {
  ModelCheckpoint ckpt = load_model_state_from_dir(kBaseDir / "base_checkpoints" / "d2", 3, torch::kCPU);
  GPT model(config_from_json(json::parse(ckpt.meta.at("model_config").dump())));
  model->load_state_dict(ckpt.state);
  model->eval();
  return model;
}
}  // namespace

TEST(CoreEval, PythonStrip) {
  EXPECT_EQ(python_strip("  a b \n\t"), "a b");
  EXPECT_EQ(python_strip("\u00a0x\u3000"), "x");
  EXPECT_EQ(python_strip("é "), "é");
  EXPECT_EQ(python_strip("   "), "");
}

TEST(CoreEval, MultipleChoicePrompts) {
  CoreTask task{"t", "multiple_choice", "", 2, " ", 25.0};
  json item = {{"query", "Q?"}, {"choices", {"x", "y"}}, {"gold", 0}};
  std::vector<json> shots = {{{"query", "Q1?"}, {"choices", {"a1", "b1"}}, {"gold", 1}},
                             {{"query", "Q2?"}, {"choices", {"a2", "b2"}}, {"gold", 0}}};
  auto p = render_core_prompts(task, item, shots);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], "Q1? b1\n\nQ2? a2\n\nQ? x");
  EXPECT_EQ(p[1], "Q1? b1\n\nQ2? a2\n\nQ? y");
}

TEST(CoreEval, SchemaAndLanguageModelingPrompts) {
  CoreTask schema{"s", "schema", "", 1, " ", 50.0};
  json item = {{"context_options", {"A", "B"}}, {"continuation", "end"}, {"gold", 1}};
  std::vector<json> shots = {{{"context_options", {"c0", "c1"}}, {"continuation", "k"}, {"gold", 0}}};
  EXPECT_EQ(render_core_prompts(schema, item, shots), (std::vector<std::string>{"c0 k\n\nA end", "c0 k\n\nB end"}));
  CoreTask lm{"l", "language_modeling", "", 0, " ", 0.0};
  EXPECT_EQ(render_core_prompts(lm, {{"context", " ctx "}, {"continuation", "cont"}}, {}),
            (std::vector<std::string>{"ctx", "ctx cont"}));
}

TEST(CoreEval, BundleTasksFromYamlAndCsv) {
  auto tasks = load_core_tasks(kBaseDir / "eval_bundle");
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(tasks[1].label, "mc_fewshot");
  EXPECT_EQ(tasks[1].continuation_delimiter, "\nAnswer: ");
  EXPECT_EQ(tasks[1].num_fewshot, 2);
  EXPECT_EQ(tasks[3].num_fewshot, 3);  // [3, 10]: the first entry
  EXPECT_DOUBLE_EQ(tasks[1].random_baseline, 33.33);
}

TEST(CoreEval, MatchesPythonReference) {
  json expected = json::parse(std::ifstream(kBaseDir / "expected_core.json"));
  GPT model = load_fixture_model();
  Tokenizer tok = Tokenizer::from_directory(kBaseDir / "tokenizer");
  CoreResult all = evaluate_core(model, tok, kBaseDir / "eval_bundle", -1);
  ASSERT_EQ(all.tasks.size(), 4u);
  for (const auto& t : all.tasks) {
    EXPECT_EQ(t.accuracy, expected[t.label]["accuracy"].get<double>()) << t.label;
    EXPECT_NEAR(t.centered, expected[t.label]["centered"].get<double>(), 1e-9) << t.label;
  }
  EXPECT_NEAR(all.core_metric, expected["core_metric"].get<double>(), 1e-6);
  CoreResult ten = evaluate_core(model, tok, kBaseDir / "eval_bundle", 10);
  for (const auto& t : ten.tasks)
    EXPECT_EQ(t.accuracy, expected[t.label]["accuracy_max_per_task_10"].get<double>()) << t.label;
}
