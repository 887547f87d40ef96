// download: see download.h. One libcurl easy handle per attempt; the body goes straight to "<dest>.tmp".
#include "nanochat/download.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "nanochat/common.h"

namespace nanochat {

std::string url_host(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of(":/?#", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string hf_hub_host() { return url_host(getenv_or("HF_ENDPOINT", "https://huggingface.co")); }

namespace fs = std::filesystem;

namespace {

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  FILE* f = nullptr;
  int64_t written = 0;
  const DownloadProgress* progress = nullptr;
  CURL* handle = nullptr;
  bool write_failed = false;
};

size_t on_data(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* s = static_cast<Sink*>(userdata);
  size_t n = size * nmemb;
  if (std::fwrite(ptr, 1, n, s->f) != n) {
    s->write_failed = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  s->written += int64_t(n);
  if (s->progress && *s->progress) {
    curl_off_t total = -1;
    curl_easy_getinfo(s->handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
    (*s->progress)(s->written, int64_t(total));
  }
  return n;
}

// One attempt. Returns "" on success, else the reason; *permanent is set when retrying cannot help.
std::string attempt_once(const std::string& url, const fs::path& tmp, long timeout_s, const DownloadProgress& progress,
                         bool* permanent) {
  *permanent = false;
  Sink sink;
  sink.f = std::fopen(tmp.c_str(), "wb");
  if (!sink.f) {
    *permanent = true;
    return fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno));
  }
  CURL* h = curl_easy_init();
  if (!h) {
    std::fclose(sink.f);
    return "curl_easy_init failed";
  }
  sink.handle = h;
  sink.progress = &progress;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout_s);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, timeout_s);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "nanochat");
  // Gated or private Hugging Face datasets need the user's token; it goes to the Hub's host only (curl does not
  // forward it across a redirect to another host, e.g. the CDN).
  struct curl_slist* headers = nullptr;
  if (std::string token = getenv_or("HF_TOKEN", ""); !token.empty() && url_host(url) == hf_hub_host()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  }
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t expected = -1;
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
  curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  bool flushed = std::fflush(sink.f) == 0 && ::fsync(fileno(sink.f)) == 0;
  flushed = std::fclose(sink.f) == 0 && flushed;

  if (sink.write_failed || !flushed) {
    *permanent = true;
    return fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno));
  }
  if (status >= 400) {
    *permanent = status < 500 && status != 408 && status != 429;
    return fmt::format("HTTP {}", status);
  }
  if (rc != CURLE_OK) return fmt::format("{}{}{}", curl_easy_strerror(rc), errbuf[0] ? ": " : "", errbuf);
  if (expected >= 0 && sink.written != int64_t(expected))
    return fmt::format("got {} of {} bytes", sink.written, int64_t(expected));
  return "";
}

}  // namespace

double download_backoff_scale() {
  std::string s = getenv_or("NANOCHAT_DOWNLOAD_BACKOFF", "");
  if (s.empty()) return 1.0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end || !(v >= 0) || !std::isfinite(v))
    fail("NANOCHAT_DOWNLOAD_BACKOFF={} is not a non-negative number", s);
  return v;
}

void download_file(const std::string& url, const fs::path& dest, int max_attempts, long timeout_s,
                   const DownloadLog& log, const DownloadProgress& progress) {
  curl_init_once();
  if (max_attempts < 1) max_attempts = 1;
  const double scale = download_backoff_scale();
  if (dest.has_parent_path()) fs::create_directories(dest.parent_path());
  fs::path tmp = dest;
  tmp += ".tmp";
  std::string reason;
  for (int attempt = 1; attempt <= max_attempts; attempt++) {
    bool permanent = false;
    reason = attempt_once(url, tmp, timeout_s, progress, &permanent);
    if (reason.empty()) {
      std::error_code ec;
      fs::rename(tmp, dest, ec);
      if (!ec) {
        fsync_dir(dest.has_parent_path() ? dest.parent_path() : fs::path("."));
        return;
      }
      reason = fmt::format("cannot rename {} to {}: {}", tmp.string(), dest.string(), ec.message());
      permanent = true;
    }
    std::error_code ignore;
    fs::remove(tmp, ignore);
    if (log) log(fmt::format("Attempt {}/{} failed for {}: {}", attempt, max_attempts, url, reason));
    if (permanent) break;
    if (attempt < max_attempts) {
      double wait = scale * std::pow(2.0, attempt);
      if (log && scale >= 0.5) log(fmt::format("Waiting {:g} seconds before retry...", wait));
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
  }
  fail("could not download {}: {}", url, reason);
}

}  // namespace nanochat
