// scaling: base_train's automatic configuration equals the Python reference for every row of
// tests/fixtures/scaling.json (depths 4–26 with default flags, a CPU-style d6 / head_dim 64 / seq 512 / "L",
// and d24 at --target-param-data-ratio=8): model dims, windows, parameter counts, FLOPs/token, target tokens,
// D_REF, auto batch size, LR scales, scaled weight decay, iterations and total tokens.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/scaling.h"

using namespace nanochat;

TEST(Scaling, ReproducesPythonBaseTrainForEveryRow) {
  std::ifstream f(std::string(NANOCHAT_FIXTURES) + "/scaling.json");
  ASSERT_TRUE(f.good());
  auto rows = nlohmann::json::parse(f);
  ASSERT_GE(rows.size(), 10u);
  for (const auto& r : rows) {
    const auto& a = r["args"];
    ScalingArgs args;
    args.depth = r["depth"].get<int64_t>();
    args.aspect_ratio = a["aspect_ratio"].get<int64_t>();
    args.head_dim = a["head_dim"].get<int64_t>();
    args.max_seq_len = a["max_seq_len"].get<int64_t>();
    args.window_pattern = a["window_pattern"].get<std::string>();
    args.vocab_size = a["vocab_size"].get<int64_t>();
    args.target_param_data_ratio = a["target_param_data_ratio"].get<double>();
    args.weight_decay = a["weight_decay"].get<double>();
    args.total_batch_size = a["total_batch_size"].get<int64_t>();
    auto p = plan_training(args);
    SCOPED_TRACE("depth " + std::to_string(args.depth) + " ratio " + std::to_string(args.target_param_data_ratio));

    EXPECT_EQ(nlohmann::json::parse(config_to_json(p.model_config).dump()), r["model_config"]);
    EXPECT_EQ(p.padded_vocab, r["padded_vocab"].get<int64_t>());
    ASSERT_EQ(p.window_sizes.size(), r["window_sizes"].size());
    for (size_t i = 0; i < p.window_sizes.size(); ++i) {
      EXPECT_EQ(p.window_sizes[i].first, r["window_sizes"][i][0].get<int64_t>());
      EXPECT_EQ(p.window_sizes[i].second, r["window_sizes"][i][1].get<int64_t>());
    }
    const auto& pc = r["param_counts"];
    EXPECT_EQ(p.param_counts.wte, pc["wte"].get<int64_t>());
    EXPECT_EQ(p.param_counts.value_embeds, pc["value_embeds"].get<int64_t>());
    EXPECT_EQ(p.param_counts.lm_head, pc["lm_head"].get<int64_t>());
    EXPECT_EQ(p.param_counts.transformer_matrices, pc["transformer_matrices"].get<int64_t>());
    EXPECT_EQ(p.param_counts.scalars, pc["scalars"].get<int64_t>());
    EXPECT_EQ(p.param_counts.total, pc["total"].get<int64_t>());
    EXPECT_EQ(p.flops_per_token, r["flops_per_token"].get<int64_t>());
    EXPECT_EQ(p.scaling_params, r["scaling_params"].get<int64_t>());
    EXPECT_EQ(p.target_tokens, r["target_tokens"].get<int64_t>());
    EXPECT_DOUBLE_EQ(p.d_ref, r["D_REF"].get<double>());
    EXPECT_EQ(p.total_batch_size, r["total_batch_size"].get<int64_t>());
    EXPECT_TRUE(p.auto_batch_size);
    EXPECT_DOUBLE_EQ(p.batch_lr_scale, r["batch_lr_scale"].get<double>());
    EXPECT_DOUBLE_EQ(p.weight_decay_scaled, r["weight_decay_scaled"].get<double>());
    EXPECT_EQ(p.num_iterations, r["num_iterations"].get<int64_t>());
    EXPECT_EQ(p.horizon_source, "target_param_data_ratio");
    EXPECT_EQ(p.total_tokens, r["total_tokens"].get<int64_t>());
    EXPECT_DOUBLE_EQ(p.dmodel_lr_scale, r["dmodel_lr_scale"].get<double>());
  }
}

TEST(Scaling, ModelConfigJsonKeepsPythonKeyOrder) {
  auto j = config_to_json(model_config_for_depth(4, 64, 128, 2048, "SSSL", 32768));
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"sequence_len", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd",
                                            "window_pattern"}));
  auto back = config_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(back.n_embd, 256);
  EXPECT_EQ(back.window_pattern, "SSSL");
  EXPECT_EQ(
      config_from_json(
          nlohmann::json{
              {"sequence_len", 8}, {"vocab_size", 9}, {"n_layer", 1}, {"n_head", 1}, {"n_kv_head", 1}, {"n_embd", 4}})
          .window_pattern,
      "L");  // older checkpoints without a pattern
  EXPECT_THROW(config_from_json(nlohmann::json{{"n_layer", 2}}), Error);
}

TEST(Scaling, HorizonPrecedenceAndOverrides) {
  ScalingArgs a;
  a.depth = 12;
  a.total_batch_size = 1 << 19;
  auto base = plan_training(a);
  EXPECT_FALSE(base.auto_batch_size);
  EXPECT_EQ(base.batch_lr_scale, 1.0);
  EXPECT_EQ(base.num_iterations, 2205);  // scripts/base_train.py's scaling-law table
  a.target_flops = 1e18;
  auto by_flops = plan_training(a);
  EXPECT_EQ(by_flops.horizon_source, "target_flops");
  EXPECT_EQ(by_flops.num_iterations,
            static_cast<int64_t>(round_half_even(1e18 / (double(by_flops.flops_per_token) * (1 << 19)))));
  a.num_iterations = 7;
  auto explicit_iters = plan_training(a);
  EXPECT_EQ(explicit_iters.horizon_source, "num_iterations");
  EXPECT_EQ(explicit_iters.num_iterations, 7);
  EXPECT_EQ(explicit_iters.total_tokens, 7 * (1 << 19));

  ScalingArgs none;
  none.target_param_data_ratio = -1;
  EXPECT_THROW(plan_training(none), Error);
  ScalingArgs bad;
  bad.window_pattern = "SXL";
  EXPECT_THROW(plan_training(bad), Error);
  bad = ScalingArgs();
  bad.depth = 0;
  EXPECT_THROW(plan_training(bad), Error);
}

TEST(Scaling, GradAccumSteps) {
  EXPECT_EQ(grad_accum_steps(524288, 32, 2048, 8), 1);
  EXPECT_EQ(grad_accum_steps(524288, 16, 2048, 1), 16);
  EXPECT_THROW(grad_accum_steps(1000, 32, 2048, 1), Error);
}
