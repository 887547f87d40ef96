// schedules: the learning-rate, Muon-momentum and Muon-weight-decay schedules of nanochat's training scripts
// (scripts/base_train.py get_lr_multiplier, get_muon_momentum for base_train, scripts/chat_sft.py for chat_sft,
// chat_rl's linear decay), as pure functions of the step.
//
//   double lrm = base_lr_multiplier(step, num_iterations, warmup_steps, warmdown_ratio, final_lr_frac);
//   for (auto& g : optimizer.param_groups()) g.lr = g.initial_lr * lrm;   // plus momentum / wd for Muon groups
//
// Arithmetic follows the Python expressions term by term so the doubles agree bit for bit. No state, no torch.
#pragma once

#include <cstdint>

namespace nanochat {

// round(warmdown_ratio × N), half to even.
int64_t warmdown_iters(int64_t num_iterations, double warmdown_ratio);

// base_train: linear warmup over warmup_steps ((it+1)/warmup), constant 1, then linear warmdown over the last
// warmdown_iters steps down to final_lr_frac at it = N.
double base_lr_multiplier(int64_t it, int64_t num_iterations, int64_t warmup_steps, double warmdown_ratio,
                          double final_lr_frac);
// base_train: Muon momentum 0.85 → 0.97 over the first 400 steps (this branch wins), 0.97, then 0.97 → 0.90
// over the warmdown.
double base_muon_momentum(int64_t it, int64_t num_iterations, double warmdown_ratio);
// base_train: Muon weight decay, cosine from weight_decay at it = 0 to 0 at it = N.
double base_muon_weight_decay(int64_t it, int64_t num_iterations, double weight_decay);

// chat_sft: multiplier of the training progress in [0, 1] (warmup, constant, warmdown to final_lr_frac).
double sft_lr_multiplier(double progress, double warmup_ratio, double warmdown_ratio, double final_lr_frac);
// chat_sft: Muon momentum 0.85 → 0.95 over the first 300 steps.
double sft_muon_momentum(int64_t it);

// chat_rl: 1 - it / num_steps.
double rl_lr_multiplier(int64_t it, int64_t num_steps);

}  // namespace nanochat
