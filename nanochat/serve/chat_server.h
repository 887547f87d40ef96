// chat_server: nanochat's web chat server (scripts/chat_web.py) on cpp-httplib, independent of how models are loaded.
//
//   GET  /                     the chat UI (web/ui.html, embedded in the binary at build time)
//   GET  /logo.svg             its icon
//   POST /chat/completions     nanochat's streaming API: data: {"token": "...", "gpu": 0} ... data: {"done": true}
//   POST /v1/chat/completions  OpenAI-compatible (stream: chunks then data: [DONE]; else one JSON with usage), with
//                              n, stop, seed, logprobs/top_logprobs, max_completion_tokens (chat_request.h)
//   POST /v1/completions       OpenAI's legacy completions: a plain prompt (<|bos|> + text, no chat template), a
//                              base-model reply ending at <|bos|> or max_tokens; object "text_completion"
//   GET  /v1/models            the one model served
//   GET  /health, GET /stats   worker pool state (/health is always public)
//   GET  /metrics              with --metrics: Prometheus text (requests by status, tokens, TTFT and per-token
//                              histograms, queue depth, busy slots; nanochat/serve/metrics.h); needs --api-key's key
//
// Serving rules beyond nanochat's: a worker serves as many requests at once as its model's max_batch() (its slots:
// continuous batching, --max-batch; 1 = one at a time as nanochat); requests wait in a bounded FIFO queue for a
// free slot (429 at once when every slot is busy and the queue is full), 503 until the models are loaded, 413 over
// 1 MB, 400 for every bad input (JSON {"error": {...}}), prompt + max_tokens must fit the model's context (a
// request without max_tokens gets the default cut to fit), a reply — streamed or not — stops within one decode
// step of its client leaving (a queued request whose client leaves never runs), optional Bearer --api-key, binds
// 127.0.0.1 unless --host. Requests from a browser page of another origin get 403 unless --cors-origin allows it,
// a Host header that does not name this server (DNS rebinding) 421, a POST without a length 411 at once;
// pipelined requests are answered in order (http_server.h); logged text has its control characters escaped
// (http_policy.h). A worker of one slot runs its model on a thread of its own; a worker of several slots
// is called from the connection threads of its requests at once and batches them itself (chat_model.h). HTTP
// connections are served by httplib's thread pool and tokenize there (the tokenizer is read-only and
// thread-safe). /health and /stats count workers (available = idle, busy = generating at least one reply) and
// slots (slots_total, slots_free).
//
// n choices: a request for n takes min(n, the largest worker's slots) slots of ONE worker, waiting at the front of
// the queue until one worker has that many free, and runs its choices that many at a time, choice i seeded with
// seed + i (so n=1 is exactly the old reply). On a worker of several slots its choices are decoded together in one
// batch (the engine's continuous batching: n choices cost little more than one on a CPU); on a worker of one slot
// they run in turn on its thread. One worker rather than slots spread over several, because the choices are one
// reply: they stream on one connection and should finish about together, and asking for slots of one worker keeps
// the pool's accounting (and its 429s) in whole requests. Stop strings end a choice before the string; a stream
// holds back text that may be the start of one (stop_text.h).
//
// Use: fill ChatServerOptions from flags (add_chat_web_flags), then run_chat_server(options, load_replica), where
// load_replica(i) builds worker i's model (e.g. on cuda:i). Tests may drive a ChatServer directly.
// Not covered: loading checkpoints and the engine itself (chat_model.h is the boundary).
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nanochat/serve/chat_model.h"
#include "nanochat/serve/chat_request.h"
#include "nanochat/serve/openai_format.h"
#include "nanochat/serve/metrics.h"
#include "nanochat/cli/flags.h"
#include "nanochat/serve/worker_pool.h"

namespace httplib {
class DataSink;
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace nanochat {

struct ChatServerOptions {
  // nanochat's flags (scripts/chat_web.py's argparse flags); the model flags are for load_replica.
  int num_gpus = 1;  // workers, one model replica each
  std::string source = "sft";
  double temperature = 0.8;  // defaults when a request leaves them out
  int top_k = 50;
  int max_tokens = 512;
  std::optional<std::string> model_tag;
  std::optional<int> step;
  int port = 8000;
  std::string device_type;
  std::string host = "127.0.0.1";  // nanochat binds 0.0.0.0; we serve only this machine unless told otherwise
  // Serving limits.
  int max_queue = 64;  // requests waiting for a free slot before 429
  // Conversations one worker decodes together (continuous batching); 1 = one at a time. For load_replica to give
  // its model: the server sizes each worker by its model's max_batch(), and reads this only to size its pool of
  // connection threads.
  int max_batch = 8;
  // MiB per worker for the KV rows of recent conversations, which a chat's next turn reuses instead of prefilling
  // the conversation again (0 = off). For load_replica to give its model.
  int prefix_cache_mb = 512;
  int read_timeout = 30;  // seconds a connection may sit idle while sending a request
  std::string api_key;    // non-empty: require "Authorization: Bearer <key>" (not for /, /logo.svg, /health)
  // Pages of other origins allowed to call the API from a browser ("*": any, without credentials); the server's
  // own page always is. Others get 403.
  std::vector<std::string> cors_origins;
  // DNS names besides localhost and the --host value that the Host header may carry (IP addresses always may).
  std::vector<std::string> allowed_hosts;
  std::string model_name = "nanochat";  // the id /v1/models reports
  bool metrics = false;                 // serve GET /metrics
};

// The flags of scripts/chat_web.py's argparse flags plus --max-batch, --prefix-cache-mb, --max-queue, --read-timeout,
// --api-key (also $NANOCHAT_API_KEY), --metrics, --cors-origin, --allowed-host. An empty --host is refused.
void add_chat_web_flags(Flags& app, ChatServerOptions& opt);

inline constexpr size_t kMaxBodyBytes = 1 << 20;  // larger request bodies get 413 (chunked ones too)

class ChatServer {
 public:
  explicit ChatServer(ChatServerOptions opt);
  ~ChatServer();
  ChatServer(const ChatServer&) = delete;

  // Binds host:port (port 0 picks a free one) and starts serving on a background thread; returns the port.
  // Completions answer 503 until set_ready(). Fails with an Error if the address cannot be bound.
  int start();
  void add_replica(std::unique_ptr<ChatModel> model) { pool_.add(std::move(model)); }
  void set_ready() { ready_ = true; }
  // Stops accepting and cancels queued and running requests; returns at once (any thread may call it).
  void stop();
  // Blocks until the server thread has ended (after stop()); call it from the thread that called start().
  void join();

 private:
  struct Job;
  struct Reply;
  void routes();
  void handle_chat(const httplib::Request& req, const std::string& body, httplib::Response& res, ChatApi api);
  void handle_health(httplib::Response& res);
  void handle_stats(httplib::Response& res);
  void reply_json(const Job& job, std::shared_ptr<WorkerPool::Ticket> ticket, const httplib::Request& req,
                  httplib::Response& res);
  bool reply_stream(const Job& job, std::shared_ptr<WorkerPool::Ticket> ticket, httplib::DataSink& sink);
  // emit(text, tokens) gets each piece of the reply that is safe to send (complete UTF-8, no part of a stop
  // string) and, with logprobs, the tokens it completes; false = client gone.
  using Emit = std::function<bool(const std::string& text, const std::vector<ReplyToken>& tokens)>;
  using ChoiceEmit = std::function<bool(int choice, const std::string& text, const std::vector<ReplyToken>& tokens)>;
  using ChoiceDone = std::function<void(int choice, const Reply& reply)>;
  // Runs the model for one choice (seed + choice) on a leased slot of a worker.
  Reply generate(WorkerPool::Worker& worker, const Job& job, int choice, const Emit& emit,
                 const std::function<bool()>& client_gone);
  // Runs the job's n choices on the lease's slots (see chat_server.cpp); done(i, reply) as choice i ends. Calls to
  // emit, done and client_gone never overlap.
  std::vector<Reply> run_choices(WorkerPool::Lease& lease, const Job& job, const ChoiceEmit& emit,
                                 const ChoiceDone& done, const std::function<bool()>& client_gone);
  nlohmann::json usage(const Job& job, const std::vector<Reply>& replies) const;
  void log_replies(int gpu, const std::vector<Reply>& replies);
  void log(const std::string& line);

  ChatServerOptions opt_;
  WorkerPool pool_;
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  std::atomic<bool> ready_{false}, stopping_{false}, listener_ended_{false};
  int port_ = 0;  // the bound port (the Host header must carry it)
  std::atomic<uint64_t> n_requests_{0}, n_rejected_{0}, n_cancelled_{0}, n_failed_{0}, n_completed_{0};
  ServerMetrics metrics_;
};

// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it starts later) and ignores SIGPIPE.
// Call it first thing, before anything (OpenMP, libtorch) starts threads: a thread left unblocked would take
// the signal and die of it instead of shutting the server down. run_chat_server calls it too.
sigset_t block_shutdown_signals();

// Prints nanochat's startup lines, serves at once (503 while loading), loads opt.num_gpus replicas with
// load_replica(i), prints "Server ready at http://localhost:<port>", and serves until SIGINT/SIGTERM.
// Returns the exit code.
int run_chat_server(const ChatServerOptions& opt, const std::function<std::unique_ptr<ChatModel>(int)>& load_replica);

}  // namespace nanochat
