// scaling: base_train's automatic configuration (nanochat/gpt.py GPTConfig, scripts/base_train.py's scaling laws) as a
// pure function of the flags and the model's shape: model dims from --depth, the training horizon in tokens, the auto
// batch size (Power-Lines law B ∝ D^0.383 anchored at d12 / 2^19 tokens), the LR scale √(B/B_ref), the T_epoch
// weight-decay scaling and num_iterations with nanochat's precedence (--num-iterations > --target-flops >
// --target-param-data-ratio).
//
//   ScalingArgs a; a.depth = 12; a.vocab_size = tokenizer.vocab_size();
//   ScalingPlan p = plan_training(a);   // p.model_config, p.total_batch_size, p.num_iterations, ...
//
// No tensors are built: parameter counts come from the config (count_params), so depth 26 is instant.
// Not covered: printing (base_train prints the same numbers), schedules (lr/momentum/wd per step).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/gpt.h"

namespace nanochat {

// The base_train flags that shape the plan, with base_train's defaults.
struct ScalingArgs {
  int64_t depth = 20;
  int64_t aspect_ratio = 64;
  int64_t head_dim = 128;
  int64_t max_seq_len = 2048;
  std::string window_pattern = "SSSL";
  int64_t vocab_size = 32768;
  int64_t num_iterations = -1;
  double target_flops = -1.0;
  double target_param_data_ratio = 10.5;
  int64_t total_batch_size = -1;  // -1 = auto
  double weight_decay = 0.28;
};

struct ScalingPlan {
  GPTConfig model_config;
  int64_t padded_vocab = 0;
  std::vector<std::pair<int64_t, int64_t>> window_sizes;
  ParamCounts param_counts;
  int64_t flops_per_token = 0;
  int64_t scaling_params = 0;                // transformer matrices + lm_head
  int64_t target_tokens = 0;                 // int(ratio × scaling_params)
  double d_ref = 0;                          // ratio × scaling_params of the d12 reference with the same shape flags
  static constexpr int64_t kBRef = 1 << 19;  // 524,288 tokens: the tuned d12 batch size
  int64_t total_batch_size = 0;
  bool auto_batch_size = false;  // true when derived from the scaling law
  double batch_lr_scale = 1.0;   // √(B / B_ref), exactly 1.0 when B == B_ref
  double weight_decay_scaled = 0;
  int64_t num_iterations = 0;
  std::string horizon_source;    // "num_iterations" | "target_flops" | "target_param_data_ratio"
  int64_t total_tokens = 0;      // total_batch_size × num_iterations
  double dmodel_lr_scale = 1.0;  // (n_embd / 768)^-0.5, the AdamW LR scale setup_optimizer applies
};

// model_dim = ceil(depth × aspect_ratio / head_dim) × head_dim, heads = model_dim / head_dim (no GQA).
GPTConfig model_config_for_depth(int64_t depth, int64_t aspect_ratio, int64_t head_dim, int64_t max_seq_len,
                                 const std::string& window_pattern, int64_t vocab_size);

// Fails (nanochat::Error) on bad flags or when no training horizon is given.
ScalingPlan plan_training(const ScalingArgs& args);

// Micro-batches per optimizer step: total_batch_size / (device_batch_size × max_seq_len × world_size);
// fails unless it divides exactly.
int64_t grad_accum_steps(int64_t total_batch_size, int64_t device_batch_size, int64_t max_seq_len, int64_t world_size);

}  // namespace nanochat
