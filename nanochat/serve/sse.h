// sse: the text side of streaming a reply as Server-Sent Events.
//   Utf8Holdback  turns a stream of token bytes into complete UTF-8 text: a character split across tokens
//                 (🦙 = F0 9F A6 99 as four byte tokens) is held back until it is whole, so no event ever carries
//                 half a character; invalid bytes become U+FFFD, one per maximal ill-formed subpart (Python's
//                 errors="replace"). This is nanochat's "emit only when the decoded text does not end in U+FFFD".
//   sse_*         one event = "data: <payload>\n\n", written by the server in a single write.
// nanochat's events keep its exact JSON ({"token": "...", "gpu": 0} with ", " and ": " separators, UTF-8 kept);
// the OpenAI chunks are built by the server. Not covered: HTTP itself (chat_server.h writes the events).
#pragma once

#include <string>
#include <string_view>

namespace nanochat {

class Utf8Holdback {
 public:
  // Adds bytes; returns the text that is now complete (possibly empty), valid UTF-8.
  std::string push(std::string_view bytes);
  // Bytes of an unfinished character still held back (dropped at the end of a reply, as nanochat does).
  const std::string& pending() const { return pending_; }

 private:
  std::string pending_;
};

// Replaces every ill-formed UTF-8 subpart with U+FFFD (whole input, nothing held back).
std::string sanitize_utf8(std::string_view bytes);

// A JSON string literal for text (valid UTF-8), escaped as Python's json.dumps(ensure_ascii=False) does.
std::string json_quote(std::string_view text);

// "data: <payload>\n\n"
std::string sse_event(std::string_view payload);
// nanochat's events.
std::string sse_token_event(std::string_view text, int gpu_id);
std::string sse_done_event();
std::string sse_error_event(std::string_view message);

}  // namespace nanochat
