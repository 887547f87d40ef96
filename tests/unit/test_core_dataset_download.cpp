// Downloads against a real HTTP server on 127.0.0.1 (cpp-httplib, started by the test on a free port) serving the
// fixture shards: files arrive byte-identical; 500s and a response cut short are retried to a complete file; a 404
// fails with the URL in the message; no partial file is ever left under a final name. Also the CLI end to end.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "nanochat/common.h"
#include "nanochat/dataset.h"
#include "nanochat/download.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

const fs::path kPretrain = fs::path(NANOCHAT_FIXTURES) / "parquet" / "pretrain";

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / fmt::format("nanochat_test_{}_{}", name, ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Serves /ok/<name> (always), /flaky/<name> (500, 500, then a body cut in half, then the file) and 404s otherwise.
struct ShardServer {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::map<std::string, std::string> files;
  std::mutex mu;
  std::map<std::string, int> hits;
  fs::path watch_dir;  // while serving a flaky request, the final file must not exist there
  std::atomic<bool> saw_final_early{false};
  std::string last_authorization;  // the Authorization header of the last /ok request ("" = none)

  ShardServer() {
    files["shard_00000.parquet"] = read_file(kPretrain / "shard_00000.parquet");
    files["shard_00001.parquet"] = read_file(kPretrain / "shard_00001.parquet");
    files["shard_06542.parquet"] = read_file(kPretrain / "shard_00002.parquet");
    svr.Get(R"(/(ok|flaky)/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::string mode = req.matches[1], name = req.matches[2];
      auto it = files.find(name);
      if (it == files.end()) {
        res.status = 404;
        res.set_content("not found", "text/plain");
        return;
      }
      int n;
      {
        std::lock_guard lk(mu);
        n = ++hits[mode + "/" + name];
      }
      if (!watch_dir.empty() && fs::exists(watch_dir / name)) saw_final_early = true;
      if (mode == "ok") {
        std::lock_guard lk(mu);
        last_authorization = req.get_header_value("Authorization");
      }
      const std::string& body = it->second;
      if (mode == "flaky" && n <= 2) {
        res.status = 500;
        res.set_content("try again", "text/plain");
      } else if (mode == "flaky" && n == 3) {
        // Announce the full length, send half, then drop the connection.
        res.set_content_provider(body.size(), "application/octet-stream",
                                 [&body](size_t offset, size_t, httplib::DataSink& sink) {
                                   if (offset == 0) sink.write(body.data(), body.size() / 2);
                                   return false;
                                 });
      } else {
        res.set_content(body, "application/octet-stream");
      }
    });
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ShardServer() {
    svr.stop();
    thread.join();
  }
  std::string url(const std::string& path) const { return fmt::format("http://127.0.0.1:{}{}", port, path); }
};

struct FastBackoff {
  FastBackoff() { setenv("NANOCHAT_DOWNLOAD_BACKOFF", "0.01", 1); }
  ~FastBackoff() { unsetenv("NANOCHAT_DOWNLOAD_BACKOFF"); }
};

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> v;
  for (auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST(Download, ByteIdentical) {
  FastBackoff fb;
  ShardServer server;
  fs::path dir = temp_dir("dl_ok");
  int64_t last_progress = 0;
  download_file(server.url("/ok/shard_00000.parquet"), dir / "shard_00000.parquet", 5, 30, {},
                [&](int64_t got, int64_t total) {
                  last_progress = got;
                  EXPECT_EQ(total, int64_t(server.files["shard_00000.parquet"].size()));
                });
  EXPECT_EQ(read_file(dir / "shard_00000.parquet"), server.files["shard_00000.parquet"]);
  EXPECT_EQ(last_progress, int64_t(server.files["shard_00000.parquet"].size()));
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"shard_00000.parquet"});
  fs::remove_all(dir);
}

TEST(Download, RetriesServerErrorsAndShortBodies) {
  FastBackoff fb;
  ShardServer server;
  fs::path dir = temp_dir("dl_flaky");
  server.watch_dir = dir;
  std::vector<std::string> log;
  download_file(server.url("/flaky/shard_00001.parquet"), dir / "shard_00001.parquet", 5, 30,
                [&](const std::string& line) { log.push_back(line); });
  EXPECT_EQ(read_file(dir / "shard_00001.parquet"), server.files["shard_00001.parquet"]);
  EXPECT_EQ(server.hits["flaky/shard_00001.parquet"], 4);
  ASSERT_EQ(log.size(), 3u);  // three failed attempts, each logged with the URL
  EXPECT_NE(log[0].find("HTTP 500"), std::string::npos) << log[0];
  EXPECT_NE(log[2].find("shard_00001.parquet"), std::string::npos) << log[2];
  EXPECT_FALSE(server.saw_final_early);
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"shard_00001.parquet"});

  // With fewer attempts than failures the download fails and leaves nothing behind.
  fs::path dir2 = temp_dir("dl_flaky2");
  server.hits.clear();
  EXPECT_THROW(download_file(server.url("/flaky/shard_00000.parquet"), dir2 / "shard_00000.parquet", 3), Error);
  EXPECT_TRUE(names_in(dir2).empty());
  fs::remove_all(dir);
  fs::remove_all(dir2);
}

TEST(Download, NotFoundNamesTheUrl) {
  FastBackoff fb;
  ShardServer server;
  fs::path dir = temp_dir("dl_404");
  std::string url = server.url("/ok/shard_00077.parquet");
  try {
    download_file(url, dir / "shard_00077.parquet");
    FAIL() << "a 404 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(url), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(names_in(dir).empty());  // neither the final name nor a .tmp
  // Nobody listening: a clear error too.
  EXPECT_THROW(download_file("http://127.0.0.1:1/x.parquet", dir / "x.parquet", 2, 5), Error);
  EXPECT_TRUE(names_in(dir).empty());
  fs::remove_all(dir);
}

TEST(Download, ShardsInParallelAndSkipExisting) {
  FastBackoff fb;
  ShardServer server;
  fs::path dir = temp_dir("dl_shards");
  testing::internal::CaptureStdout();
  download_shards(2, 3, server.url("/flaky/"), dir);
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("Done! Downloaded: 3/3 shards"), std::string::npos) << out;
  for (auto& [name, body] : server.files) EXPECT_EQ(read_file(dir / name), body) << name;
  EXPECT_EQ(names_in(dir).size(), 3u);
  testing::internal::CaptureStdout();
  download_shards(2, 3, server.url("/ok"), dir);
  out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("Skipping"), std::string::npos) << out;
  EXPECT_EQ(server.hits.count("ok/shard_00000.parquet"), 0u);  // nothing fetched again
  fs::remove_all(dir);
}

TEST(Download, CommandLine) {
  ShardServer server;
  fs::path dir = temp_dir("dl_cli");
  std::string env = "NANOCHAT_DOWNLOAD_BACKOFF=0.01 ";
  std::string cmd = env + fmt::format("{} dataset -n 2 -w 2 --base-url {} --output-dir {} > {} 2>&1", NANOCHAT_BIN,
                                      server.url("/flaky"), (dir / "data").string(), (dir / "log").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir / "log");
  for (auto& [name, body] : server.files) EXPECT_EQ(read_file(dir / "data" / name), body) << name;
  std::string log = read_file(dir / "log");
  EXPECT_NE(log.find("Done! Downloaded: 3/3 shards"), std::string::npos) << log;
  EXPECT_NE(log.find("Successfully downloaded shard_00000.parquet"), std::string::npos) << log;  // not a terminal
  // Shard 2 does not exist on the server: non-zero exit, the URL in the error, no partial files.
  cmd = env + fmt::format("{} dataset -n 3 --base-url {} --output-dir {} > {} 2>&1", NANOCHAT_BIN, server.url("/ok"),
                          (dir / "data").string(), (dir / "log").string());
  EXPECT_NE(std::system(cmd.c_str()), 0);
  log = read_file(dir / "log");
  EXPECT_NE(log.find("error: "), std::string::npos) << log;
  EXPECT_NE(log.find(server.url("/ok/shard_00002.parquet")), std::string::npos) << log;
  EXPECT_EQ(names_in(dir / "data").size(), 3u);
  fs::remove_all(dir);
}

// HF_TOKEN goes to the Hugging Face Hub's host ($HF_ENDPOINT) as a Bearer token, and to no other host.
TEST(Download, HfTokenOnlyForTheHub) {
  EXPECT_EQ(url_host("https://huggingface.co/api/datasets/x"), "huggingface.co");
  EXPECT_EQ(url_host("http://127.0.0.1:8080/a?b"), "127.0.0.1");
  ShardServer server;
  fs::path dir = temp_dir("dl_token");
  setenv("HF_TOKEN", "hf_secret", 1);
  setenv("HF_ENDPOINT", server.url("").c_str(), 1);
  download_file(server.url("/ok/shard_00000.parquet"), dir / "a.parquet");
  EXPECT_EQ(server.last_authorization, "Bearer hf_secret");
  setenv("HF_ENDPOINT", "https://huggingface.co", 1);
  download_file(server.url("/ok/shard_00000.parquet"), dir / "b.parquet");
  EXPECT_EQ(server.last_authorization, "");
  unsetenv("HF_TOKEN");
  unsetenv("HF_ENDPOINT");
  fs::remove_all(dir);
}
