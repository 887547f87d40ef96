// http_policy: which requests the web chat server (chat_server.h) lets in by where they come from, and how it writes
// request text into its log. Pure functions, no sockets:
//   - the Host header against the names the server answers to, so that a web page whose own DNS name is made to
//     point at 127.0.0.1 (DNS rebinding) cannot drive it;
//   - the Origin header against the server's own origin and --cors-origin, so that any other page a browser shows
//     cannot drive it either (a browser sends Origin with every cross-origin request and every POST);
//   - control characters in logged text escaped, so that a message cannot forge log lines.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nanochat {

// True when a Host header names this server: "localhost", an IP address (127.0.0.1, [::1], any other: a page
// reaches us through an address only if it was loaded from one, never through a rebound DNS name) or one of
// `names` (the --host value and --allowed-host names, lower case), with the server's port (none: port 80).
bool host_allowed(std::string_view host_header, int port, const std::vector<std::string>& names);

struct CorsDecision {
  bool allowed = true;
  std::string allow_origin;  // the Access-Control-Allow-Origin to send ("" = none)
  bool credentials = false;  // send Access-Control-Allow-Credentials: true
};

// What to do with a request's Origin header ("" when it has none: not a browser's cross-origin request).
// Allowed: no Origin; the server's own origin (http:// or https:// plus the Host header, already checked by
// host_allowed) — no CORS headers needed; an origin in `allowed` (normalized by normalize_cors_origin): echoed,
// with credentials; anything else when `allowed` holds "*": "*" without credentials. All others are refused.
CorsDecision cors_decision(std::string_view origin, std::string_view host_header,
                           const std::vector<std::string>& allowed);

// A --cors-origin value as browsers write origins: "*", or scheme://host[:port] in lower case without a trailing
// '/'. Returns "" for a value that is neither (e.g. one with a path).
std::string normalize_cors_origin(std::string_view origin);

// s with \n, \r, \t as those escapes, other C0 controls and DEL as \xNN, C1 controls and U+2028/U+2029 as \uNNNN:
// one log line stays one line, and a terminal shows it without obeying escape sequences in it.
std::string escape_control_chars(std::string_view s);

}  // namespace nanochat
