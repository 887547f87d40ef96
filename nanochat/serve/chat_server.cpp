// chat_server: see chat_server.h. Each HTTP connection is served on a thread of httplib's pool; a streaming reply
// waits for a slot of a worker inside httplib's chunked content provider, then generates — on the worker's thread
// while the connection thread waits (one slot), or on the connection thread itself (several slots: the model
// batches the calls) — so the provider's sink tells us at every token whether the client is still there
// (sink.is_writable() peeks the socket for a hang-up). A non-streaming reply peeks its socket the same way.
#include "nanochat/serve/chat_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "nanochat/serve/chat_request.h"
#include "nanochat/common.h"
#include "nanochat/serve/http_policy.h"
#include "nanochat/serve/http_server.h"
#include "nanochat/serve/openai_format.h"
#include "nanochat/serve/sse.h"
#include "nanochat/serve/stop_text.h"
#include "nanochat/bpe/utf8.h"
#include "nanochat/serve/web_assets.h"

namespace nanochat {

using json = nlohmann::json;

void add_chat_web_flags(Flags& app, ChatServerOptions& o) {
  app.add_option("-n,--num-gpus,--num-workers", o.num_gpus, "number of workers (model replicas); >1 needs CUDA")
      ->check(CLI::Range(1, 1024));
  app.add_option("-i,--source", o.source, "source of the model: sft|rl");
  app.add_option("-t,--temperature", o.temperature, "default temperature for generation")->check(CLI::Range(0.0, 2.0));
  app.add_option("-k,--top-k", o.top_k, "default top-k sampling parameter")->check(CLI::Range(0, 200));
  app.add_option("-m,--max-tokens", o.max_tokens, "default max tokens for generation")->check(CLI::Range(1, 4096));
  app.add_option("-g,--model-tag", o.model_tag, "model tag to load");
  app.add_option("-s,--step", o.step, "step to load")->check(CLI::NonNegativeNumber);
  app.add_option("-p,--port", o.port, "port to run the server on (0 = any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--device-type", o.device_type, "cuda|cpu|mps (empty = autodetect)")
      ->check(CLI::IsMember({"", "cuda", "cpu", "mps"}));
  app.add_option("--host", o.host, "address to bind; 0.0.0.0 serves other machines too")
      ->check([](const std::string& h) {
        return h.empty() ? std::string("the address to bind is empty; give one, e.g. --host 127.0.0.1") : std::string();
      });
  app.add_option("--cors-origin", o.cors_origins,
                 "another web page allowed to call the API, as scheme://host[:port] (repeat or comma-separate; '*' = "
                 "any page, without credentials); the server's own page always is")
      ->delimiter(',')
      ->transform(CLI::Validator(
          [](std::string& v) {
            std::string n = normalize_cors_origin(v);
            if (n.empty())
              return "'" + v + "' is not an origin: write scheme://host[:port], e.g. http://localhost:3000";
            v = n;
            return std::string();
          },
          "ORIGIN"));
  app.add_option("--allowed-host", o.allowed_hosts,
                 "a DNS name of this server that the Host header may carry besides localhost and --host (repeat or "
                 "comma-separate); IP addresses are always allowed")
      ->delimiter(',')
      ->transform(CLI::Validator(
          [](std::string& v) {
            for (auto& c : v) c = char(std::tolower((unsigned char)c));
            return v.empty() || v.find_first_of(":/ ") != std::string::npos
                       ? "'" + v +
                             "' is not a host name; give one without port or scheme, e.g. --allowed-host mybox.lan"
                       : std::string();
          },
          "NAME"));
  app.add_option("--max-batch", o.max_batch,
                 "conversations one worker decodes together (continuous batching); 1 = one at a time")
      ->check(CLI::Range(1, 256));
  app.add_option("--prefix-cache-mb", o.prefix_cache_mb,
                 "MiB per worker kept of recent conversations' KV rows, so that a chat's next turn prefills only "
                 "what is new (0 = off)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--max-queue", o.max_queue, "requests that may wait for a free slot before 429")
      ->check(CLI::Range(0, 100000));
  app.add_option("--read-timeout", o.read_timeout, "seconds before an idle or stalled connection is closed")
      ->check(CLI::Range(1, 3600));
  app.add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' (default: $NANOCHAT_API_KEY if set)");
  app.add_flag("--metrics", o.metrics, "serve GET /metrics in Prometheus' text format (behind --api-key when set)");
  o.api_key = getenv_or("NANOCHAT_API_KEY", o.api_key);
}

namespace {

std::string random_hex(size_t n) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  std::string s;
  for (size_t i = 0; i < n; i++) s += "0123456789abcdef"[rng() % 16];
  return s;
}

uint64_t random_seed() {  // uniform in [0, 2^31 - 1], as nanochat's random.randint
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return rng() & 0x7FFFFFFFull;
}

// True once the peer of a connected socket has hung up (or the socket failed): it is readable and a peek reads
// nothing. Bytes waiting to be read (a pipelined request) mean the client is still there.
bool peer_gone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  int n = ::poll(&p, 1, 0);
  if (n <= 0) return false;
  if (p.revents & (POLLERR | POLLNVAL)) return true;
  char c;
  ssize_t r = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// Constant-time comparison: the time taken does not depend on where the strings first differ.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() != b.size();
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < a.size() ? a[i] : 0, y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

void send_error(httplib::Response& res, int status, const std::string& type, const std::string& message) {
  // "error" in OpenAI's shape for API clients; "detail" as FastAPI (and so nanochat) reports it.
  json body = {{"error", {{"message", message}, {"type", type}, {"code", status}}}, {"detail", message}};
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

const char* default_error_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "unavailable_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace

// A validated request, ready to run.
struct ChatServer::Job {
  std::vector<int> prompt;
  SamplingParams params;  // choice i samples with seed params.seed + i
  ChatApi api = ChatApi::Nanochat;
  bool include_usage = false;
  int n = 1;                      // choices
  std::vector<std::string> stop;  // stop strings
  ReplyMeta meta;                 // OpenAI: id, created, model, whether logprobs are returned
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();  // for time to first token
};

// One choice's outcome.
struct ChatServer::Reply {
  std::string text;
  std::vector<ReplyToken> tokens;  // with logprobs: the tokens of text, with their log-probabilities
  int completion_tokens = 0;
  bool stopped = false;    // the model ended its turn or wrote a stop string (else it ran into max_tokens)
  bool cancelled = false;  // the client left or the server is stopping
  std::string error;       // generation failed
  const char* finish_reason() const { return stopped ? "stop" : "length"; }
};

ChatServer::ChatServer(ChatServerOptions opt)
    : opt_(std::move(opt)), pool_(size_t(opt_.max_queue)), svr_(std::make_unique<HttpServer>()) {
  routes();
}

ChatServer::~ChatServer() {
  stop();
  join();
}

void ChatServer::log(const std::string& line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  // One call, one line: whatever a request put into `line` cannot start another.
  std::string s = format_local_time(std::time(nullptr)) + " - " + escape_control_chars(line) + "\n";
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

void ChatServer::routes() {
  auto& svr = *svr_;
  // Every connection holds a thread while it is open: enough for every slot of every worker, the queue, and
  // plenty of room for /health and slow clients besides. (The pool starts before the models load, so it is sized
  // by --max-batch rather than by the models' max_batch(), which it is meant to match.)
  size_t threads = size_t(opt_.num_gpus) * size_t(std::max(1, opt_.max_batch)) + size_t(opt_.max_queue) + 256;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(kMaxBodyBytes);
  svr.set_read_timeout(opt_.read_timeout, 0);
  svr.set_keep_alive_timeout(std::min(opt_.read_timeout, 5));  // an idle connection waits no longer than this

  // Who may ask, before anything is read of a body: a Host that names this server (else a page whose DNS name was
  // rebound to 127.0.0.1 could drive it), a length for a body (httplib would read one without a length until the
  // client closes: the read timeout), a browser page of this server's own origin or one --cors-origin allows
  // (else any page a browser shows could drive it), then the API key.
  std::vector<std::string> names = opt_.allowed_hosts;
  names.push_back(opt_.host.find(':') != std::string::npos ? "[" + opt_.host + "]" : opt_.host);
  for (auto& n : names)
    for (auto& c : n) c = char(std::tolower((unsigned char)c));
  svr.set_pre_routing_handler([this, names](const httplib::Request& req, httplib::Response& res) {
    using httplib::Server;
    const std::string host = req.get_header_value("Host");
    if (host.empty()) {
      send_error(res, 400, "invalid_request_error", "the request has no Host header (HTTP/1.1 requires one)");
      return Server::HandlerResponse::Handled;
    }
    if (!host_allowed(host, port_, names)) {
      send_error(res, 421, "invalid_request_error",
                 fmt::format("the Host header '{}' does not name this server (localhost, an IP address or a name "
                             "given with --allowed-host, and port {}); refused to guard against DNS rebinding",
                             host, port_));
      return Server::HandlerResponse::Handled;
    }
    const bool has_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                          req.method == "DELETE" || req.method == "PRI";
    if (has_body && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
      HttpServer::close_after(res);
      send_error(res, 411, "invalid_request_error",
                 fmt::format("a {} needs a Content-Length header (or Transfer-Encoding: chunked)", req.method));
      return Server::HandlerResponse::Handled;
    }
    const std::string origin = req.get_header_value("Origin");
    CorsDecision cors = cors_decision(origin, host, opt_.cors_origins);
    if (!origin.empty()) res.set_header("Vary", "Origin");
    if (!cors.allowed) {
      send_error(res, 403, "permission_error",
                 fmt::format("a request from the page of origin '{}' is refused; start the server with "
                             "--cors-origin {} to allow that page",
                             origin, origin));
      return Server::HandlerResponse::Handled;
    }
    if (!cors.allow_origin.empty()) res.set_header("Access-Control-Allow-Origin", cors.allow_origin);
    if (cors.credentials) res.set_header("Access-Control-Allow-Credentials", "true");
    bool is_public = req.method == "OPTIONS" || req.path == "/" || req.path == "/health" || req.path == "/logo.svg";
    if (!opt_.api_key.empty() && !is_public) {
      std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                same_secret(std::string_view(auth).substr(prefix.size()), opt_.api_key);
      if (!ok) {
        send_error(res, 401, "authentication_error",
                   "missing or wrong API key: send the header 'Authorization: Bearer <key>'");
        return Server::HandlerResponse::Handled;
      }
    }
    return Server::HandlerResponse::Unhandled;
  });
  svr.Options(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    std::string h = req.get_header_value("Access-Control-Request-Headers");
    res.set_header("Access-Control-Allow-Headers", h.empty() ? "*" : h);
    res.set_header("Access-Control-Max-Age", "600");
    res.status = 204;
  });
  // Errors httplib produces itself (404, 413, unparsable requests) get the same JSON body as ours.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = res.status == 413   ? fmt::format("the request body is larger than {} bytes", kMaxBodyBytes)
                      : res.status == 404 ? fmt::format("no such endpoint: {} {}", req.method, req.path)
                                          : fmt::format("bad request (HTTP {})", res.status);
    send_error(res, res.status, default_error_type(res.status), msg);
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {}
    log("internal error: " + what);
    send_error(res, 500, "server_error", "internal error: " + what);
  });

  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    auto html = ui_html();
    res.set_content(html.data(), html.size(), "text/html; charset=utf-8");
  });
  svr.Get("/logo.svg", [](const httplib::Request&, httplib::Response& res) {
    auto svg = logo_svg();
    res.set_content(svg.data(), svg.size(), "image/svg+xml");
  });
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) { handle_health(res); });
  svr.Get("/stats", [this](const httplib::Request&, httplib::Response& res) { handle_stats(res); });
  if (opt_.metrics) {
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      auto s = pool_.stats();
      res.set_content(
          metrics_.render({{"nanochat_queue_depth", "requests waiting for a free slot", double(s.queued)},
                           {"nanochat_slots_busy", "slots generating a reply", double(s.slots_total - s.slots_free)},
                           {"nanochat_slots_total", "slots of all workers", double(s.slots_total)}},
                          s.prefix_cache),
          "text/plain; version=0.0.4; charset=utf-8");
    });
  }
  // Every answered request, by endpoint (unknown paths as one label, so a scan cannot grow the metrics) and status.
  svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    static const char* const known[] = {"/",
                                        "/logo.svg",
                                        "/health",
                                        "/stats",
                                        "/metrics",
                                        "/v1/models",
                                        "/chat/completions",
                                        "/v1/chat/completions",
                                        "/v1/completions"};
    std::string path = "other";
    for (const char* k : known)
      if (req.path == k) path = k;
    metrics_.request_done(path, res.status);
  });
  svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json m = {{"id", opt_.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "nanochat"}};
    res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
  });
  // The completions read their bodies themselves: httplib 0.11 caps a body only when it comes with a
  // Content-Length, and would read a chunked one of any size into memory.
  const std::pair<const char*, ChatApi> endpoints[] = {{"/chat/completions", ChatApi::Nanochat},
                                                       {"/v1/chat/completions", ChatApi::OpenAI},
                                                       {"/v1/completions", ChatApi::Completions}};
  for (auto [path, api] : endpoints) {
    svr.Post(path,
             [this, api](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read) {
               std::string body;
               bool too_big = false;
               bool ok = read([&](const char* data, size_t n) {
                 too_big = body.size() + n > kMaxBodyBytes;
                 if (!too_big) body.append(data, n);
                 return !too_big;
               });
               if (!ok || too_big) {
                 too_big = too_big || res.status == 413;  // httplib refused a Content-Length over the cap
                 HttpServer::close_after(res);            // the rest of the body is left unread
                 send_error(res, too_big ? 413 : 400, "invalid_request_error",
                            too_big ? fmt::format("the request body is larger than {} bytes", kMaxBodyBytes)
                                    : std::string("the request body could not be read (bad chunked encoding?)"));
                 return;
               }
               handle_chat(req, body, res, api);
             });
  }
}

void ChatServer::handle_health(httplib::Response& res) {
  auto s = pool_.stats();
  json j = {{"status", "ok"},
            {"ready", ready_ && s.total > 0},
            {"num_gpus", opt_.num_gpus},
            {"available_workers", s.available},
            {"queued", s.queued},
            {"slots_total", s.slots_total},
            {"slots_free", s.slots_free}};
  res.set_content(j.dump(), "application/json");
}

void ChatServer::handle_stats(httplib::Response& res) {
  auto s = pool_.stats();
  json workers = json::array();
  for (auto& w : s.workers)
    workers.push_back({{"gpu_id", w.id}, {"device", w.device}, {"slots", w.slots}, {"busy_slots", w.busy}});
  const PrefixCacheStats& pc = s.prefix_cache;
  json j = {{"total_workers", s.total},
            {"available_workers", s.available},       // idle
            {"busy_workers", s.total - s.available},  // generating at least one reply
            {"slots_total", s.slots_total},
            {"slots_free", s.slots_free},
            {"workers", workers},
            {"queued", s.queued},
            {"max_queue", pool_.max_queue()},
            {"requests",
             {{"total", n_requests_.load()},
              {"completed", n_completed_.load()},
              {"rejected_busy", n_rejected_.load()},
              {"cancelled", n_cancelled_.load()},
              {"dropped_from_queue", s.dropped_from_queue},
              {"failed", n_failed_.load()}}},
            {"prefix_cache",
             {{"lookups", pc.lookups},
              {"hits", pc.hits},
              {"tokens_saved", pc.tokens_saved},
              {"entries", pc.entries},
              {"bytes", pc.bytes},
              {"budget_bytes", pc.budget_bytes}}}};
  res.set_content(j.dump(), "application/json");
}

ChatServer::Reply ChatServer::generate(WorkerPool::Worker& worker, const Job& job, int choice, const Emit& emit,
                                       const std::function<bool()>& client_gone) {
  ChatModel& model = *worker.model;
  const int assistant_end = model.special_id("<|assistant_end|>"), bos = model.special_id("<|bos|>");
  SamplingParams params = job.params;
  params.seed = job.params.seed + uint64_t(choice);  // choice 0 is what n=1 gives
  Reply r;
  Utf8Holdback utf8;
  StopFilter stop(job.stop);
  // Tokens whose text is not all sent yet, with where their text starts and ends in the text given to `stop`
  // (bytes; end kOpen while the token is the start of a character not yet complete).
  struct Pending {
    ReplyToken token;
    size_t start, end;
  };
  constexpr size_t kOpen = SIZE_MAX;
  std::deque<Pending> pending;
  size_t pushed = 0, pushed_code_points = 0, sent = 0;
  // Sends text with the tokens it completes. last: the reply ends here; after a stop string, the tokens that
  // began before it are the reply's (the one that began it included), the rest are dropped.
  auto send = [&](const std::string& text, bool last) {
    sent += text.size();
    r.text += text;
    std::vector<ReplyToken> done;
    auto take = [&] {
      done.push_back(std::move(pending.front().token));
      pending.pop_front();
    };
    if (last && stop.stopped()) {
      while (!pending.empty() && pending.front().start < sent) take();
      pending.clear();
    } else {
      while (!pending.empty() && (last || pending.front().end <= sent)) take();
    }
    r.tokens.insert(r.tokens.end(), done.begin(), done.end());
    return (text.empty() && done.empty()) || emit(text, done);
  };
  std::optional<std::chrono::steady_clock::time_point> first_token;
  auto on_token = [&](int token, const TokenLogprob* lp) {
    if (!first_token) first_token = std::chrono::steady_clock::now();
    if (token == assistant_end || token == bos) {
      r.stopped = true;
      return false;
    }
    r.completion_tokens++;
    if (stopping_ || client_gone()) {
      r.cancelled = true;
      return false;
    }
    std::string bytes = model.decode(std::span<const int>(&token, 1));
    if (lp && job.meta.logprobs) {
      Pending p{{{bytes, lp->logprob}, {}, pushed_code_points}, pushed, kOpen};
      for (const auto& [id, logprob] : lp->top)
        p.token.top.push_back({model.decode(std::span<const int>(&id, 1)), logprob});
      pending.push_back(std::move(p));
    }
    std::string piece = utf8.push(bytes);
    if (piece.empty()) return true;  // the middle of a character: wait for the rest
    pushed += piece.size();
    pushed_code_points += utf8_length(piece);
    for (auto& p : pending)
      if (p.end == kOpen) p.end = pushed;
    std::string out = stop.push(piece);
    if (stop.stopped()) r.stopped = true;
    if (!send(out, stop.stopped())) r.cancelled = true;
    return !r.cancelled && !stop.stopped();
  };
  try {
    if (worker.thread) {
      // One slot: on the worker's own thread; this thread waits meanwhile, so on_token (emit, client_gone) runs
      // there safely.
      worker.thread->run([&] { model.generate(job.prompt, params, on_token); });
    } else {
      // Several slots: the model batches the concurrent calls of its requests itself (chat_model.h).
      model.generate(job.prompt, params, on_token);
    }
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  // Held-back text that did not turn into a stop string is the reply's after all.
  if (!r.cancelled && r.error.empty() && !stop.stopped() && !send(stop.finish(), true)) r.cancelled = true;
  if (first_token) {
    using secs = std::chrono::duration<double>;
    const auto end = std::chrono::steady_clock::now();
    metrics_.generation_done(
        int64_t(job.prompt.size()), r.completion_tokens, secs(*first_token - job.arrived).count(),
        r.completion_tokens > 1 ? secs(end - *first_token).count() / (r.completion_tokens - 1) : -1);
  }
  return r;
}

std::vector<ChatServer::Reply> ChatServer::run_choices(WorkerPool::Lease& lease, const Job& job, const ChoiceEmit& emit,
                                                       const ChoiceDone& done,
                                                       const std::function<bool()>& client_gone) {
  // The lease's k slots run the n choices k at a time, choice i on runner i % k: one runner is this thread, the
  // others threads of their own (a worker of several slots batches them; a worker of one runs them in turn on its
  // thread). The client hears from one choice at a time.
  const int k = std::max(1, std::min(lease.slots(), job.n));
  std::vector<Reply> replies(size_t(job.n));
  std::mutex mu;
  auto run = [&](int first) {
    for (int i = first; i < job.n; i += k) {
      Reply& r = replies[size_t(i)];
      try {
        r = generate(
            lease.worker(), job, i,
            [&](const std::string& text, const std::vector<ReplyToken>& tokens) {
              std::lock_guard<std::mutex> lock(mu);
              return emit(i, text, tokens);
            },
            [&] {
              std::lock_guard<std::mutex> lock(mu);
              return client_gone();
            });
        std::lock_guard<std::mutex> lock(mu);
        done(i, r);
      } catch (const std::exception& e) {  // a failed write: end this runner, never the process
        r.error = e.what();
      }
      if (r.cancelled) break;
    }
  };
  std::vector<std::thread> others;
  for (int t = 1; t < k; t++) others.emplace_back(run, t);
  run(0);
  for (auto& t : others) t.join();
  auto any = [&](auto pred) { return std::any_of(replies.begin(), replies.end(), pred); };
  if (any([](const Reply& r) { return r.cancelled; }))
    n_cancelled_++;
  else if (any([](const Reply& r) { return !r.error.empty(); }))
    n_failed_++;
  else
    n_completed_++;
  return replies;
}

void ChatServer::handle_chat(const httplib::Request& req, const std::string& body, httplib::Response& res,
                             ChatApi api) {
  n_requests_++;
  try {
    const ChatModel* tokenizer = pool_.any_model();
    if (!ready_ || !tokenizer)
      throw HttpError(503, "unavailable_error", "the model is still loading; retry in a moment");
    ChatRequest cr = parse_chat_request(body, req.get_header_value("Content-Type"), api);
    auto job = std::make_shared<Job>();
    job->prompt = api == ChatApi::Completions ? build_completion_prompt(*tokenizer, cr.prompt)
                                              : build_prompt(*tokenizer, cr.messages);
    job->params.temperature = cr.temperature.value_or(opt_.temperature);
    job->params.top_k = cr.top_k.value_or(opt_.top_k);
    // A request that names max_tokens must fit in the context with it (else 400); one that does not gets the
    // server's default, cut to the room the prompt leaves (a small model's context may be shorter than it).
    const int room = tokenizer->sequence_len() - int(std::min<size_t>(job->prompt.size(), INT32_MAX));
    job->params.max_tokens = cr.max_tokens ? *cr.max_tokens : std::max(1, std::min(opt_.max_tokens, room));
    job->params.seed = cr.seed.value_or(random_seed());
    job->params.top_logprobs = cr.top_logprobs;
    job->api = api;
    job->include_usage = cr.include_usage;
    job->n = cr.n;
    job->stop = cr.stop;
    job->meta.api = api;
    job->meta.id = (api == ChatApi::Completions ? "cmpl-" : "chatcmpl-") + random_hex(24);
    job->meta.model = opt_.model_name;
    job->meta.created = int64_t(std::time(nullptr));
    job->meta.logprobs = cr.top_logprobs >= 0;
    check_token_budget(job->prompt.size(), job->params.max_tokens, tokenizer->sequence_len());
    auto ticket = pool_.try_enqueue();
    if (!ticket) {
      n_rejected_++;
      auto s = pool_.stats();
      throw HttpError(429, "rate_limit_error",
                      fmt::format("the server is busy: all {} slots of its {} workers are generating and {} requests "
                                  "are waiting; retry in a moment",
                                  s.slots_total, s.total, s.queued));
    }
    log(std::string(20, '='));
    if (api == ChatApi::Completions) log("[PROMPT]: " + cr.prompt);
    for (const auto& m : cr.messages) {
      std::string role = m.role;
      for (auto& c : role) c = char(std::toupper((unsigned char)c));
      log("[" + role + "]: " + m.content);
    }
    log(std::string(20, '-'));

    if (api != ChatApi::Nanochat && !cr.stream) {
      reply_json(*job, std::move(ticket), req, res);
      return;
    }
    // Streaming: headers go out now; the provider waits for a free slot (watching the client) and streams.
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider("text/event-stream", [this, job, ticket](size_t, httplib::DataSink& sink) mutable {
      if (!ticket) return false;  // called once: a reply ends with sink.done() or false
      try {
        return reply_stream(*job, std::move(ticket), sink);
      } catch (const std::exception& e) {  // never let an exception escape into httplib's writer
        log(std::string("internal error while streaming: ") + e.what());
        return false;
      }
    });
  } catch (const HttpError& e) {
    send_error(res, e.status, e.type, e.what());
  }
}

json ChatServer::usage(const Job& job, const std::vector<Reply>& replies) const {
  int p = int(job.prompt.size()), c = 0;
  for (const auto& r : replies) c += r.completion_tokens;
  return {{"prompt_tokens", p}, {"completion_tokens", c}, {"total_tokens", p + c}};
}

void ChatServer::log_replies(int gpu, const std::vector<Reply>& replies) {
  for (size_t i = 0; i < replies.size(); i++)
    log(fmt::format("[ASSISTANT] (GPU {}){}{}: {}", gpu, replies.size() > 1 ? fmt::format(" [{}]", i) : "",
                    replies[i].cancelled ? " (cancelled)" : "", replies[i].text));
  log(std::string(20, '='));
}

void ChatServer::reply_json(const Job& job, std::shared_ptr<WorkerPool::Ticket> ticket, const httplib::Request& req,
                            httplib::Response& res) {
  // Waits for a slot on this connection's thread, has it generate, then answers with one JSON object. The
  // connection's socket is watched while queued and before every token, as for a stream: a client that leaves
  // frees its slot at once.
  const int fd = HttpServer::current_socket();
  auto client_gone = [fd] { return peer_gone(fd); };
  auto lease = pool_.wait(
      *ticket, [&] { return stopping_ || client_gone(); }, job.n);
  ticket.reset();
  if (!lease) {
    if (stopping_) throw HttpError(503, "unavailable_error", "the server is shutting down");
    throw HttpError(499, "client_closed_request", "the client closed the connection while the request was queued");
  }
  std::vector<Reply> replies = run_choices(
      *lease, job, [](int, const std::string&, const std::vector<ReplyToken>&) { return true; },
      [](int, const Reply&) {}, client_gone);
  int gpu = lease->worker().id;
  lease.reset();
  log_replies(gpu, replies);
  std::vector<ReplyChoice> choices;
  for (const auto& r : replies) {
    if (!r.error.empty()) throw HttpError(500, "server_error", "generation failed: " + r.error);
    if (r.cancelled && stopping_) throw HttpError(503, "unavailable_error", "the server is shutting down");
    if (r.cancelled) throw HttpError(499, "client_closed_request", "the client closed the connection");
    choices.push_back({r.text, r.tokens, r.finish_reason()});
  }
  res.set_content(
      reply_json_body(job.meta, choices, usage(job, replies)).dump(-1, ' ', false, json::error_handler_t::replace),
      "application/json");
}

bool ChatServer::reply_stream(const Job& job, std::shared_ptr<WorkerPool::Ticket> ticket, httplib::DataSink& sink) {
  // is_writable() is false once the client has hung up (httplib peeks the socket), so it is checked while queued
  // and before every token: a reply stops within one decode step of its client leaving.
  auto client_gone = [&] { return !sink.is_writable(); };
  auto lease = pool_.wait(
      *ticket, [&] { return stopping_ || client_gone(); }, job.n);
  ticket.reset();
  if (!lease) return false;  // the client left while queued (so it never ran), or shutdown
  const int gpu = lease->worker().id;
  const bool openai = job.api != ChatApi::Nanochat;
  auto chunk = [&](int i, const std::string& text, const std::vector<ReplyToken>& tokens, json finish_reason,
                   bool role = false) {  // an OpenAI chunk event
    return sse_event(reply_chunk(job.meta, i, text, tokens, finish_reason, role)
                         .dump(-1, ' ', false, json::error_handler_t::replace));
  };
  auto write = [&](const std::string& event) { return sink.write(event.data(), event.size()); };  // one write
  if (job.api == ChatApi::OpenAI)
    for (int i = 0; i < job.n; i++)
      if (!write(chunk(i, "", {}, nullptr, true))) return false;
  std::vector<Reply> replies = run_choices(
      *lease, job,
      [&](int i, const std::string& text, const std::vector<ReplyToken>& tokens) {
        return write(openai ? chunk(i, text, tokens, nullptr) : sse_token_event(text, gpu));
      },
      [&](int i, const Reply& r) {  // each choice's last chunk as soon as it ends
        if (openai && !r.cancelled && r.error.empty()) write(chunk(i, "", {}, r.finish_reason()));
      },
      client_gone);
  lease.reset();  // back in the pool before the last bytes go out
  log_replies(gpu, replies);
  for (const auto& r : replies)
    if (r.cancelled) return false;
  for (const auto& r : replies) {
    if (r.error.empty()) continue;
    std::string msg = sanitize_utf8("generation failed: " + r.error);
    if (openai)
      write(sse_event(json{{"error", {{"message", msg}, {"type", "server_error"}, {"code", 500}}}}.dump()));
    else
      write(sse_error_event(msg));
    break;
  }
  if (openai && job.include_usage) write(sse_event(usage_chunk(job.meta, usage(job, replies)).dump()));
  write(openai ? sse_event("[DONE]") : sse_done_event());
  sink.done();
  return true;
}

int ChatServer::start() {
  int port = opt_.port;
  if (port == 0) {
    port = svr_->bind_to_any_port(opt_.host);
    if (port < 0) fail("cannot bind {} on any port", opt_.host);
  } else if (!svr_->bind_to_port(opt_.host, port)) {
    fail("cannot listen on {}:{} (in use, or not an address of this machine); pick another with --port/--host",
         opt_.host, port);
  }
  port_ = port;
  static_cast<HttpServer&>(*svr_).raise_backlog();
  thread_ = std::thread([this] {
    svr_->listen_after_bind();
    listener_ended_ = true;
  });
  // httplib's stop() does nothing until listening has begun: wait for that, so that a stop() right after start()
  // (a model that fails to load at once) is not lost, leaving the listener in accept() and join() waiting forever.
  while (!svr_->is_running() && !listener_ended_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port;
}

void ChatServer::stop() {
  stopping_ = true;
  pool_.shutdown();
  svr_->stop();
}

void ChatServer::join() {
  if (thread_.joinable()) thread_.join();
}

sigset_t block_shutdown_signals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return sigs;
}

int run_chat_server(const ChatServerOptions& opt, const std::function<std::unique_ptr<ChatModel>(int)>& load_replica) {
  std::printf("Starting NanoChat Web Server\n");
  std::printf("Temperature: %g, Top-k: %d, Max tokens: %d\n", opt.temperature, opt.top_k, opt.max_tokens);
  std::fflush(stdout);
  // SIGINT/SIGTERM are taken by a thread of ours (blocked everywhere else, inherited by httplib's threads).
  sigset_t sigs = block_shutdown_signals();

  ChatServer server(opt);
  int port = server.start();
  std::atomic<bool> done{false};
  std::thread signals([&] {
    timespec tick{0, 100 * 1000 * 1000};
    while (!done) {
      if (sigtimedwait(&sigs, nullptr, &tick) > 0) {
        std::printf("\nShutting down\n");
        std::fflush(stdout);
        server.stop();
        return;
      }
    }
  });
  struct Cleanup {
    std::atomic<bool>& done;
    std::thread& t;
    ~Cleanup() {
      done = true;
      if (t.joinable()) t.join();
    }
  } cleanup{done, signals};

  std::printf("Listening on http://%s:%d (requests get 503 until the models are loaded)\n", opt.host.c_str(), port);
  std::printf("Initializing worker pool with %d workers...\n", opt.num_gpus);
  std::fflush(stdout);
  for (int i = 0; i < opt.num_gpus; i++) {
    try {
      server.add_replica(load_replica(i));
    } catch (...) {
      server.stop();
      throw;
    }
  }
  server.set_ready();
  std::printf("All %d workers initialized!\n", opt.num_gpus);
  std::printf("Server ready at http://localhost:%d%s\n", port,
              opt.host == "127.0.0.1" ? "" : fmt::format(" (bound to {})", opt.host).c_str());
  std::fflush(stdout);
  server.join();
  return 0;
}

}  // namespace nanochat
