// Gradient checkpointing (GPT::grad_checkpoint, base_train --grad-checkpoint): recomputing each block in backward
// gives the loss and every parameter's gradient of the ordinary backward, and keeps working under gradient
// accumulation and without grad mode.
//   build/tests/test_torch --gtest_filter='GradCheckpoint*'
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model_test_util.h"
#include "nanochat/gpt.h"

using namespace nanochat;

namespace {
// How many nodes of the loss's autograd graph have `name` in their name (each node counted once).
int64_t count_nodes(const torch::Tensor& loss, const std::string& name) {
  std::vector<torch::autograd::Node*> todo{loss.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  int64_t n = 0;
  while (!todo.empty()) {
    auto* node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find(name) != std::string::npos) ++n;
    for (const auto& edge : node->next_edges()) todo.push_back(edge.function.get());
  }
  return n;
}
}  // namespace

TEST(GradCheckpoint, SameLossAndGradientsAsTheOrdinaryBackward) {
  GPT ref = model_test::small_random_gpt(97, 7), ck = model_test::small_random_gpt(97, 7);
  ck->grad_checkpoint = true;
  torch::manual_seed(3);
  auto idx = torch::randint(0, 97, {2, 48}), tgt = torch::randint(0, 97, {2, 48});
  tgt.index_put_({0, 5}, -1);
  // Two micro-batches: gradients accumulate across backward calls on both paths alike.
  for (int micro = 0; micro < 2; ++micro) {
    auto lr = ref->forward(idx, tgt), lc = ck->forward(idx, tgt);
    // One recomputing node per block, and none of the blocks' own ops (the block ran without a graph).
    EXPECT_EQ(count_nodes(lc, "CheckpointedBlock"), ck->config.n_layer);
    EXPECT_EQ(count_nodes(lr, "CheckpointedBlock"), 0);
    EXPECT_LT(count_nodes(lc, ""), count_nodes(lr, ""));
    EXPECT_NEAR(lc.item<double>(), lr.item<double>(), 1e-6 * lr.item<double>());
    lr.backward();
    lc.backward();
  }
  auto want = ref->named_parameters();
  int64_t compared = 0;
  for (auto& [name, p] : ck->named_parameters().pairs()) {
    auto w = want[name].grad();
    ASSERT_EQ(p.grad().defined(), w.defined()) << name;
    if (!w.defined()) continue;
    EXPECT_TRUE(torch::allclose(p.grad(), w, 1e-5, 1e-7)) << name;
    ++compared;
  }
  EXPECT_EQ(compared, int64_t(want.size()));
  // Inference is untouched: no autograd node, the same logits.
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(ck->forward(idx), ref->forward(idx)));
}
