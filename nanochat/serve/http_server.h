// http_server: cpp-httplib's Server with what its 0.11 version lacks for chat_server:
//   - a listen backlog that takes a burst of connections (httplib listens with 5; the kernel drops the rest of a
//     burst's SYNs, which clients retry only a second later): raise_backlog() after binding;
//   - pipelined requests answered, in order: httplib 0.11 reads each request of a keep-alive connection through a
//     fresh 4 KiB-buffered stream, so whatever part of the following requests that buffer held was thrown away and
//     only the first of several pipelined requests got an answer. Here one buffered stream lives as long as its
//     connection;
//   - a handler's way to close its connection after the response (close_after): httplib sends a handler's
//     "Connection: close" header but then keeps reading the connection, e.g. the unread rest of a refused body as
//     if it were the next request;
//   - the connection's socket for a handler (current_socket), to watch for its client hanging up.
// Everything else (parsing, routing, writing responses) is httplib's own Server::process_request.
#pragma once

#include <httplib.h>

namespace nanochat {

class HttpServer : public httplib::Server {
 public:
  // Lets the kernel queue SOMAXCONN connections on the bound socket (call after bind_to_port).
  void raise_backlog();
  // The socket of the connection whose request this thread is handling; -1 outside a request handler.
  static int current_socket();
  // Says "Connection: close" in res and closes the connection once res is sent (call from a handler).
  static void close_after(httplib::Response& res);

 private:
  bool process_and_close_socket(socket_t sock) override;
};

}  // namespace nanochat
