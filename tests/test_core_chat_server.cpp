// Tests for the web server's parts: UTF-8 holdback and SSE events (sse.h), the bounded FIFO worker pool
// (worker_pool.h), and a ChatServer in this process on a free port with the mock model (chat_server.h).
// The full HTTP suite against the server program is tests/e2e_chat_web_http.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "nanochat/chat_server.h"
#include "nanochat/sse.h"
#include "nanochat/worker_pool.h"
#include "tests/mock_chat_model.h"

using namespace nanochat;
using namespace std::chrono_literals;

TEST(Utf8Holdback, HoldsBackSplitCharacters) {
  Utf8Holdback h;
  EXPECT_EQ(h.push("a\xF0"), "a");
  EXPECT_EQ(h.push("\x9F"), "");
  EXPECT_EQ(h.push("\xA6"), "");
  EXPECT_EQ(h.pending(), "\xF0\x9F\xA6");
  EXPECT_EQ(h.push("\x99!"), "\xF0\x9F\xA6\x99!");
  EXPECT_EQ(h.pending(), "");
  EXPECT_EQ(h.push("\xE4\xBD"), "");
  EXPECT_EQ(h.push("\xA0"), "\xE4\xBD\xA0");
}

TEST(Utf8Holdback, InvalidBytesBecomeReplacementCharacters) {
  const std::string R = "\xEF\xBF\xBD";
  Utf8Holdback h;
  EXPECT_EQ(h.push("\xFF" "a"), R + "a");
  EXPECT_EQ(h.push("\xF0\x9F" "b"), R + "b");  // a truncated sequence followed by more text: one U+FFFD
  EXPECT_EQ(h.push("\xC0\xAF"), R + R);        // overlong: each byte is its own ill-formed subpart
  EXPECT_EQ(h.push("\xED\xA0\x80"), R + R + R);  // a surrogate
  EXPECT_EQ(sanitize_utf8("ok\xE4\xBD"), "ok" + R);  // nothing held back at the end
}

TEST(Sse, EventsKeepNanochatJson) {
  EXPECT_EQ(sse_token_event("h\xC3\xA9\"\n", 1), "data: {\"token\": \"h\xC3\xA9\\\"\\n\", \"gpu\": 1}\n\n");
  EXPECT_EQ(sse_done_event(), "data: {\"done\": true}\n\n");
  EXPECT_EQ(json_quote(std::string("\x01", 1)), "\"\\u0001\"");
  EXPECT_EQ(sse_error_event("boom"), "data: {\"error\": \"boom\"}\n\n");
}

namespace {
std::unique_ptr<ChatModel> mock(MockOptions o = {}) { return std::make_unique<MockChatModel>(o); }
}  // namespace

TEST(WorkerPool, BoundedQueueAndFifo) {
  WorkerPool pool(2);
  pool.add(mock());
  auto never = [] { return false; };
  auto t0 = pool.try_enqueue();
  auto t1 = pool.try_enqueue();
  auto t2 = pool.try_enqueue();
  ASSERT_TRUE(t0 && t1 && t2);  // 1 free worker + queue of 2
  EXPECT_EQ(pool.try_enqueue(), nullptr);
  auto lease = pool.wait(*t0, never);
  ASSERT_TRUE(lease);
  EXPECT_EQ(pool.stats().available, 0);
  EXPECT_EQ(pool.stats().queued, 2);
  EXPECT_EQ(pool.try_enqueue(), nullptr);

  // t2 waits behind t1 even when the worker comes back: FIFO.
  std::atomic<int> order{0}, t1_pos{0}, t2_pos{0};
  std::thread w2([&] { auto l = pool.wait(*t2, never); t2_pos = ++order; });
  std::this_thread::sleep_for(50ms);
  std::thread w1([&] { auto l = pool.wait(*t1, never); t1_pos = ++order; std::this_thread::sleep_for(20ms); });
  std::this_thread::sleep_for(50ms);
  lease.reset();
  w1.join();
  w2.join();
  EXPECT_EQ(t1_pos, 1);
  EXPECT_EQ(t2_pos, 2);
  EXPECT_EQ(pool.stats().available, 1);
}

TEST(WorkerPool, GivingUpLeavesTheQueue) {
  WorkerPool pool(4);
  pool.add(mock());
  auto t0 = pool.try_enqueue();
  auto lease = pool.wait(*t0, [] { return false; });
  auto t1 = pool.try_enqueue();
  std::atomic<bool> gone{false};
  std::thread waiter([&] { EXPECT_EQ(pool.wait(*t1, [&] { return gone.load(); }), nullptr); });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(pool.stats().queued, 1);
  gone = true;
  waiter.join();
  EXPECT_EQ(pool.stats().queued, 0);
  EXPECT_EQ(pool.stats().dropped_from_queue, 1u);
  // A ticket dropped without waiting leaves too.
  auto t2 = pool.try_enqueue();
  EXPECT_EQ(pool.stats().queued, 1);
  t2.reset();
  EXPECT_EQ(pool.stats().queued, 0);
}

TEST(WorkerPool, ShutdownWakesWaiters) {
  WorkerPool pool(4);
  auto t = pool.try_enqueue();  // no worker loaded yet: it waits
  std::thread waiter([&] { EXPECT_EQ(pool.wait(*t, [] { return false; }), nullptr); });
  std::this_thread::sleep_for(30ms);
  pool.shutdown();
  waiter.join();
  EXPECT_EQ(pool.try_enqueue(), nullptr);
}

TEST(ChatServer, ServesStreamsInProcess) {
  ChatServerOptions opt;
  opt.port = 0;
  opt.num_gpus = 1;
  ChatServer server(opt);
  int port = server.start();
  httplib::Client cli("127.0.0.1", port);
  const std::string body = R"({"messages": [{"role": "user", "content": "hey"}], "temperature": 0})";
  auto res = cli.Post("/chat/completions", body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);  // no model yet
  server.add_replica(mock());
  server.set_ready();
  res = cli.Post("/chat/completions", body, "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  std::string text;
  size_t pos = 0, end;
  while ((end = res->body.find("\n\n", pos)) != std::string::npos) {
    auto ev = nlohmann::json::parse(res->body.substr(pos + 6, end - pos - 6));
    if (ev.contains("token")) text += ev["token"].get<std::string>();
    pos = end + 2;
  }
  EXPECT_EQ(text, MockChatModel::reply_for("hey", SamplingParams{0.0, 50, 512, 0}));
  EXPECT_TRUE(res->body.ends_with("data: {\"done\": true}\n\n"));
  auto health = nlohmann::json::parse(cli.Get("/health")->body);
  EXPECT_EQ(health["available_workers"], 1);
  EXPECT_EQ(health["ready"], true);
  server.stop();
  server.join();
}
