// download: HTTP(S) GET into a file with libcurl — streamed into "<dest>.tmp", size-checked, then renamed, so a
// final name never holds a partial file; retried with exponential backoff. Used for the pretraining shards and
// reusable for any other download (eval bundle, word list, ...).
//
//   nanochat::download_file("https://host/shard_00000.parquet", dir / "shard_00000.parquet");
//
// Retry: up to max_attempts tries; after failed try k it sleeps 2^k seconds times NANOCHAT_DOWNLOAD_BACKOFF
// (default 1; tests set e.g. 0.01). HTTP 4xx answers (except 408 and 429) are not retried: the URL is wrong.
// Timeout: timeout_s to connect, and the transfer is abandoned if it stalls (under 1 byte/s) for timeout_s.
// Not covered: resuming a partial download (a retry starts over), authentication.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace nanochat {

// Called with (bytes received so far in this attempt, expected total or -1) as data arrives.
using DownloadProgress = std::function<void(int64_t, int64_t)>;
// Called with one line per failed attempt ("Attempt 1/5 failed for URL: reason").
using DownloadLog = std::function<void(const std::string&)>;

// Throws nanochat::Error naming the URL and the last failure when every attempt failed.
void download_file(const std::string& url, const std::filesystem::path& dest, int max_attempts = 5, long timeout_s = 30,
                   const DownloadLog& log = {}, const DownloadProgress& progress = {});

// "host" of "scheme://host[:port]/path"; and the Hugging Face Hub's host ($HF_ENDPOINT, default huggingface.co), to
// which download_file sends "Authorization: Bearer $HF_TOKEN" when HF_TOKEN is set.
std::string url_host(const std::string& url);
std::string hf_hub_host();
// The backoff multiplier (NANOCHAT_DOWNLOAD_BACKOFF, default 1).
double download_backoff_scale();

}  // namespace nanochat
