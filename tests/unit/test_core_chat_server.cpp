// Tests for the web server's parts: UTF-8 holdback and SSE events (sse.h), the bounded FIFO worker pool and its
// slots (worker_pool.h), and a ChatServer in this process on a free port with the mock model (chat_server.h).
// The full HTTP suite against the server program is tests/http/e2e_chat_web_http.sh.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "nanochat/serve/chat_server.h"
#include "nanochat/serve/sse.h"
#include "nanochat/serve/worker_pool.h"
#include "tests/http/mock_chat_model.h"

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
  EXPECT_EQ(h.push("\xFF"
                   "a"),
            R + "a");
  EXPECT_EQ(h.push("\xF0\x9F"
                   "b"),
            R + "b");                                // a truncated sequence followed by more text: one U+FFFD
  EXPECT_EQ(h.push("\xC0\xAF"), R + R);              // overlong: each byte is its own ill-formed subpart
  EXPECT_EQ(h.push("\xED\xA0\x80"), R + R + R);      // a surrogate
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
  std::thread w2([&] {
    auto l = pool.wait(*t2, never);
    t2_pos = ++order;
  });
  std::this_thread::sleep_for(50ms);
  std::thread w1([&] {
    auto l = pool.wait(*t1, never);
    t1_pos = ++order;
    std::this_thread::sleep_for(20ms);
  });
  std::this_thread::sleep_for(50ms);
  lease.reset();
  w1.join();
  w2.join();
  EXPECT_EQ(t1_pos, 1);
  EXPECT_EQ(t2_pos, 2);
  EXPECT_EQ(pool.stats().available, 1);
}

// Workers of several slots: the front of the queue takes a free slot of the least loaded worker, so requests spread
// over the workers before they fill one; the queue bound counts free slots, not free workers.
TEST(WorkerPool, SlotsSpreadOverWorkersThenFill) {
  WorkerPool pool(1);
  MockOptions two;
  two.max_batch = 2;
  pool.add(mock(two));
  pool.add(mock(two));
  auto never = [] { return false; };
  auto s = pool.stats();
  EXPECT_EQ(s.slots_total, 4);
  EXPECT_EQ(s.slots_free, 4);
  EXPECT_EQ(s.available, 2);
  std::vector<std::shared_ptr<WorkerPool::Ticket>> t;
  for (int i = 0; i < 5; i++) t.push_back(pool.try_enqueue());  // 4 free slots + a queue of 1
  for (auto& x : t) ASSERT_TRUE(x);
  EXPECT_EQ(pool.try_enqueue(), nullptr);
  std::vector<std::unique_ptr<WorkerPool::Lease>> l;
  for (int i = 0; i < 4; i++) l.push_back(pool.wait(*t[i], never));
  for (auto& x : l) ASSERT_TRUE(x);
  EXPECT_EQ(l[0]->worker().id, 0);
  EXPECT_EQ(l[1]->worker().id, 1);  // the idle worker before a second slot of the busy one
  EXPECT_EQ(l[2]->worker().id, 0);
  EXPECT_EQ(l[3]->worker().id, 1);
  EXPECT_EQ(l[0]->worker().thread, nullptr);  // several slots: generate runs on the requests' own threads
  s = pool.stats();
  EXPECT_EQ(s.slots_free, 0);
  EXPECT_EQ(s.available, 0);
  EXPECT_EQ(s.queued, 1);
  ASSERT_EQ(s.workers.size(), 2u);
  EXPECT_EQ(s.workers[0].slots, 2);
  EXPECT_EQ(s.workers[0].busy, 2);
  EXPECT_EQ(pool.try_enqueue(), nullptr);  // every slot busy and the queue full
  l[1].reset();                            // a slot of worker 1 comes back: the queued request takes it
  s = pool.stats();
  EXPECT_EQ(s.slots_free, 1);
  EXPECT_EQ(s.available, 0);  // both workers still generate
  auto l4 = pool.wait(*t[4], never);
  ASSERT_TRUE(l4);
  EXPECT_EQ(l4->worker().id, 1);
  l.clear();
  l4.reset();
  s = pool.stats();
  EXPECT_EQ(s.slots_free, 4);
  EXPECT_EQ(s.available, 2);
  EXPECT_EQ(s.queued, 0);
}

TEST(WorkerPool, OneSlotWorkersKeepTheirThread) {
  WorkerPool pool(0);
  pool.add(mock());
  auto t = pool.try_enqueue();
  auto lease = pool.wait(*t, [] { return false; });
  ASSERT_TRUE(lease);
  EXPECT_NE(lease->worker().thread, nullptr);
  EXPECT_EQ(pool.stats().slots_total, 1);
  EXPECT_EQ(pool.try_enqueue(), nullptr);  // max_queue 0: only a free slot takes a request
}

// The mock refuses more concurrent generate() calls than its max_batch, so a server that overfills a replica fails
// the HTTP tests instead of passing them.
TEST(MockChatModel, RefusesMoreCallsAtOnceThanItsMaxBatch) {
  MockChatModel model{MockOptions{}};                              // max_batch 1
  const std::vector<int> prompt = {256, 257, 'h', 'i', 258, 259};  // bos, user_start, "hi", user_end, assistant_start
  std::promise<void> inside, checked;
  std::thread first([&] {
    bool once = false;
    model.generate(prompt, SamplingParams{}, [&](int, const TokenLogprob*) {
      if (!once) {
        once = true;
        inside.set_value();
        checked.get_future().wait();
      }
      return true;
    });
  });
  inside.get_future().wait();
  EXPECT_THROW(model.generate(prompt, SamplingParams{}, [](int, const TokenLogprob*) { return true; }),
               std::logic_error);
  checked.set_value();
  first.join();
  EXPECT_NO_THROW(model.generate(prompt, SamplingParams{},
                                 [](int, const TokenLogprob*) { return true; }));  // one at a time is fine
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

namespace {

// A model whose decode steps the test paces: it emits 'a' tokens and, before step `pause_at`, waits until the test
// says its client has hung up. It records what on_token answered for each step after that.
struct PacedModel : MockChatModel {
  PacedModel() : MockChatModel(MockOptions{}) {}
  int pause_at = 3;
  std::promise<void> paused, resume;
  std::vector<bool> answers_after_pause;
  void generate(const std::vector<int>&, const SamplingParams& params, const TokenCallback& on_token) override {
    for (int n = 0; n < params.max_tokens; n++) {
      if (n == pause_at) {
        paused.set_value();
        resume.get_future().wait();
      }
      bool more = on_token('a', nullptr);
      if (n >= pause_at) answers_after_pause.push_back(more);
      if (!more) return;
    }
  }
};

int connect_local(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

void send_all(int fd, const std::string& s) { ASSERT_EQ(::send(fd, s.data(), s.size(), 0), ssize_t(s.size())); }

std::string post(int port, const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

// The client leaves mid-reply: the very next decode step is refused (the server looks at the socket before every
// token) and the worker goes back to the pool. Streaming and non-streaming (OpenAI) replies alike.
TEST(ChatServer, StopsWithinOneDecodeStepOfTheClientLeaving) {
  for (bool stream : {true, false}) {
    SCOPED_TRACE(stream ? "stream" : "non-stream");
    ChatServerOptions opt;
    opt.port = 0;
    ChatServer server(opt);
    int port = server.start();
    auto owned = std::make_unique<PacedModel>();
    PacedModel& model = *owned;
    server.add_replica(std::move(owned));
    server.set_ready();

    int fd = connect_local(port);
    std::string body = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100)";
    body += stream ? "}" : R"(, "stream": false})";
    send_all(fd, post(port, stream ? "/chat/completions" : "/v1/chat/completions", body));
    ASSERT_EQ(model.paused.get_future().wait_for(10s), std::future_status::ready);
    if (stream) {  // the three tokens so far have been sent: read them before leaving
      std::string got;
      char buf[4096];
      auto count = [&] {
        size_t n = 0;
        for (size_t p = got.find("\"token\""); p != std::string::npos; p = got.find("\"token\"", p + 1)) n++;
        return n;
      };
      while (count() < 3) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(n, 0);
        got.append(buf, size_t(n));
      }
    }
    ::close(fd);
    model.resume.set_value();

    httplib::Client cli("127.0.0.1", port);
    nlohmann::json stats;
    for (int i = 0; i < 500; i++) {  // bounded wait for the worker to come back
      stats = nlohmann::json::parse(cli.Get("/stats")->body);
      if (stats["available_workers"] == 1) break;
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(stats["available_workers"], 1) << stats.dump();
    EXPECT_EQ(stats["requests"]["cancelled"], 1) << stats.dump();
    EXPECT_EQ(model.answers_after_pause, std::vector<bool>{false}) << "the step after the client left was not refused";
    server.stop();
    server.join();
  }
}

namespace {

// A mock of max_batch n whose generate() calls each wait (up to 10 s) until n of them have begun, so that a server
// running the requests of one worker one after another fails the test instead of passing it.
struct BarrierModel : MockChatModel {
  explicit BarrierModel(int n) : MockChatModel(options(n)), n(n) {}
  static MockOptions options(int n) {
    MockOptions o;
    o.max_batch = n;
    return o;
  }
  const int n;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  std::atomic<int> together{0};
  void generate(const std::vector<int>& prompt, const SamplingParams& params, const TokenCallback& on_token) override {
    {
      std::unique_lock<std::mutex> lock(mu);
      arrived++;
      cv.notify_all();
      if (cv.wait_for(lock, 10s, [&] { return arrived >= n; })) together++;
    }
    MockChatModel::generate(prompt, params, on_token);
  }
};

}  // namespace

// One worker of 4 slots: 4 requests call its model at the same time, each gets its own reply.
TEST(ChatServer, BatchedWorkerRunsItsRequestsTogether) {
  ChatServerOptions opt;
  opt.port = 0;
  opt.max_batch = 4;
  ChatServer server(opt);
  int port = server.start();
  auto owned = std::make_unique<BarrierModel>(4);
  BarrierModel& model = *owned;
  server.add_replica(std::move(owned));
  server.set_ready();
  std::vector<std::string> texts(4);
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; i++) {
    clients.emplace_back([&, i] {
      httplib::Client cli("127.0.0.1", port);
      cli.set_read_timeout(60, 0);
      std::string body = R"({"messages": [{"role": "user", "content": "c)" + std::to_string(i) +
                         R"("}], "temperature": 0, "stream": false})";
      auto res = cli.Post("/v1/chat/completions", body, "application/json");
      if (res && res->status == 200)
        texts[i] = nlohmann::json::parse(res->body)["choices"][0]["message"]["content"].get<std::string>();
    });
  }
  for (auto& c : clients) c.join();
  for (int i = 0; i < 4; i++)
    EXPECT_EQ(texts[i], MockChatModel::reply_for("c" + std::to_string(i), SamplingParams{0.0, 50, 512, 0}));
  EXPECT_EQ(model.together, 4) << "the 4 requests did not run at the same time";
  httplib::Client cli("127.0.0.1", port);
  auto stats = nlohmann::json::parse(cli.Get("/stats")->body);
  EXPECT_EQ(stats["slots_total"], 4);
  EXPECT_EQ(stats["slots_free"], 4);
  EXPECT_EQ(stats["requests"]["completed"], 4);
  server.stop();
  server.join();
}
