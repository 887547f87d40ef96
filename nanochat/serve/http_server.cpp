// http_server: see http_server.h. The keep-alive loop is httplib 0.11's process_and_close_socket, with one
// ConnectionStream per connection instead of one SocketStream per request, and an idle wait that notices stop().
#include "nanochat/serve/http_server.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace nanochat {

namespace {

struct Connection {
  int sock = -1;
  bool close = false;  // a handler asked for the connection to end after its response
};
thread_local Connection* t_connection = nullptr;

int poll_one(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int n;
  do n = ::poll(&p, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  return n;
}

// As httplib reports addresses (req.remote_addr, req.local_addr): numeric host, port.
void ip_and_port(int sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if ((peer ? getpeername : getsockname)(sock, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
  if (a.ss_family == AF_INET)
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&a)->sin_port);
  else if (a.ss_family == AF_INET6)
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&a)->sin6_port);
  else
    return;
  char host[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) == 0)
    ip = host;
}

// A connection's socket with one read buffer for all its requests, so that bytes of the next pipelined request
// read along with this one are kept. Timeouts as httplib's SocketStream: each read and write waits at most that.
class ConnectionStream : public httplib::Stream {
 public:
  ConnectionStream(int sock, int read_ms, int write_ms) : sock_(sock), read_ms_(read_ms), write_ms_(write_ms) {}
  using httplib::Stream::write;

  bool buffered() const { return off_ < len_; }
  bool is_readable() const override { return buffered() || poll_one(sock_, POLLIN, read_ms_) > 0; }
  // Writable and not hung up: a readable socket with nothing to read means the peer has closed it.
  bool is_writable() const override {
    if (poll_one(sock_, POLLOUT, write_ms_) <= 0) return false;
    if (buffered() || poll_one(sock_, POLLIN, 0) == 0) return true;
    char c;
    return ::recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }
  ssize_t read(char* ptr, size_t size) override {
    if (!buffered()) {
      if (!is_readable()) return -1;
      ssize_t n;
      do n = ::recv(sock_, buf_.data(), buf_.size(), 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      off_ = 0;
      len_ = size_t(n);
    }
    size_t n = std::min(size, len_ - off_);
    std::memcpy(ptr, buf_.data() + off_, n);
    off_ += n;
    return ssize_t(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { ip_and_port(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { ip_and_port(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  int sock_, read_ms_, write_ms_;
  std::array<char, 4096> buf_{};
  size_t off_ = 0, len_ = 0;
};

}  // namespace

void HttpServer::raise_backlog() { ::listen(svr_sock_, SOMAXCONN); }

int HttpServer::current_socket() { return t_connection ? t_connection->sock : -1; }

void HttpServer::close_after(httplib::Response& res) {
  if (!res.has_header("Connection")) res.set_header("Connection", "close");
  if (t_connection) t_connection->close = true;
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  ConnectionStream strm(sock, int(read_timeout_sec_ * 1000 + read_timeout_usec_ / 1000),
                        int(write_timeout_sec_ * 1000 + write_timeout_usec_ / 1000));
  Connection conn{sock};
  t_connection = &conn;
  // The next request: at once if its first bytes are buffered, else wait for it (at most the keep-alive timeout,
  // in short steps so that stop() ends idle connections at once).
  auto next_request = [&] {
    if (strm.buffered()) return true;
    for (time_t waited_ms = 0; svr_sock_ != INVALID_SOCKET && waited_ms <= keep_alive_timeout_sec_ * 1000;
         waited_ms += 50) {
      int n = poll_one(sock, POLLIN, 50);
      if (n != 0) return n > 0;
    }
    return false;
  };
  bool ret = false;
  for (size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET && next_request(); left--) {
    bool connection_closed = false;
    conn.close = false;
    ret = process_request(strm, left == 1, connection_closed, nullptr);
    if (!ret || connection_closed || conn.close) break;
  }
  t_connection = nullptr;
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

}  // namespace nanochat
