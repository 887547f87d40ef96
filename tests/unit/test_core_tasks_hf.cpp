// Tasks reading HF parquet files (tasks/hf_data.h): the parquet fixtures placed where load_hf_split looks for them
// (<base_dir>/hf_datasets/<repo>/<subset>/<split>/) must give the same conversations as their JSON rows, in the
// order tests/fixtures/tasks/gen_expected.py computed with numpy's default_rng(42).permutation. The download path
// runs against a local HTTP server standing in for the HF API ($HF_ENDPOINT).
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "nanochat/common.h"
#include "tasks/arc.h"
#include "tasks/hf_data.h"
#include "tasks/mmlu.h"
#include "tasks/gsm8k.h"
#include "tasks/smoltalk.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

class HFTasks : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("nanochat-hf-test-" + std::to_string(getpid()));
    fs::remove_all(base_);
    fs::create_directories(base_);
    const char* old = std::getenv("NANOCHAT_BASE_DIR");
    old_ = old ? old : "";
    setenv("NANOCHAT_BASE_DIR", base_.c_str(), 1);
  }
  void TearDown() override {
    if (old_.empty())
      unsetenv("NANOCHAT_BASE_DIR");
    else
      setenv("NANOCHAT_BASE_DIR", old_.c_str(), 1);
    fs::remove_all(base_);
  }
  void place(const std::string& fixture, const std::string& repo, const std::string& subset, const std::string& split) {
    fs::path dir = hf_split_dir(repo, subset, split);
    fs::create_directories(dir);
    fs::copy_file(std::string(NANOCHAT_FIXTURES) + "/parquet/tasks/" + fixture + ".parquet", dir / "0000.parquet");
  }
  fs::path base_;
  std::string old_;
};

}  // namespace

TEST_F(HFTasks, LoadsParquetSplitsInShuffleOrder) {
  place("arc_easy_test", "allenai/ai2_arc", "ARC-Easy", "test");
  place("mmlu_test", "cais/mmlu", "all", "test");
  place("smoltalk_train", "HuggingFaceTB/smol-smoltalk", "default", "train");
  std::string fx = std::string(NANOCHAT_FIXTURES) + "/tasks/";
  ARC arc("ARC-Easy", "test");
  MMLU mmlu("all", "test");
  SmolTalk smol("train");
  auto check = [](const Task& task, const std::vector<nlohmann::json>& expected) {
    ASSERT_EQ(task.size(), int64_t(expected.size()));
    for (int64_t i = 0; i < task.size(); i++) EXPECT_EQ(task[i], expected[size_t(i)]) << i;
  };
  check(arc, read_jsonl(fx + "arc_easy_test.conversations.jsonl"));
  check(mmlu, read_jsonl(fx + "mmlu_test.conversations.jsonl"));
  check(smol, read_jsonl(fx + "smoltalk_train.conversations.jsonl"));
  // Slicing works on loaded tasks as on any other.
  MMLU sliced("all", "test", {0, 5, 1});
  EXPECT_EQ(sliced.size(), 5);
}

TEST_F(HFTasks, BadNamesFailClearly) {
  EXPECT_THROW(ARC("ARC-Medium", "test"), Error);
  EXPECT_THROW(MMLU("auxiliary_train", "test"), Error);
  EXPECT_THROW(SmolTalk("validation"), Error);
}

TEST_F(HFTasks, DownloadsAMissingSplitThroughTheParquetListing) {
  httplib::Server svr;
  std::atomic<int> listing_hits{0}, file_hits{0};
  const std::string arc = read_file(std::string(NANOCHAT_FIXTURES) + "/parquet/tasks/arc_easy_test.parquet");
  int port = svr.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  const std::string host = "http://127.0.0.1:" + std::to_string(port);
  svr.Get("/api/datasets/allenai/ai2_arc/parquet/ARC-Easy/test", [&](const httplib::Request&, httplib::Response& res) {
    listing_hits++;
    res.set_content(nlohmann::json::array({host + "/files/arc-0.parquet"}).dump(), "application/json");
  });
  svr.Get("/files/arc-0.parquet", [&](const httplib::Request&, httplib::Response& res) {
    file_hits++;
    res.set_content(arc, "application/octet-stream");
  });
  std::thread t([&] { svr.listen_after_bind(); });
  setenv("HF_ENDPOINT", (host + "/").c_str(), 1);
  setenv("NANOCHAT_DOWNLOAD_BACKOFF", "0.01", 1);

  auto expected = read_jsonl(std::string(NANOCHAT_FIXTURES) + "/tasks/arc_easy_test.conversations.jsonl");
  ARC first("ARC-Easy", "test");
  ASSERT_EQ(first.size(), int64_t(expected.size()));
  for (int64_t i = 0; i < first.size(); i++) EXPECT_EQ(first[i], expected[size_t(i)]) << i;
  EXPECT_TRUE(fs::exists(hf_split_dir("allenai/ai2_arc", "ARC-Easy", "test") / "0000.parquet"));
  ARC second("ARC-Easy", "test");  // already on disk: no new request
  EXPECT_EQ(second.size(), first.size());
  EXPECT_EQ(listing_hits.load(), 1);
  EXPECT_EQ(file_hits.load(), 1);

  // A split the server does not know: a one-line error naming where the files should go.
  try {
    GSM8K missing("main", "test");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(hf_split_dir("openai/gsm8k", "main", "test").string()), std::string::npos)
        << e.what();
  }
  svr.stop();
  t.join();
  unsetenv("HF_ENDPOINT");
  unsetenv("NANOCHAT_DOWNLOAD_BACKOFF");
}
