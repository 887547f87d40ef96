// test_core_stop_text: stop strings on a reply that arrives a piece at a time (nanochat/serve/stop_text.h): the
// reply ends before the first stop string, and no sent text is ever part of one.
#include <gtest/gtest.h>

#include "nanochat/serve/stop_text.h"

using namespace nanochat;

namespace {
// Pushes pieces; returns what was sent (with the held-back rest when no stop string appeared) and whether it stopped.
std::pair<std::string, bool> run(std::vector<std::string> stops, std::vector<std::string> pieces) {
  StopFilter f(std::move(stops));
  std::string sent;
  for (const auto& p : pieces) {
    sent += f.push(p);
    if (f.stopped()) return {sent, true};
  }
  return {sent + f.finish(), false};
}
}  // namespace

TEST(StopFilter, EndsBeforeTheStopString) {
  EXPECT_EQ(run({"\n\nUser:"}, {"Hi", " there\n", "\nUs", "er: more"}), std::make_pair(std::string("Hi there"), true));
  EXPECT_EQ(run({"lo"}, {"hello"}), std::make_pair(std::string("hel"), true));
  EXPECT_EQ(run({"x", "l"}, {"hello"}), std::make_pair(std::string("he"), true));  // the first of several
  EXPECT_EQ(run({"abc"}, {"a", "b", "c"}), std::make_pair(std::string(""), true));
}

TEST(StopFilter, HeldBackTextThatIsNoStopGoesOut) {
  EXPECT_EQ(run({"\n\nUser:"}, {"a\n", "\nUs", "e"}), std::make_pair(std::string("a\n\nUse"), false));
  EXPECT_EQ(run({"abc"}, {"ab"}), std::make_pair(std::string("ab"), false));  // held to the end, then sent
  EXPECT_EQ(run({}, {"anything"}), std::make_pair(std::string("anything"), false));
}

TEST(StopFilter, NeverSendsAPossibleStart) {
  StopFilter f({"END"});
  EXPECT_EQ(f.push("the E"), "the ");
  EXPECT_EQ(f.push("N"), "");
  EXPECT_EQ(f.push("X"), "ENX");  // "ENX" is not "END": it goes out whole
  EXPECT_EQ(f.push("EEN"), "E");  // "EN" may still start "END"
  EXPECT_EQ(f.push("D!"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.push("more"), "");
}
