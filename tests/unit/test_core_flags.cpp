// Tests for nanochat/flags: argparse's habits (last value wins) and whole-number/finite checks on every numeric flag.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nanochat/cli/flags.h"

namespace {

struct Parsed {
  int rc;
  int32_t depth = 4;
  int64_t steps = -1;
  std::optional<int64_t> step;
  double lr = 0.02;
  std::string tag;
};

Parsed parse(std::vector<std::string> args) {
  Parsed p{};
  p.depth = 4;
  nanochat::Flags app{"test", "test"};
  app.add_option("--depth", p.depth, "");
  app.add_option("--num-iterations", p.steps, "");
  app.add_option("-s,--step", p.step, "");
  app.add_option("--matrix-lr", p.lr, "");
  app.add_option("--model-tag", p.tag, "");
  args.insert(args.begin(), "test");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStderr();
  p.rc = app.parse_or_exit(static_cast<int>(argv.size()), argv.data());
  testing::internal::GetCapturedStderr();
  return p;
}

TEST(Flags, GivenTwiceTakesTheLastValue) {
  Parsed p =
      parse({"--num-iterations", "8", "--depth=2", "--num-iterations", "12", "--model-tag", "a", "--model-tag=b"});
  EXPECT_EQ(p.rc, -1);
  EXPECT_EQ(p.steps, 12);
  EXPECT_EQ(p.depth, 2);
  EXPECT_EQ(p.tag, "b");
}

TEST(Flags, IntegersMustBeWholeAndFit) {
  EXPECT_EQ(parse({"--depth", "2.5"}).rc, 2);
  EXPECT_EQ(parse({"--depth", "4000000000"}).rc, 2);                     // beyond int32
  EXPECT_EQ(parse({"--num-iterations", "99999999999999999999"}).rc, 2);  // beyond int64
  EXPECT_EQ(parse({"-s", "99999999999999999999"}).rc, 2);                // std::optional<int64_t>
  EXPECT_EQ(parse({"--depth", "12abc"}).rc, 2);
  Parsed ok = parse({"--depth", "-3", "--num-iterations", "9223372036854775807", "-s", "7"});
  EXPECT_EQ(ok.rc, -1);
  EXPECT_EQ(ok.depth, -3);  // range is each flag's own check; the type check only asks for a whole number
  EXPECT_EQ(ok.steps, INT64_MAX);
  EXPECT_EQ(ok.step, 7);
}

TEST(Flags, FloatsMustBeFinite) {
  for (const char* bad : {"nan", "NaN", "inf", "-inf", "1e999", "0.02x"}) {
    EXPECT_EQ(parse({"--matrix-lr", bad}).rc, 2) << bad;
  }
  Parsed ok = parse({"--matrix-lr", "1e-3"});
  EXPECT_EQ(ok.rc, -1);
  EXPECT_DOUBLE_EQ(ok.lr, 1e-3);
}

}  // namespace
