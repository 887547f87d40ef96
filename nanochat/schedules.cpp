// schedules: see schedules.h.
#include "nanochat/schedules.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "nanochat/common.h"

namespace nanochat {

int64_t warmdown_iters(int64_t num_iterations, double warmdown_ratio) {
  return static_cast<int64_t>(round_half_even(warmdown_ratio * static_cast<double>(num_iterations)));
}

double base_lr_multiplier(int64_t it, int64_t num_iterations, int64_t warmup_steps, double warmdown_ratio,
                          double final_lr_frac) {
  const int64_t warmdown = warmdown_iters(num_iterations, warmdown_ratio);
  if (it < warmup_steps) return static_cast<double>(it + 1) / static_cast<double>(warmup_steps);
  if (it <= num_iterations - warmdown) return 1.0;
  const double progress = static_cast<double>(num_iterations - it) / static_cast<double>(warmdown);
  return progress * 1.0 + (1 - progress) * final_lr_frac;
}

double base_muon_momentum(int64_t it, int64_t num_iterations, double warmdown_ratio) {
  const int64_t warmdown = warmdown_iters(num_iterations, warmdown_ratio);
  const int64_t warmdown_start = num_iterations - warmdown;
  if (it < 400) {
    const double frac = static_cast<double>(it) / 400;
    return (1 - frac) * 0.85 + frac * 0.97;
  }
  if (it >= warmdown_start) {
    // without a warmdown this is only reached at it = N, where the loop takes no optimizer step
    if (warmdown == 0) return 0.90;
    const double progress = static_cast<double>(it - warmdown_start) / static_cast<double>(warmdown);
    return 0.97 * (1 - progress) + 0.90 * progress;
  }
  return 0.97;
}

double base_muon_weight_decay(int64_t it, int64_t num_iterations, double weight_decay) {
  return weight_decay * 0.5 *
         (1 + std::cos(std::numbers::pi * static_cast<double>(it) / static_cast<double>(num_iterations)));
}

double sft_lr_multiplier(double progress, double warmup_ratio, double warmdown_ratio, double final_lr_frac) {
  if (progress < warmup_ratio) return (progress + 1e-8) / warmup_ratio;
  if (progress <= 1.0 - warmdown_ratio) return 1.0;
  const double decay = (progress - (1.0 - warmdown_ratio)) / warmdown_ratio;
  return (1 - decay) * 1.0 + decay * final_lr_frac;
}

double sft_muon_momentum(int64_t it) {
  const double frac = std::min(static_cast<double>(it) / 300, 1.0);
  return (1 - frac) * 0.85 + frac * 0.95;
}

double rl_lr_multiplier(int64_t it, int64_t num_steps) {
  return 1.0 - static_cast<double>(it) / static_cast<double>(num_steps);
}

}  // namespace nanochat
