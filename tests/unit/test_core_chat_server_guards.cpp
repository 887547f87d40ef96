// Tests for how the web server guards itself (chat_server.h, http_server.h, http_policy.h): a failed model load ends
// the program every time (also `nanochat chat_web` on a broken checkpoint), Host and Origin checks (DNS rebinding,
// other web pages), --cors-origin, log lines that user text cannot forge, --host '' refused, a POST without a
// length answered at once, pipelined requests all answered in order.
// In-process servers on 127.0.0.1 with the mock model, spoken to over raw sockets so every byte is the test's.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/serve/chat_server.h"
#include "tests/http/mock_chat_model.h"

using namespace nanochat;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct RawResponse {
  int status = 0;
  std::string head;  // status line and headers, lower case
  std::string body;
  std::string header(const std::string& name) const {  // "" if absent
    size_t p = head.find("\r\n" + name + ": ");
    if (p == std::string::npos) return "";
    p += name.size() + 4;
    return head.substr(p, head.find("\r\n", p) - p);
  }
};

// Sends `bytes` on a new connection to 127.0.0.1:port and collects the responses (bodies with a Content-Length)
// until `want` have come, the server closes the connection, or `timeout` passes.
std::vector<RawResponse> exchange(int port, const std::string& bytes, size_t want, std::chrono::milliseconds timeout,
                                  bool* closed = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size()));
  std::vector<RawResponse> out;
  std::string buf;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool eof = false;
  while (out.size() < want && !eof) {
    size_t end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      RawResponse r;
      r.head = buf.substr(0, end + 2);
      for (auto& c : r.head) c = char(std::tolower((unsigned char)c));
      std::string len = r.header("content-length");
      size_t n = len.empty() ? 0 : std::stoul(len);
      if (buf.size() >= end + 4 + n) {
        r.status = std::atoi(r.head.c_str() + 9);
        r.body = buf.substr(end + 4, n);
        buf.erase(0, end + 4 + n);
        out.push_back(std::move(r));
        continue;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, int(left.count())) <= 0) break;
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0)
      eof = true;
    else
      buf.append(tmp, size_t(n));
  }
  if (closed) {  // did the server close the connection after these responses?
    pollfd p{fd, POLLIN, 0};
    char c;
    *closed = eof || (::poll(&p, 1, 2000) > 0 && ::recv(fd, &c, 1, MSG_PEEK) == 0);
  }
  ::close(fd);
  return out;
}

std::string post(const std::string& path, const std::string& body, const std::string& host,
                 const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string get(const std::string& path, const std::string& host, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n";
}

std::string chat_body(const std::string& content) {
  return nlohmann::json{{"messages", {{{"role", "user"}, {"content", content}}}}, {"temperature", 0}, {"stream", false}}
      .dump();
}

// A server on a free port with one mock replica, ready.
struct Served {
  explicit Served(ChatServerOptions o = opts()) : server(o) {
    port = server.start();
    server.add_replica(std::make_unique<MockChatModel>(MockOptions{}));
    server.set_ready();
  }
  ~Served() {
    server.stop();
    server.join();
  }
  static ChatServerOptions opts() {
    ChatServerOptions o;
    o.port = 0;
    o.max_queue = 4;
    return o;
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port); }
  ChatServer server;
  int port = 0;
};

// Threads that keep every core busy while they live, as other work on a loaded machine: a thread started meanwhile
// may wait a while before it first runs.
struct BusyCores {
  BusyCores() {
    for (unsigned i = 0; i < 2 * std::max(1u, std::thread::hardware_concurrency()); i++)
      threads.emplace_back([this] {
        while (!stop.load(std::memory_order_relaxed)) {}
      });
  }
  ~BusyCores() {
    stop = true;
    for (auto& t : threads) t.join();
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
};

// Runs f in a child process; returns its exit status, or -1 if it had not ended after `timeout` (then killed).
int in_child(const std::function<int()>& f, std::chrono::seconds timeout) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = f();
    } catch (...) {}
    std::fflush(stdout);
    _exit(rc);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(5ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

// --- 1. a model that fails to load ends the program ----------------------------------------------------------------

// A replica that fails to load at once used to race the listening thread: stop() came before httplib had begun to
// listen, was ignored, and the program waited in join() forever with SIGINT/SIGTERM blocked. Threads that keep
// every core busy make the listening thread start late, as on a loaded machine.
TEST(ChatServerGuards, FailedLoadEndsTheServerEveryTime) {
  for (int i = 0; i < 40; i++) {
    int rc = in_child(
        [] {
          BusyCores busy;
          ChatServerOptions o = Served::opts();
          try {
            run_chat_server(o, [](int) -> std::unique_ptr<ChatModel> { throw Error("meta_000003.json is broken"); });
          } catch (const Error&) {
            return 3;
          }
          return 0;
        },
        20s);
    ASSERT_EQ(rc, 3) << "try " << i << ": run_chat_server did not end with the load's error (-1 = hung)";
  }
}

TEST(ChatServerGuards, StopRightAfterStartEndsTheListener) {
  int rc = in_child(
      [] {
        for (int i = 0; i < 40; i++) {
          ChatServer s(Served::opts());
          s.start();
          s.stop();
          s.join();
        }
        return 0;
      },
      30s);
  EXPECT_EQ(rc, 0) << "a ChatServer stopped right after start() kept listening (-1 = hung)";
}

// `nanochat chat_web` itself on a checkpoint whose meta file is `[]`, on a busy machine: exits 1 with one
// "error: ..." line, each time.
TEST(ChatServerGuards, ChatWebOnABrokenCheckpointExitsWithItsError) {
  const fs::path src = fs::path(NANOCHAT_FIXTURES) / "python_basedir";
  const fs::path base = fs::temp_directory_path() / ("chat_web_broken_" + std::to_string(getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "chatsft_checkpoints");
  fs::copy(src / "tokenizer", base / "tokenizer", fs::copy_options::recursive);
  fs::copy(src / "base_checkpoints" / "d2", base / "chatsft_checkpoints" / "d2", fs::copy_options::recursive);
  for (auto& e : fs::directory_iterator(base / "chatsft_checkpoints" / "d2"))
    if (e.path().filename().string().starts_with("meta_")) std::ofstream(e.path(), std::ios::trunc) << "[]";
  const fs::path err = base / "stderr.txt";
  BusyCores busy;
  for (int i = 0; i < 3; i++) {
    int rc = in_child(
        [&] {
          std::freopen(err.c_str(), "w", stderr);
          std::freopen("/dev/null", "w", stdout);
          setenv("NANOCHAT_BASE_DIR", base.c_str(), 1);
          setenv("OMP_NUM_THREADS", "1", 1);
          execl(NANOCHAT_BIN, NANOCHAT_BIN, "chat_web", "--device-type", "cpu", "--port", "0", (char*)nullptr);
          return 98;
        },
        60s);
    std::ifstream f(err);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    ASSERT_EQ(rc, 1) << "try " << i << " (-1 = hung): " << text;
    EXPECT_TRUE(text.starts_with("error: ") && text.find('\n') == text.size() - 1) << text;
    EXPECT_NE(text.find("meta"), std::string::npos) << text;
  }
  fs::remove_all(base);
}

// --- 2. Host and Origin --------------------------------------------------------------------------------------------

TEST(ChatServerGuards, HostHeaderMustNameThisServer) {
  Served s;
  const std::string port = std::to_string(s.port);
  for (const std::string& host :
       std::vector<std::string>{"127.0.0.1:" + port, "localhost:" + port, "LocalHost:" + port, "[::1]:" + port}) {
    auto r = exchange(s.port, get("/health", host), 1, 5s);
    ASSERT_EQ(r.size(), 1u) << host;
    EXPECT_EQ(r[0].status, 200) << host;
  }
  for (const std::string& host :
       std::vector<std::string>{"evil.example:" + port, "evil.example", "127.0.0.1:1" + port, "localhost",
                                "127.0.0.1:x", "localhost.evil.example:" + port}) {
    auto r = exchange(s.port, post("/chat/completions", chat_body("hi"), host), 1, 5s);
    ASSERT_EQ(r.size(), 1u) << host;
    EXPECT_EQ(r[0].status, 421) << host;
    auto j = nlohmann::json::parse(r[0].body);
    EXPECT_NE(j["error"]["message"].get<std::string>().find("Host"), std::string::npos) << r[0].body;
  }
  auto r = exchange(s.port, "GET /health HTTP/1.1\r\n\r\n", 1, 5s);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 400) << "a request without a Host header";
}

TEST(ChatServerGuards, OtherOriginsAreRefusedByDefault) {
  Served s;
  const std::string host = s.host();
  // Another page's request, and its preflight: refused, no CORS headers.
  auto r =
      exchange(s.port, post("/v1/chat/completions", chat_body("hi"), host, "Origin: http://evil.example\r\n"), 1, 5s);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 403) << r[0].head;
  EXPECT_EQ(r[0].header("access-control-allow-origin"), "");
  EXPECT_EQ(r[0].header("access-control-allow-credentials"), "");
  EXPECT_NE(nlohmann::json::parse(r[0].body)["error"]["message"].get<std::string>().find("--cors-origin"),
            std::string::npos);
  r = exchange(s.port,
               "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: " + host +
                   "\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
               1, 5s);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 403);
  EXPECT_EQ(r[0].header("access-control-allow-origin"), "");
  // The page the server itself serves, and clients that send no Origin: served.
  r = exchange(s.port, post("/v1/chat/completions", chat_body("hi"), host, "Origin: http://" + host + "\r\n"), 1, 5s);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 200) << r[0].body;
  r = exchange(s.port, post("/v1/chat/completions", chat_body("hi"), host), 1, 5s);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 200) << r[0].body;
}

TEST(ChatServerGuards, CorsOriginsFromTheFlag) {
  for (const char* spec : {"http://app.test,http://two.test", "*"}) {
    SCOPED_TRACE(spec);
    ChatServerOptions o = Served::opts();
    Flags app{"t", "chat_web"};
    add_chat_web_flags(app, o);
    std::vector<std::string> args = {"chat_web", "--cors-origin", spec, "--cors-origin", "http://three.test/"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ASSERT_EQ(app.parse_or_exit(int(argv.size()), argv.data()), -1);
    o.port = 0;
    Served s(o);
    const bool star = std::string(spec) == "*";
    for (const char* origin : {"http://app.test", "http://three.test", "http://other.test"}) {
      SCOPED_TRACE(origin);
      auto r = exchange(s.port,
                        "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: " + s.host() + "\r\nOrigin: " + origin +
                            "\r\nAccess-Control-Request-Method: POST\r\n\r\n",
                        1, 5s);
      ASSERT_EQ(r.size(), 1u);
      const bool listed = std::string(origin) != "http://other.test";
      if (listed && !star) {
        EXPECT_EQ(r[0].status, 204);
        EXPECT_EQ(r[0].header("access-control-allow-origin"), origin);
        EXPECT_EQ(r[0].header("access-control-allow-credentials"), "true");
      } else if (star) {
        EXPECT_EQ(r[0].status, 204);
        EXPECT_EQ(r[0].header("access-control-allow-origin"),
                  std::string(origin) == "http://three.test" ? origin : "*");
      } else {
        EXPECT_EQ(r[0].status, 403);
      }
      if (star && std::string(origin) != "http://three.test")
        EXPECT_EQ(r[0].header("access-control-allow-credentials"), "") << "'*' must come without credentials";
    }
  }
  ChatServerOptions o;
  Flags app{"t", "chat_web"};
  add_chat_web_flags(app, o);
  std::vector<std::string> args = {"chat_web", "--cors-origin", "http://app.test/path"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  EXPECT_EQ(app.parse_or_exit(int(argv.size()), argv.data()), 2) << "an origin with a path is refused";
}

// --- 3. log lines ----------------------------------------------------------------------------------------------------

TEST(ChatServerGuards, UserTextCannotForgeLogLines) {
  const std::string forged = "hi\n2099-01-01 00:00:00 - [ASSISTANT] (GPU 0): forged\r\x1b[1A";
  testing::internal::CaptureStdout();
  {
    Served s;
    auto r = exchange(s.port, post("/v1/chat/completions", chat_body(forged), s.host()), 1, 10s);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
  }
  const std::string log = testing::internal::GetCapturedStdout();
  std::istringstream lines(log);
  int user_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_FALSE(line.starts_with("2099")) << "a forged log line:\n" << log;
    EXPECT_EQ(line.find_first_of("\r\x1b"), std::string::npos) << line;
    if (line.find("[USER]: hi\\n2099-01-01 00:00:00 - [ASSISTANT] (GPU 0): forged\\r\\x1b[1A") != std::string::npos)
      user_lines++;
  }
  EXPECT_EQ(user_lines, 1) << log;
}

// --- 4. --host '' ----------------------------------------------------------------------------------------------------

TEST(ChatServerGuards, EmptyHostIsRefused) {
  ChatServerOptions o;
  Flags app{"t", "chat_web"};
  add_chat_web_flags(app, o);
  std::vector<std::string> args = {"chat_web", "--host", ""};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStderr();
  int rc = app.parse_or_exit(int(argv.size()), argv.data());
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 2) << "--host '' was accepted";
  EXPECT_NE(err.find("--host"), std::string::npos) << err;
}

// --- 5. a POST without a length ------------------------------------------------------------------------------------

TEST(ChatServerGuards, BodyWithoutLengthIsAnsweredAtOnce) {
  ChatServerOptions o = Served::opts();
  o.read_timeout = 10;
  Served s(o);
  for (const char* method : {"POST", "PUT"}) {
    SCOPED_TRACE(method);
    const auto t0 = std::chrono::steady_clock::now();
    bool closed = false;
    auto r = exchange(s.port,
                      std::string(method) + " /chat/completions HTTP/1.1\r\nHost: " + s.host() +
                          "\r\nContent-Type: application/json\r\n\r\n",
                      1, 4s, &closed);
    ASSERT_EQ(r.size(), 1u) << "no answer before the read timeout";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
    EXPECT_EQ(r[0].status, 411);
    EXPECT_EQ(r[0].header("connection"), "close");
    EXPECT_TRUE(closed);
    EXPECT_NE(nlohmann::json::parse(r[0].body)["error"]["message"].get<std::string>().find("Content-Length"),
              std::string::npos);
  }
}

// --- 6. pipelining ---------------------------------------------------------------------------------------------------

TEST(ChatServerGuards, PipelinedRequestsAreAllAnsweredInOrder) {
  Served s;
  std::string bytes;
  for (int i = 0; i < 4; i++) bytes += post("/v1/chat/completions", chat_body("p" + std::to_string(i)), s.host());
  bytes += get("/v1/models", s.host());
  auto r = exchange(s.port, bytes, 5, 10s);
  ASSERT_EQ(r.size(), 5u) << "only " << r.size() << " of 5 pipelined requests were answered";
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(r[i].status, 200) << r[i].body;
    EXPECT_EQ(nlohmann::json::parse(r[i].body)["choices"][0]["message"]["content"],
              MockChatModel::reply_for("p" + std::to_string(i), SamplingParams{0.0, 50, 512, 0}));
  }
  EXPECT_EQ(r[4].status, 200);
  EXPECT_EQ(nlohmann::json::parse(r[4].body)["object"], "list");
}
