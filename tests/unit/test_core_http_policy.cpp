// Tests for http_policy (http_policy.h): which Host headers name the server, what the Origin header decides, the
// --cors-origin syntax, and control characters escaped for the log. The server-level checks of the same rules are
// in test_core_chat_server_guards.cpp.
#include <gtest/gtest.h>

#include "nanochat/serve/http_policy.h"

using namespace nanochat;

TEST(HttpPolicy, HostOriginAndLogEscapes) {
  EXPECT_TRUE(host_allowed("localhost:8000", 8000, {}));
  EXPECT_TRUE(host_allowed("localhost.:8000", 8000, {}));
  EXPECT_TRUE(host_allowed("10.1.2.3:8000", 8000, {}));
  EXPECT_TRUE(host_allowed("[::ffff:127.0.0.1]:8000", 8000, {}));
  EXPECT_TRUE(host_allowed("localhost", 80, {}));
  EXPECT_TRUE(host_allowed("MyBox:8000", 8000, {"mybox"}));
  EXPECT_FALSE(host_allowed("mybox:8000", 8000, {}));
  EXPECT_FALSE(host_allowed("localhost:8001", 8000, {}));
  EXPECT_FALSE(host_allowed("localhost:", 8000, {}));
  EXPECT_FALSE(host_allowed("[::1]", 8000, {}));
  EXPECT_FALSE(host_allowed("127.0.0.1.evil.example:8000", 8000, {}));
  EXPECT_FALSE(host_allowed("", 8000, {}));
  EXPECT_TRUE(cors_decision("", "h:1", {}).allowed);
  EXPECT_TRUE(cors_decision("http://h:1", "h:1", {}).allowed);
  EXPECT_EQ(cors_decision("http://h:1", "h:1", {}).allow_origin, "");
  EXPECT_FALSE(cors_decision("http://h:2", "h:1", {}).allowed);
  EXPECT_FALSE(cors_decision("null", "h:1", {}).allowed);
  EXPECT_EQ(normalize_cors_origin("HTTPS://App.Test:8443/"), "https://app.test:8443");
  EXPECT_EQ(normalize_cors_origin("*"), "*");
  for (const char* bad : {"", "app.test", "http://", "http://a/b", "http://a?x", "://a", "http://u@a", "ht tp://a"})
    EXPECT_EQ(normalize_cors_origin(bad), "") << bad;
  EXPECT_EQ(escape_control_chars("a\nb\r\tc\x01\x1b[2J\x7f"), "a\\nb\\r\\tc\\x01\\x1b[2J\\x7f");
  EXPECT_EQ(escape_control_chars("\xC2\x85\xC2\x9B\xC2\xA0\xE2\x80\xA8\xE2\x80\xA9 \xF0\x9F\xA6\x99 \\n"),
            "\\u0085\\u009b\xC2\xA0\\u2028\\u2029 \xF0\x9F\xA6\x99 \\n");
}
