// Tests for nanochat/schedules against values computed by hand from scripts/base_train.py get_lr_multiplier,
// get_muon_momentum, scripts/chat_sft.py get_lr_multiplier.
#include <gtest/gtest.h>

#include <cmath>

#include "nanochat/schedules.h"

using namespace nanochat;

TEST(Schedules, WarmdownItersRoundsHalfToEven) {
  EXPECT_EQ(warmdown_iters(100, 0.65), 65);
  EXPECT_EQ(warmdown_iters(10, 0.25), 2);  // 2.5 -> 2
  EXPECT_EQ(warmdown_iters(14, 0.25), 4);  // 3.5 -> 4
  EXPECT_EQ(warmdown_iters(100, 0.0), 0);
}

TEST(Schedules, BaseLrMultiplier) {
  // N = 100, warmup 40, warmdown round(0.65·100) = 65: it < 40 -> (it+1)/40; the flat part (it <= 35) is
  // hidden by the warmup, so from it = 40 on p = (100 - it)/65 and lrm = p + (1-p)·0.05
  EXPECT_DOUBLE_EQ(base_lr_multiplier(0, 100, 40, 0.65, 0.05), 1.0 / 40);
  EXPECT_DOUBLE_EQ(base_lr_multiplier(39, 100, 40, 0.65, 0.05), 1.0);
  EXPECT_DOUBLE_EQ(base_lr_multiplier(40, 100, 40, 0.65, 0.05), (60.0 / 65) + (1 - 60.0 / 65) * 0.05);
  EXPECT_DOUBLE_EQ(base_lr_multiplier(100, 100, 40, 0.65, 0.05), 0.05);
  // N = 1000, warmup 10, warmdown 200: flat through it = 800, then linear
  EXPECT_DOUBLE_EQ(base_lr_multiplier(4, 1000, 10, 0.2, 0.0), 0.5);
  EXPECT_DOUBLE_EQ(base_lr_multiplier(10, 1000, 10, 0.2, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(base_lr_multiplier(800, 1000, 10, 0.2, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(base_lr_multiplier(900, 1000, 10, 0.2, 0.0), 0.5);
  EXPECT_DOUBLE_EQ(base_lr_multiplier(950, 1000, 10, 0.2, 0.1), 0.25 + 0.75 * 0.1);
  // no warmup, no warmdown: always 1
  EXPECT_DOUBLE_EQ(base_lr_multiplier(0, 50, 0, 0.0, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(base_lr_multiplier(50, 50, 0, 0.0, 0.0), 1.0);
}

TEST(Schedules, BaseMuonMomentum) {
  // N = 2000, warmdown 0.5 -> starts at 1000
  EXPECT_DOUBLE_EQ(base_muon_momentum(0, 2000, 0.5), 0.85);
  EXPECT_DOUBLE_EQ(base_muon_momentum(200, 2000, 0.5), 0.5 * 0.85 + 0.5 * 0.97);
  EXPECT_DOUBLE_EQ(base_muon_momentum(400, 2000, 0.5), 0.97);
  EXPECT_DOUBLE_EQ(base_muon_momentum(999, 2000, 0.5), 0.97);
  EXPECT_DOUBLE_EQ(base_muon_momentum(1000, 2000, 0.5), 0.97);
  EXPECT_DOUBLE_EQ(base_muon_momentum(1500, 2000, 0.5), 0.97 * 0.5 + 0.90 * 0.5);
  EXPECT_DOUBLE_EQ(base_muon_momentum(2000, 2000, 0.5), 0.90);
  // the warmup branch wins even inside the warmdown: N = 100, warmdown 65, it = 50
  EXPECT_DOUBLE_EQ(base_muon_momentum(50, 100, 0.65), (1 - 0.125) * 0.85 + 0.125 * 0.97);
}

TEST(Schedules, BaseMuonWeightDecayIsCosineToZero) {
  EXPECT_DOUBLE_EQ(base_muon_weight_decay(0, 100, 0.2), 0.2);
  EXPECT_NEAR(base_muon_weight_decay(50, 100, 0.2), 0.1, 1e-16);
  EXPECT_NEAR(base_muon_weight_decay(25, 100, 0.2), 0.2 * 0.5 * (1 + std::sqrt(0.5)), 1e-16);
  EXPECT_NEAR(base_muon_weight_decay(100, 100, 0.2), 0.0, 1e-17);
}

TEST(Schedules, SftLrMultiplierAndMomentum) {
  // defaults: warmup 0, warmdown 0.5, final 0
  EXPECT_DOUBLE_EQ(sft_lr_multiplier(0.0, 0.0, 0.5, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(sft_lr_multiplier(0.5, 0.0, 0.5, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(sft_lr_multiplier(0.75, 0.0, 0.5, 0.0), 0.5);
  EXPECT_DOUBLE_EQ(sft_lr_multiplier(1.0, 0.0, 0.5, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(sft_lr_multiplier(1.0, 0.0, 0.5, 0.2), 0.2);
  // warmup: (progress + 1e-8)/ratio
  EXPECT_DOUBLE_EQ(sft_lr_multiplier(0.05, 0.1, 0.5, 0.0), (0.05 + 1e-8) / 0.1);
  EXPECT_DOUBLE_EQ(sft_muon_momentum(0), 0.85);
  EXPECT_DOUBLE_EQ(sft_muon_momentum(150), 0.5 * 0.85 + 0.5 * 0.95);
  EXPECT_DOUBLE_EQ(sft_muon_momentum(300), 0.95);
  EXPECT_DOUBLE_EQ(sft_muon_momentum(5000), 0.95);
}

TEST(Schedules, RlLinearDecay) {
  EXPECT_DOUBLE_EQ(rl_lr_multiplier(0, 10), 1.0);
  EXPECT_DOUBLE_EQ(rl_lr_multiplier(5, 10), 0.5);
  EXPECT_DOUBLE_EQ(rl_lr_multiplier(9, 10), 0.1);
}
