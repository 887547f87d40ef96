// Tests for nanochat/common: Python rounding, floor division, the peak-FLOPS table, atomic writes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "nanochat/common.h"

using namespace nanochat;
namespace fs = std::filesystem;

TEST(Common, RoundHalfEvenMatchesPython) {
  EXPECT_EQ(round_half_even(0.5), 0.0);
  EXPECT_EQ(round_half_even(1.5), 2.0);
  EXPECT_EQ(round_half_even(2.5), 2.0);
  EXPECT_EQ(round_half_even(-0.5), -0.0);
  EXPECT_EQ(round_half_even(2.6), 3.0);
}

TEST(Common, FloorDivMatchesPython) {
  EXPECT_EQ(floor_div(7, 2), 3);
  EXPECT_EQ(floor_div(-7, 2), -4);
  EXPECT_EQ(floor_div(7, -2), -4);
  EXPECT_EQ(floor_div(-8, 2), -4);
}

TEST(Common, PeakFlopsTableOrder) {
  EXPECT_EQ(get_peak_flops("NVIDIA H100 80GB HBM3"), 989e12);
  EXPECT_EQ(get_peak_flops("NVIDIA H100 PCIe"), 756e12);
  EXPECT_EQ(get_peak_flops("NVIDIA H200 NVL"), 836e12);
  EXPECT_EQ(get_peak_flops("NVIDIA L40S"), 362e12);
  EXPECT_EQ(get_peak_flops("NVIDIA L4"), 121e12);
  EXPECT_TRUE(std::isinf(get_peak_flops("cpu")));
}

TEST(Common, AtomicWriteLeavesNoTemp) {
  fs::path dir = fs::temp_directory_path() / "nanochat_test_atomic";
  fs::remove_all(dir);
  write_file_atomic(dir / "a.bin", "hello");
  EXPECT_EQ(read_file(dir / "a.bin"), "hello");
  write_file_atomic(dir / "a.bin", "world!");
  EXPECT_EQ(read_file(dir / "a.bin"), "world!");
  EXPECT_FALSE(fs::exists(dir / "a.bin.tmp"));
  EXPECT_THROW(read_file(dir / "missing"), Error);
  fs::remove_all(dir);
}
