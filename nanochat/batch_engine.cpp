// batch_engine: see batch_engine.h.
#include "nanochat/batch_engine.h"

#include <atomic>
#include <cstdio>
#include <utility>

#include "nanochat/common.h"
#include "nanochat/compute.h"

namespace nanochat {

// One conversation. The decode thread owns the generation state; tokens reach the caller through `out`.
struct BatchEngine::Request {
  Request(std::vector<int32_t> p, int64_t budget, double temperature, int64_t top_k, uint64_t seed,
          const Tokenizer& tok)
      : prompt(std::move(p)),
        budget(budget),
        temperature(temperature),
        top_k(top_k),
        gen(make_generator(seed)),
        state(tok) {}
  // Decode thread only.
  std::vector<int32_t> prompt;
  std::vector<int32_t> reply;  // the tokens handed out so far (for the prefix cache)
  int64_t budget, generated = 0;
  double temperature;
  int64_t top_k;
  torch::Generator gen;
  RowState state;
  std::unique_ptr<KVCache> prefill;  // while joining: the prompt's batch-1 cache, filled a chunk at a time
  torch::Tensor logits;              // [V] on the CPU: the next token's logits
  // Shared with the caller.
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::condition_variable cv;
  std::deque<int32_t> out;                 // tokens not yet handed to the caller
  int top_logprobs = -1;                   // >= 0: each token's log-probabilities go to out_logprobs too
  std::deque<TokenLogprobs> out_logprobs;  // in step with out
  bool finished = false;                   // no more tokens will come (and the row is gone from the batch)
  std::string error;
};

BatchEngine::BatchEngine(GPT model, const Tokenizer& tokenizer, int max_batch, int64_t prefill_chunk,
                         int64_t prefix_cache_bytes)
    : model_(std::move(model)),
      tokenizer_(tokenizer),
      cache_(make_kv_cache(model_, std::max(1, max_batch), model_->config.sequence_len)),
      prefill_chunk_(std::max<int64_t>(1, prefill_chunk)),
      prefix_cache_(prefix_cache_bytes),
      thread_([this] { loop(); }) {}

BatchEngine::~BatchEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int BatchEngine::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_active_;
}

int64_t BatchEngine::steps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_steps_;
}

void BatchEngine::generate(const std::vector<int32_t>& prompt, int max_tokens, double temperature, int64_t top_k,
                           uint64_t seed, const std::function<bool(int32_t)>& on_token) {
  generate(prompt, max_tokens, temperature, top_k, seed, -1,
           [&](int32_t token, const TokenLogprobs*) { return on_token(token); });
}

void BatchEngine::generate(const std::vector<int32_t>& prompt, int max_tokens, double temperature, int64_t top_k,
                           uint64_t seed, int top_logprobs,
                           const std::function<bool(int32_t, const TokenLogprobs*)>& on_token) {
  if (prompt.empty()) fail("generate needs at least one prompt token");
  if (!(temperature >= 0.0)) fail("temperature must be >= 0, got {}", temperature);
  const int64_t T = int64_t(prompt.size()), context = cache_.max_seq_len();
  const int64_t budget = max_tokens >= 0 ? max_tokens : std::max<int64_t>(0, context - T);
  if (T + budget > context)
    fail(
        "the prompt ({} tokens) plus max_tokens ({}) exceed the model's context of {} tokens; shorten the prompt "
        "or ask for fewer tokens",
        T, budget, context);
  auto r = std::make_shared<Request>(prompt, budget, temperature, top_k, seed, tokenizer_);
  r->top_logprobs = top_logprobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (quit_) fail("the engine is shutting down");
    pending_.push_back(r);
  }
  cv_.notify_all();
  // Stopping early: the decode thread drops the row at its next step; wait for that, so that when we return the
  // conversation's row is free for the next one.
  auto stop = [&] {
    r->cancelled = true;
    std::unique_lock<std::mutex> lock(r->mu);
    r->cv.wait(lock, [&] { return r->finished; });
  };
  std::unique_lock<std::mutex> lock(r->mu);
  for (;;) {
    r->cv.wait(lock, [&] { return !r->out.empty() || r->finished; });
    std::deque<int32_t> tokens = std::exchange(r->out, {});
    std::deque<TokenLogprobs> logprobs = std::exchange(r->out_logprobs, {});
    const bool finished = r->finished;
    lock.unlock();
    for (size_t i = 0; i < tokens.size(); ++i) {
      const int32_t t = tokens[i];
      bool go_on = false;
      try {
        go_on = on_token(t, i < logprobs.size() ? &logprobs[i] : nullptr);
      } catch (...) {
        stop();
        throw;
      }
      if (!go_on) return stop();
    }
    lock.lock();
    if (finished && r->out.empty()) break;
  }
  if (!r->error.empty()) throw Error(r->error);
}

void BatchEngine::finish(Request& r, const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.finished = true;
    r.error = error;
  }
  r.cv.notify_all();
}

void BatchEngine::set_active() {
  std::lock_guard<std::mutex> lock(mu_);
  n_active_ = int(rows_.size());
}

void BatchEngine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return quit_ || !rows_.empty() || !joining_.empty() || !pending_.empty(); });
      if (quit_) break;
      while (!pending_.empty() && rows_.size() + joining_.size() < size_t(cache_.batch_size())) {
        joining_.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    prefill_some();
    set_active();
    if (!rows_.empty()) step();
  }
  std::lock_guard<std::mutex> lock(mu_);
  const std::string bye = "the engine is shutting down";
  for (auto& r : rows_) finish(*r, bye);
  for (auto& r : joining_) finish(*r, bye);
  for (auto& r : pending_) finish(*r, bye);
  rows_.clear();
  joining_.clear();
  pending_.clear();
}

void BatchEngine::start_prefill(Request& r) {
  const int64_t T = int64_t(r.prompt.size());
  r.prefill = std::make_unique<KVCache>(make_kv_cache(model_, 1, T));
  // At least the prompt's last token runs, for the next token's logits.
  PrefixCache::Hit hit = prefix_cache_.lookup(r.prompt, T - 1);
  if (hit.length == 0) return;
  KVCache& c = *r.prefill;
  c.k_cache.select(1, 0).narrow(1, 0, hit.length).copy_(hit.k);
  c.v_cache.select(1, 0).narrow(1, 0, hit.length).copy_(hit.v);
  c.positions[0] = hit.length;
  // The smear's previous embedding: the normalized embedding of the last reused token, as GPT::forward makes it.
  torch::Tensor last =
      torch::tensor({int64_t(r.prompt[size_t(hit.length - 1)])}, torch::kInt64).view({1, 1}).to(model_->get_device());
  c.prev_embedding = rms_norm(model_->wte(last).to(compute_dtype()));
}

void BatchEngine::remember_row(const Request& r, int64_t row) {
  if (!prefix_cache_.enabled()) return;
  // The row holds the prompt and every handed-out token but the last (it is run by the next step, which a finished
  // row does not take).
  const int64_t n = cache_.row_pos(row);
  std::vector<int32_t> tokens = r.prompt;
  tokens.insert(tokens.end(), r.reply.begin(), r.reply.end());
  try {
    prefix_cache_.insert(tokens, cache_.k_cache.select(1, row).narrow(1, 0, n),
                         cache_.v_cache.select(1, row).narrow(1, 0, n));
  } catch (const std::exception& e) {  // a failed copy (out of memory) costs only the cache entry
    std::fprintf(stderr, "prefix cache: could not store a conversation: %s\n", e.what());
  }
}

void BatchEngine::prefill_some() {
  // Prompts run in chunks of prefill_chunk_ tokens, oldest first, about one chunk's worth per decode step while
  // other conversations are decoding (so a long prompt delays their next token by one chunk, not by all of it),
  // and all at once while nobody waits. Chunk boundaries are fixed (0, C, 2C, ...; a prompt continuing a cached
  // prefix first runs up to the next boundary), so a reply never depends on what else the engine was doing.
  int64_t done = 0;
  while (!joining_.empty() && (rows_.empty() || done < prefill_chunk_)) {
    std::shared_ptr<Request> r = joining_.front();
    if (r->budget == 0 || r->cancelled) {
      joining_.pop_front();
      finish(*r);
      continue;
    }
    try {
      torch::NoGradGuard no_grad;
      const int64_t T = int64_t(r->prompt.size());
      if (!r->prefill) start_prefill(*r);
      const int64_t start = r->prefill->get_pos();
      const int64_t n = std::min(prefill_chunk_ - start % prefill_chunk_, T - start);
      std::vector<int64_t> ids(r->prompt.begin() + start, r->prompt.begin() + start + n);
      torch::Tensor idx = torch::tensor(ids, torch::kInt64).view({1, n}).to(model_->get_device());
      torch::Tensor logits = model_->forward_last(idx, *r->prefill);
      done += n;
      if (start + n < T) continue;
      // The whole prompt is in: the conversation takes the next free row.
      r->logits = logits.to(torch::kCPU)[0];
      cache_.load_row(int64_t(rows_.size()), *r->prefill);
      r->prefill.reset();
      rows_.push_back(r);
      // The prompt alone, so that conversations arriving meanwhile with the same start (a system prompt) share it.
      remember_row(*r, int64_t(rows_.size()) - 1);
    } catch (const std::exception& e) {
      finish(*r, std::string("prefill failed: ") + e.what());
    }
    joining_.pop_front();
  }
}

void BatchEngine::step() {
  // Sample and hand out each row's next token, as Engine::generate's loop does for one row.
  std::vector<int64_t> next(rows_.size());
  std::vector<bool> done(rows_.size());
  for (size_t b = 0; b < rows_.size(); ++b) {
    Request& r = *rows_[b];
    const int64_t sampled = sample_next_token(r.logits.unsqueeze(0), r.gen, r.temperature, r.top_k).item<int64_t>();
    const int32_t token = r.state.step(int32_t(sampled)).first;
    r.reply.push_back(token);
    TokenLogprobs lp;
    if (r.top_logprobs >= 0) lp = token_logprobs(r.logits, token, r.top_logprobs);  // only when asked: a pass over V
    {
      std::lock_guard<std::mutex> lock(r.mu);
      r.out.push_back(token);
      if (r.top_logprobs >= 0) r.out_logprobs.push_back(std::move(lp));
    }
    r.cv.notify_all();
    next[b] = token;
    done[b] = r.state.completed() || ++r.generated >= r.budget || r.cancelled;
  }
  // Drop finished rows, moving the last live row into each hole so that rows [0, n) stay the live ones.
  std::vector<std::shared_ptr<Request>> ended;
  for (size_t b = rows_.size(); b-- > 0;) {
    if (!done[b]) continue;
    ended.push_back(rows_[b]);
    remember_row(*rows_[b], int64_t(b));
    const size_t last = rows_.size() - 1;
    if (b != last) {
      cache_.move_row(int64_t(last), int64_t(b));
      rows_[b] = std::move(rows_[last]);
      next[b] = next[last];
    }
    rows_.pop_back();
    cache_.positions[last] = 0;
  }
  set_active();
  for (auto& r : ended) finish(*r);  // after the count: a caller that returns sees its row gone
  if (rows_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n_steps_++;
  }
  try {
    torch::NoGradGuard no_grad;
    const int64_t n = int64_t(rows_.size());
    next.resize(size_t(n));
    torch::Tensor idx = torch::tensor(next, torch::kInt64).view({n, 1}).to(model_->get_device());
    torch::Tensor logits = model_->forward_last(idx, cache_).to(torch::kCPU);
    for (int64_t b = 0; b < n; ++b) rows_[size_t(b)]->logits = logits[b];
  } catch (const std::exception& e) {
    // A failed step leaves the rows' caches in an unknown state: end every conversation in the batch.
    std::vector<std::shared_ptr<Request>> ended = std::exchange(rows_, {});
    cache_.reset();
    set_active();
    for (auto& r : ended) finish(*r, std::string("decoding failed: ") + e.what());
  }
}

}  // namespace nanochat
