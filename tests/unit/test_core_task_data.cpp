// Tests for nanochat/task_data: tasks by name, task lists, JSONL splits beside the HF parquet layout, errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "nanochat/common.h"
#include "tasks/task_data.h"
#include "tasks/common.h"

using namespace nanochat;
namespace fs = std::filesystem;

class TaskDataDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("task_data_test_{}", ::getpid());
    fs::create_directories(dir_ / "hf_datasets/allenai/ai2_arc/ARC-Easy/test");
    fs::copy_file(fs::path(NANOCHAT_FIXTURES) / "parquet/tasks/arc_easy_test.parquet",
                  dir_ / "hf_datasets/allenai/ai2_arc/ARC-Easy/test/0000.parquet");
    fs::create_directories(dir_ / "hf_datasets/openai/gsm8k/main/test");
    fs::copy_file(fs::path(NANOCHAT_FIXTURES) / "chat/gsm8k_test.jsonl",
                  dir_ / "hf_datasets/openai/gsm8k/main/test/test.jsonl");
    std::ofstream(dir_ / "words_alpha.txt") << "apple\nbanana\ncherry\n";
    setenv("NANOCHAT_BASE_DIR", dir_.c_str(), 1);
    setenv("NANOCHAT_DOWNLOAD_BACKOFF", "0.001", 1);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1);  // nothing listens there: downloads fail at once
  }
  void TearDown() override {
    unsetenv("NANOCHAT_BASE_DIR");
    unsetenv("HF_ENDPOINT");
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(TaskDataDir, LoadsParquetAndJsonlSplits) {
  EXPECT_FALSE(hf_jsonl_rows("allenai/ai2_arc", "ARC-Easy", "test"));  // parquet there
  ASSERT_TRUE(hf_jsonl_rows("openai/gsm8k", "main", "test"));
  EXPECT_EQ(hf_jsonl_rows("openai/gsm8k", "main", "test")->size(), 8u);
  TaskPtr arc = make_task("arc-easy", "test", "train");
  EXPECT_EQ(task_size(*arc), 30);
  EXPECT_EQ(task_eval_type(*arc), "categorical");
  TaskPtr gsm = make_chat_eval_task("GSM8K");
  EXPECT_EQ(task_size(*gsm), 8);
  auto conv = task_example(*gsm, 0);
  EXPECT_EQ(conv["messages"][0]["role"], "user");
  EXPECT_EQ(make_task("GSM8K", "test", "test", 3)->size(), 3);
}

TEST_F(TaskDataDir, TaskListsRepeatAndSize) {
  auto tasks = parse_task_list("ARC-Easy:test*2, SpellingBee:50 ,SimpleSpelling", "train");
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(tasks[0], tasks[1]);  // the same task twice: oversampling
  EXPECT_EQ(task_size(*tasks[2]), 50);
  EXPECT_EQ(task_size(*tasks[3]), 1000);
  EXPECT_EQ(task_size(*make_mixture(tasks)), 30 + 30 + 50 + 1000);
  EXPECT_THROW(parse_task_list("", "train"), Error);
  EXPECT_THROW(parse_task_list("Bogus", "train"), Error);
  EXPECT_THROW(parse_task_list("SpellingBee:abc", "train"), Error);
}

TEST_F(TaskDataDir, MissingDatasetFailsNamingTheDirectory) {
  try {
    make_task("ARC-Challenge", "test", "test");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("hf_datasets/allenai/ai2_arc/ARC-Challenge/test"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(TaskData, ChatCoreBaselines) {
  EXPECT_EQ(chat_eval_baseline("ARC-Easy"), 0.25);
  EXPECT_EQ(chat_eval_baseline("MMLU"), 0.25);
  EXPECT_EQ(chat_eval_baseline("GSM8K"), 0.0);
  EXPECT_EQ(chat_eval_task_names().size(), 6u);
}
