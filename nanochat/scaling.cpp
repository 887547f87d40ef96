// scaling: see scaling.h.
#include "nanochat/scaling.h"

#include <cmath>

#include "nanochat/common.h"

namespace nanochat {

GPTConfig model_config_for_depth(int64_t depth, int64_t aspect_ratio, int64_t head_dim, int64_t max_seq_len,
                                 const std::string& window_pattern, int64_t vocab_size) {
  if (depth < 1) fail("--depth={} must be at least 1", depth);
  if (aspect_ratio < 1) fail("--aspect-ratio={} must be positive", aspect_ratio);
  if (head_dim < 2 || head_dim % 2 != 0) fail("--head-dim={} must be a positive even number", head_dim);
  if (max_seq_len < 1) fail("--max-seq-len={} must be positive", max_seq_len);
  int64_t base_dim = depth * aspect_ratio;
  int64_t model_dim = (base_dim + head_dim - 1) / head_dim * head_dim;
  GPTConfig c;
  c.sequence_len = max_seq_len;
  c.vocab_size = vocab_size;
  c.n_layer = depth;
  c.n_head = model_dim / head_dim;
  c.n_kv_head = c.n_head;
  c.n_embd = model_dim;
  c.window_pattern = window_pattern;
  return c;
}

ScalingPlan plan_training(const ScalingArgs& a) {
  ScalingPlan p;
  p.model_config =
      model_config_for_depth(a.depth, a.aspect_ratio, a.head_dim, a.max_seq_len, a.window_pattern, a.vocab_size);
  validate_config(p.model_config);  // before the per-layer tables below (a --depth typo would allocate them)
  p.padded_vocab = padded_vocab_size(p.model_config);
  p.window_sizes = compute_window_sizes(p.model_config);
  p.param_counts = count_params(p.model_config);
  p.flops_per_token = estimate_flops(p.model_config);
  p.scaling_params = p.param_counts.scaling_params();
  // Python's int() truncates toward zero.
  p.target_tokens = static_cast<int64_t>(a.target_param_data_ratio * static_cast<double>(p.scaling_params));

  // The d12 reference: same aspect ratio, head dim, context and vocabulary.
  auto ref = model_config_for_depth(12, a.aspect_ratio, a.head_dim, a.max_seq_len, a.window_pattern, a.vocab_size);
  p.d_ref = a.target_param_data_ratio * static_cast<double>(count_params(ref).scaling_params());
  const double b_ref = static_cast<double>(ScalingPlan::kBRef);

  if (a.total_batch_size == -1) {
    double ratio = static_cast<double>(p.target_tokens) / p.d_ref;
    double predicted = b_ref * std::pow(ratio, 0.383);
    p.total_batch_size = static_cast<int64_t>(std::pow(2.0, round_half_even(std::log2(predicted))));
    p.auto_batch_size = true;
  } else {
    if (a.total_batch_size < 1)
      fail("--total-batch-size={} must be positive (or -1 for automatic)", a.total_batch_size);
    p.total_batch_size = a.total_batch_size;
  }
  double batch_ratio = static_cast<double>(p.total_batch_size) / b_ref;
  p.batch_lr_scale = batch_ratio != 1.0 ? std::pow(batch_ratio, 0.5) : 1.0;
  p.weight_decay_scaled = a.weight_decay * std::sqrt(static_cast<double>(p.total_batch_size) / b_ref) *
                          (p.d_ref / static_cast<double>(p.target_tokens));

  if (a.num_iterations > 0) {
    p.num_iterations = a.num_iterations;
    p.horizon_source = "num_iterations";
  } else if (a.target_flops > 0) {
    p.num_iterations = static_cast<int64_t>(round_half_even(
        a.target_flops / (static_cast<double>(p.flops_per_token) * static_cast<double>(p.total_batch_size))));
    p.horizon_source = "target_flops";
  } else if (a.target_param_data_ratio > 0) {
    p.num_iterations = floor_div(p.target_tokens, p.total_batch_size);
    p.horizon_source = "target_param_data_ratio";
  } else {
    fail("no training horizon: set --num-iterations, --target-flops or --target-param-data-ratio to a positive value");
  }
  p.total_tokens = p.total_batch_size * p.num_iterations;
  p.dmodel_lr_scale = std::pow(static_cast<double>(p.model_config.n_embd) / 768.0, -0.5);
  return p;
}

int64_t grad_accum_steps(int64_t total_batch_size, int64_t device_batch_size, int64_t max_seq_len, int64_t world_size) {
  int64_t tokens_per_fwdbwd = device_batch_size * max_seq_len;
  int64_t world_tokens = tokens_per_fwdbwd * world_size;
  if (device_batch_size < 1 || world_tokens < 1) fail("--device-batch-size={} must be positive", device_batch_size);
  if (total_batch_size % world_tokens != 0)
    fail("--total-batch-size={} must be a multiple of device_batch_size × max_seq_len × world_size = {} × {} × {} = {}",
         total_batch_size, device_batch_size, max_seq_len, world_size, world_tokens);
  return total_batch_size / world_tokens;
}

}  // namespace nanochat
