// Tests for nanochat/progress: the rendered line (percent, counts, rate, ETA), plain-line output when not on a
// terminal (one line per 10%, never one per update), \r redraws on a terminal, and rank-0-only output.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

#include "nanochat/cli/progress.h"

using namespace nanochat;

namespace {

std::string slurp(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  return out;
}

}  // namespace

TEST(Progress, Formatting) {
  EXPECT_EQ(format_interval(7.9), "00:07");
  EXPECT_EQ(format_interval(125), "02:05");
  EXPECT_EQ(format_interval(3723), "1:02:03");
  EXPECT_EQ(format_interval(-1), "?");
  EXPECT_EQ(format_si(123), "123");
  EXPECT_EQ(format_si(1500), "1.50k");
  EXPECT_EQ(format_si(39900000), "39.9M");
  EXPECT_EQ(format_si(95100000), "95.1M");
  EXPECT_EQ(format_si(250e9), "250G");
}

TEST(Progress, RenderedLine) {
  ::unsetenv("RANK");
  std::FILE* f = std::tmpfile();
  {
    Progress p("Tokenizing", 200, "docs", f, Progress::Style::Plain);
    p.set(50);
    EXPECT_EQ(p.render(10.0), "Tokenizing:  25% 50/200 [00:10<00:30, 5.00 docs/s]");
    Progress bytes("shard_00001.parquet", 95100000, "B", f, Progress::Style::Plain);
    bytes.set(40000000);
    EXPECT_EQ(bytes.render(2.0), "shard_00001.parquet:  42% 40.0M/95.1MB [00:02<00:02, 20.0MB/s]");
    Progress unknown("Evaluating", 0, "it", f, Progress::Style::Plain);
    unknown.set(30);
    EXPECT_EQ(unknown.render(3.0), "Evaluating: 30 it [00:03, 10.00 it/s]");
    Progress bar("x", 8, "it", f, Progress::Style::Terminal);
    bar.set(4);
    EXPECT_EQ(bar.render(1.0), "x:  50% |██████████          | 4/8 [00:01<00:01, 4.00 it/s]");
  }
  std::fclose(f);
}

TEST(Progress, PlainOutputIsOneLinePerTenPercent) {
  ::unsetenv("RANK");
  std::FILE* f = std::tmpfile();
  {
    Progress p("Evaluating", 1000, "it", f, Progress::Style::Plain);
    for (int i = 0; i < 1000; i++) p.update();
  }
  std::string out = slurp(f);
  std::fclose(f);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  std::istringstream lines(out);
  std::string line;
  std::set<int> percents;
  int n = 0;
  while (std::getline(lines, line)) {
    n++;
    ASSERT_EQ(line.rfind("Evaluating: ", 0), 0u) << line;
    percents.insert(std::atoi(line.c_str() + 12));
  }
  // Every 10% step appears once; a stalled machine could add a 10-second line, never hundreds.
  for (int pct = 10; pct <= 100; pct += 10) EXPECT_TRUE(percents.count(pct)) << pct;
  EXPECT_GE(n, 10);
  EXPECT_LE(n, 20);
  EXPECT_NE(out.find("100% 1000/1000"), std::string::npos);
}

TEST(Progress, TerminalRedrawsInPlace) {
  ::unsetenv("RANK");
  std::FILE* f = std::tmpfile();
  {
    Progress p("Downloading", 10, "B", f, Progress::Style::Terminal);
    for (int i = 0; i < 10; i++) p.update();
  }
  std::string out = slurp(f);
  std::fclose(f);
  EXPECT_EQ(out.front(), '\r');
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);  // one line, redrawn
  EXPECT_NE(out.find("100% |████████████████████| 10/10B"), std::string::npos) << out;
}

TEST(Progress, OnlyRankZeroPrints) {
  ::setenv("RANK", "1", 1);
  std::FILE* f = std::tmpfile();
  {
    Progress p("x", 10, "it", f, Progress::Style::Plain);
    for (int i = 0; i < 10; i++) p.update();
  }
  EXPECT_EQ(slurp(f), "");
  std::fclose(f);
  ::unsetenv("RANK");
}
