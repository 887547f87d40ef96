// mock_chat_model: see mock_chat_model.h.
#include "tests/http/mock_chat_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace nanochat {

namespace {
const char* const kSpecials[] = {"<|bos|>",           "<|user_start|>",   "<|user_end|>",   "<|assistant_start|>",
                                 "<|assistant_end|>", "<|python_start|>", "<|python_end|>", "<|output_start|>",
                                 "<|output_end|>"};
constexpr int kNumSpecials = 9;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

std::vector<int> MockChatModel::encode(std::string_view text) const {
  std::vector<int> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

std::string MockChatModel::decode(std::span<const int> ids) const {
  std::string s;
  for (int id : ids) {
    if (id >= 0 && id < 256)
      s += char(id);
    else if (id >= 256 && id < 256 + kNumSpecials)
      s += kSpecials[id - 256];
    else
      throw std::out_of_range("mock: token id out of range");
  }
  return s;
}

int MockChatModel::special_id(std::string_view name) const {
  for (int i = 0; i < kNumSpecials; i++)
    if (name == kSpecials[i]) return 256 + i;
  throw std::invalid_argument("mock: unknown special token " + std::string(name));
}

std::string MockChatModel::reply_for(std::string_view last_user_message, const SamplingParams& params) {
  std::string reply = "Hello \xF0\x9F\xA6\x99 \xE4\xBD\xA0\xE5\xA5\xBD! You said: " + std::string(last_user_message);
  if (params.temperature > 0) reply += " #" + std::to_string(splitmix64(params.seed) % 100000);
  return reply;
}

TokenLogprob MockChatModel::mock_logprob(int token, int top) {
  TokenLogprob lp{float(std::log(0.5)), {}};
  for (int j = 0; j < top; j++) lp.top.emplace_back(j == 0 ? token : (token + j) % 256, float(std::log(0.5) * (j + 1)));
  return lp;
}

void MockChatModel::generate(const std::vector<int>& prompt, const SamplingParams& params,
                             const TokenCallback& on_token) {
  const int bos = special_id("<|bos|>"), user_start = special_id("<|user_start|>");
  const int user_end = special_id("<|user_end|>"), assistant_start = special_id("<|assistant_start|>");
  if (int(prompt.size()) + params.max_tokens > opt_.sequence_len)
    throw std::length_error("mock: prompt + max_tokens exceeds the sequence length");
  const bool plain = prompt.size() >= 2 && prompt.front() == bos &&
                     std::all_of(prompt.begin() + 1, prompt.end(), [](int t) { return t < 256; });
  if (plain) {  // a base-model completion of the text after <|bos|>
    std::string text = decode(std::span<const int>(prompt.data() + 1, prompt.size() - 1));
    return reply(text, text.rfind("forever", 0) == 0, bos, params, on_token);
  }
  if (prompt.size() < 2 || prompt.front() != bos || prompt.back() != assistant_start)
    throw std::invalid_argument("mock: the prompt must start with <|bos|> and end with <|assistant_start|>");
  // The last user message: between the last <|user_start|> and the <|user_end|> after it.
  size_t start = prompt.size();
  for (size_t i = prompt.size(); i-- > 0;)
    if (prompt[i] == user_start) {
      start = i + 1;
      break;
    }
  size_t end = start;
  while (end < prompt.size() && prompt[end] != user_end) end++;
  if (start >= prompt.size() || end >= prompt.size())
    throw std::invalid_argument("mock: no user message in the prompt");
  std::string said = decode(std::span<const int>(prompt.data() + start, end - start));
  reply(said, said.rfind("forever", 0) == 0, special_id("<|assistant_end|>"), params, on_token);
}

void MockChatModel::reply(const std::string& said, bool forever, int end_token, const SamplingParams& params,
                          const TokenCallback& on_token) {
  // Count this call among those running on the replica for as long as it runs (however it returns).
  const int now = ++running_;
  struct Leave {
    std::atomic<int>& n;
    ~Leave() { n--; }
  } leave{running_};
  if (now > opt_.max_batch)
    throw std::logic_error("mock: " + std::to_string(now) + " generate() calls at once on a replica of max_batch " +
                           std::to_string(opt_.max_batch));

  const int call = ++*opt_.calls;
  const std::string script = forever ? std::string("\xF0\x9F\xA6\x99 llama ") : reply_for(said, params);
  for (int n = 0; n < params.max_tokens; n++) {
    if (opt_.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opt_.delay_ms));
    if (n == 3 && std::find(opt_.fail_on.begin(), opt_.fail_on.end(), call) != opt_.fail_on.end())
      throw std::runtime_error("mock: injected failure in forward");
    int token;
    if (forever)
      token = (unsigned char)script[n % script.size()];
    else
      token = size_t(n) < script.size() ? (unsigned char)script[n] : end_token;
    TokenLogprob lp;
    if (params.top_logprobs >= 0) lp = mock_logprob(token, params.top_logprobs);
    if (!on_token(token, params.top_logprobs >= 0 ? &lp : nullptr)) return;
    if (token == end_token) return;  // a real engine would keep stepping; callers stop here anyway
  }
}

}  // namespace nanochat
