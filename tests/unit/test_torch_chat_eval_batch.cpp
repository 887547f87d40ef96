// Tests for chat_eval's batched generative evaluation (scripts/chat_eval.cpp run_generative): on the Python-written
// d2 fixture checkpoint, SpellingBee problems decoded 4 at a time by a BatchEngine must get the completions, token
// for token, and the accuracy of one problem at a time through Engine, greedy and sampled, including problems too
// long for a batch row; and generative_batch_plan must only batch by default where that is exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "nanochat/compute.h"
#include "nanochat/cpu/small_linear.h"
#include "nanochat/load_model.h"
#include "scripts/chat_eval.h"
#include "tasks/spellingbee.h"

using namespace nanochat;

namespace {

LoadedModel fixture_model() {
  const std::filesystem::path base = std::filesystem::path(NANOCHAT_FIXTURES) / "python_basedir";
  ::setenv("NANOCHAT_BASE_DIR", base.c_str(), 1);
  return load_model("base", torch::kCPU, "eval");
}

// 12 SpellingBee test problems over the fixture word list (no download).
SpellingBee spelling_task() {
  auto words = read_word_file((std::filesystem::path(NANOCHAT_FIXTURES) / "words" / "words.txt").string());
  return SpellingBee(words, 12, "test");
}

struct EvalRun {
  double accuracy;
  std::vector<std::vector<std::string>> completions;
};

EvalRun eval_task(const Task& task, LoadedModel& lm, int rows, int max_new_tokens, double temperature,
                  int64_t top_k) {
  Engine engine(lm.model, lm.tokenizer);
  EvalRun r;
  r.accuracy = run_generative(task, lm.tokenizer, engine, rows, /*num_samples=*/1, max_new_tokens, temperature, top_k,
                              task.size(), &r.completions);
  return r;
}

}  // namespace

// Greedy, as chat_eval runs by default: 4 rows at a time equal one at a time. The fixture model is barely trained,
// so the replies run to different lengths (some to max_new_tokens), and rows leave and join at different steps.
TEST(ChatEvalBatch, GreedyCompletionsEqualOneAtATime) {
  LoadedModel lm = fixture_model();
  SpellingBee task = spelling_task();
  EvalRun alone = eval_task(task, lm, 1, 64, 0.0, 50);
  EvalRun batched = eval_task(task, lm, 4, 64, 0.0, 50);
  ASSERT_EQ(alone.completions.size(), size_t(task.size()));
  ASSERT_EQ(batched.completions.size(), alone.completions.size());
  std::set<std::string> distinct;
  for (size_t i = 0; i < alone.completions.size(); ++i) {
    ASSERT_EQ(batched.completions[i].size(), 1u);
    EXPECT_EQ(batched.completions[i][0], alone.completions[i][0]) << "problem " << i;
    distinct.insert(alone.completions[i][0]);
  }
  EXPECT_GE(distinct.size(), 2u);  // the problems really got different answers
  EXPECT_EQ(batched.accuracy, alone.accuracy);
}

// Sampling (temperature 1, top-k 50): each conversation's generator is seeded with 42 as Engine's is, and consumed
// once per step, so the samples are equal too.
TEST(ChatEvalBatch, SampledCompletionsEqualOneAtATime) {
  LoadedModel lm = fixture_model();
  SpellingBee task = spelling_task();
  EvalRun alone = eval_task(task, lm, 1, 48, 1.0, 50);
  EvalRun batched = eval_task(task, lm, 3, 48, 1.0, 50);
  ASSERT_EQ(batched.completions.size(), alone.completions.size());
  for (size_t i = 0; i < alone.completions.size(); ++i)
    EXPECT_EQ(batched.completions[i], alone.completions[i]) << "problem " << i;
  EXPECT_EQ(batched.accuracy, alone.accuracy);
}

// Prompts whose prompt + max_new_tokens exceed the model's context (256) cannot take a batch row; they run alone
// (after the batch) and the completions still come back in problem order.
TEST(ChatEvalBatch, ProblemsPastTheContextRunAloneInOrder) {
  LoadedModel lm = fixture_model();
  SpellingBee task = spelling_task();
  const int64_t context = lm.model->config.sequence_len;
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < task.size(); ++i)
    lengths.push_back(int64_t(lm.tokenizer.render_for_completion(task[i]).size()));
  std::vector<int64_t> sorted = lengths;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_LT(sorted.front(), sorted.back()) << "the prompts need different lengths";
  // The shortest prompts fit, the longest do not.
  const int max_new_tokens = int(context - sorted[sorted.size() / 2]);
  int fit = 0;
  for (int64_t T : lengths) fit += T + max_new_tokens <= context;
  ASSERT_GT(fit, 0);
  ASSERT_LT(fit, int(lengths.size()));
  EvalRun alone = eval_task(task, lm, 1, max_new_tokens, 0.0, 50);
  EvalRun batched = eval_task(task, lm, 4, max_new_tokens, 0.0, 50);
  ASSERT_EQ(batched.completions.size(), alone.completions.size());
  for (size_t i = 0; i < alone.completions.size(); ++i)
    EXPECT_EQ(batched.completions[i], alone.completions[i]) << "problem " << i;
  EXPECT_EQ(batched.accuracy, alone.accuracy);
}

// The default batches only where it is exact: CPU, fp32, the fused decode step, at most kSmallLinearMaxRows rows,
// one sample per problem.
TEST(ChatEvalBatch, PlanBatchesByDefaultOnlyWhereExact) {
  LoadedModel lm = fixture_model();
  const bool fp32 = compute_dtype() == torch::kFloat32;
  GenerativeBatchPlan p = generative_batch_plan(lm.model, 8, 1, false);
  EXPECT_EQ(p.rows, fp32 ? int(kSmallLinearMaxRows) : 1) << p.why;
  EXPECT_TRUE(p.exact);
  p = generative_batch_plan(lm.model, 3, 1, false);
  EXPECT_EQ(p.rows, fp32 ? 3 : 1) << p.why;
  EXPECT_EQ(generative_batch_plan(lm.model, 1, 1, false).rows, 1);
  EXPECT_EQ(generative_batch_plan(lm.model, 8, 2, false).rows, 1);  // pass@n: Engine batches the samples
  EXPECT_EQ(generative_batch_plan(lm.model, 8, 2, true).rows, 1);
  p = generative_batch_plan(lm.model, 8, 1, true);
  EXPECT_EQ(p.rows, 8);
  EXPECT_FALSE(p.exact);
  EXPECT_EQ(generative_batch_plan(lm.model, 4, 1, true).exact, fp32);
  // The generic (unfused) decode path batches with other kernels: not exact, not by default.
  lm.model->fused_decode = false;
  EXPECT_EQ(generative_batch_plan(lm.model, 8, 1, false).rows, 1);
}
