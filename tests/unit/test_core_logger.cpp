// Tests for nanochat/logger and nanochat/tensorboard: backend choice, metrics.jsonl, TensorBoard event files
// (CRC32C, protobuf encoding, framing, reading back) and the console log line format.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/logger.h"
#include "nanochat/formats/tensorboard.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

// A fresh NANOCHAT_BASE_DIR per test, and RANK / NANOCHAT_LOGGER cleared, restored afterwards.
struct TempBaseDir {
  fs::path dir;
  TempBaseDir() {
    dir = fs::temp_directory_path() / fmt::format("nanochat_logger_{}_{}", ::getpid(), counter()++);
    fs::remove_all(dir);
    fs::create_directories(dir);
    ::setenv("NANOCHAT_BASE_DIR", dir.c_str(), 1);
    ::unsetenv("RANK");
    ::unsetenv("NANOCHAT_LOGGER");
  }
  ~TempBaseDir() {
    ::unsetenv("NANOCHAT_BASE_DIR");
    ::unsetenv("RANK");
    ::unsetenv("NANOCHAT_LOGGER");
    fs::remove_all(dir);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::json> rows;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

std::string hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace

TEST(TensorBoard, Crc32cKnownValues) {
  // The standard CRC-32C check value, and RFC 3720's 32 zero bytes.
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(""), 0u);
  uint32_t c = crc32c("123456789");
  EXPECT_EQ(masked_crc32c("123456789"), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(TensorBoard, EventEncodingIsProtobuf) {
  TbEvent ev;
  ev.wall_time = 1.5;
  ev.step = 3;
  ev.scalars = {{"a", 1.0f}};
  // wall_time (field 1, fixed64) 1.5; step (field 2, varint) 3; summary (field 5) { value (1) { tag (1) "a",
  // simple_value (2, fixed32) 1.0f } }
  EXPECT_EQ(hex(encode_event(ev)),
            "09000000000000f83f"
            "1003"
            "2a0a"
            "0a08"
            "0a0161"
            "150000803f");
  TbEvent first;
  first.wall_time = 0;
  first.file_version = "brain.Event:2";
  EXPECT_EQ(hex(encode_event(first)),
            "090000000000000000"
            "1a0d" +
                hex("brain.Event:2"));
  // Multi-byte varints and negative steps round-trip.
  for (int64_t step : {int64_t(0), int64_t(127), int64_t(128), int64_t(300), int64_t(1) << 40, int64_t(-5)}) {
    TbEvent e;
    e.step = step;
    e.wall_time = 123.25;
    e.scalars = {{"train/loss", 2.5f}, {"val/bpb", 0.75f}};
    TbEvent back = decode_event(encode_event(e));
    EXPECT_EQ(back.step, step);
    EXPECT_EQ(back.wall_time, 123.25);
    ASSERT_EQ(back.scalars.size(), 2u);
    EXPECT_EQ(back.scalars[1].first, "val/bpb");
    EXPECT_EQ(back.scalars[1].second, 0.75f);
  }
}

TEST(TensorBoard, RecordFraming) {
  std::string rec = frame_record("abc");
  ASSERT_EQ(rec.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(hex(rec.substr(0, 8)), "0300000000000000");
  uint32_t len_crc, data_crc;
  std::memcpy(&len_crc, rec.data() + 8, 4);
  std::memcpy(&data_crc, rec.data() + 15, 4);
  EXPECT_EQ(len_crc, masked_crc32c(rec.substr(0, 8)));
  EXPECT_EQ(rec.substr(12, 3), "abc");
  EXPECT_EQ(data_crc, masked_crc32c("abc"));
}

TEST(TensorBoard, WriterFileParsesBack) {
  TempBaseDir tmp;
  fs::path path;
  {
    EventWriter w(tmp.dir / "tb");
    path = w.path();
    EXPECT_NE(path.filename().string().find("events.out.tfevents."), std::string::npos);
    for (int step = 0; step < 5; step++)
      w.add_scalars(step * 10, {{"train/loss", 4.0 - step * 0.5}, {"train/lrm", 1.0}}, 1000.0 + step);
    w.add_scalar("val/bpb", 1.25, 40, 2000.0);
  }
  auto events = read_events(path);
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_TRUE(events[0].scalars.empty());
  EXPECT_GT(events[0].wall_time, 1.6e9);
  for (int step = 0; step < 5; step++) {
    const auto& e = events[size_t(step) + 1];
    EXPECT_EQ(e.step, step * 10);
    EXPECT_EQ(e.wall_time, 1000.0 + step);
    ASSERT_EQ(e.scalars.size(), 2u);
    EXPECT_EQ(e.scalars[0].first, "train/loss");  // std::map order
    EXPECT_FLOAT_EQ(e.scalars[0].second, float(4.0 - step * 0.5));
    EXPECT_EQ(e.scalars[1].first, "train/lrm");
  }
  EXPECT_EQ(events[6].scalars.at(0).first, "val/bpb");
  EXPECT_EQ(events[6].scalars.at(0).second, 1.25f);
}

TEST(TensorBoard, CorruptionIsAnErrorAndATornTailIsNot) {
  TempBaseDir tmp;
  fs::path path;
  {
    EventWriter w(tmp.dir);
    path = w.path();
    w.add_scalar("x", 1.0, 1);
    w.add_scalar("x", 2.0, 2);
  }
  std::string bytes = read_file(path);
  // A writer killed mid-record: the complete records still read.
  write_file_atomic(tmp.dir / "torn", bytes.substr(0, bytes.size() - 5));
  auto torn = read_events(tmp.dir / "torn");
  ASSERT_EQ(torn.size(), 2u);
  EXPECT_EQ(torn[1].step, 1);
  // A flipped bit inside a record's data fails the CRC.
  std::string bad = bytes;
  bad[bad.size() - 6] ^= 0x01;
  write_file_atomic(tmp.dir / "bad", bad);
  EXPECT_THROW(read_events(tmp.dir / "bad"), Error);
}

TEST(Logger, BackendChoice) {
  TempBaseDir tmp;
  EXPECT_EQ(resolve_logger_backend("auto", "dummy"), LoggerBackend::Jsonl);
  EXPECT_EQ(resolve_logger_backend("auto", "d12"), LoggerBackend::TensorBoard);
  EXPECT_EQ(resolve_logger_backend("tensorboard", "d12"), LoggerBackend::TensorBoard);
  EXPECT_EQ(resolve_logger_backend("tensorboard", "dummy"), LoggerBackend::Jsonl);  // dummy turns the tracker off
  EXPECT_EQ(resolve_logger_backend("jsonl", "d12"), LoggerBackend::Jsonl);
  EXPECT_EQ(resolve_logger_backend("none", "d12"), LoggerBackend::None);
  EXPECT_EQ(resolve_logger_backend("TensorBoard", "d12"), LoggerBackend::TensorBoard);
  EXPECT_THROW(resolve_logger_backend("mlflow", "d12"), Error);
  EXPECT_THROW(resolve_logger_backend("wandb", "d12"), Error);
  ::setenv("NANOCHAT_LOGGER", "none", 1);
  EXPECT_EQ(resolve_logger_backend("auto", "d12"), LoggerBackend::None);    // env fills in for auto
  EXPECT_EQ(resolve_logger_backend("jsonl", "d12"), LoggerBackend::Jsonl);  // an explicit flag wins
  ::setenv("NANOCHAT_LOGGER", "bogus", 1);
  EXPECT_THROW(resolve_logger_backend("", "d12"), Error);
}

TEST(Logger, WritesJsonlConfigAndEventFiles) {
  TempBaseDir tmp;
  fs::path events;
  {
    Logger logger("nanochat", "d4", "tensorboard", nlohmann::json{{"depth", 4}, {"run", "d4"}});
    ASSERT_TRUE(logger.tensorboard());
    EXPECT_EQ(logger.dir(), tmp.dir / "logs" / "nanochat" / "d4");
    logger.log(0, {{"train/loss", 5.5}, {"train/lrm", 1.0}});
    logger.log(100, {{"train/loss", 4.25}, {"train/lrm", 0.5}});
    logger.log(100, {{"val/bpb", 1.5}});
    logger.log(200, {{"train/loss", std::nan("")}});
    events = logger.event_file();
  }
  fs::path dir = tmp.dir / "logs" / "nanochat" / "d4";
  auto config = nlohmann::json::parse(read_file(dir / "config.json"));
  EXPECT_EQ(config["depth"], 4);
  auto rows = read_jsonl(dir / "metrics.jsonl");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0]["step"], 0);
  EXPECT_EQ(rows[1]["train/loss"], 4.25);
  EXPECT_EQ(rows[2]["val/bpb"], 1.5);
  EXPECT_FALSE(rows[2].contains("train/loss"));
  EXPECT_TRUE(rows[3]["train/loss"].is_null());  // non-finite -> null, the line stays valid JSON
  EXPECT_GT(rows[3]["wall_time"].get<double>(), 1.6e9);
  // The event file holds the same scalars.
  auto ev = read_events(events);
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].file_version, "brain.Event:2");
  EXPECT_EQ(ev[2].step, 100);
  EXPECT_EQ(ev[2].scalars.at(0), (std::pair<std::string, float>{"train/loss", 4.25f}));
  EXPECT_EQ(ev[3].scalars.at(0), (std::pair<std::string, float>{"val/bpb", 1.5f}));
  EXPECT_TRUE(std::isnan(ev[4].scalars.at(0).second));
  EXPECT_EQ(ev[2].wall_time, rows[1]["wall_time"].get<double>());
}

TEST(Logger, ResumeAppendsAndANewRunStartsOver) {
  TempBaseDir tmp;
  {
    Logger l("nanochat-sft", "r", "jsonl");
    l.log(1, {{"x", 1}});
  }
  {
    Logger l("nanochat-sft", "r", "jsonl", nlohmann::json::object(), /*resume=*/true);
    l.log(2, {{"x", 2}});
  }
  fs::path jsonl = tmp.dir / "logs" / "nanochat-sft" / "r" / "metrics.jsonl";
  EXPECT_EQ(read_jsonl(jsonl).size(), 2u);
  {
    Logger l("nanochat-sft", "r", "jsonl");
    l.log(3, {{"x", 3}});
  }
  auto rows = read_jsonl(jsonl);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["step"], 3);
  // jsonl alone writes no event files
  for (const auto& e : fs::directory_iterator(jsonl.parent_path()))
    EXPECT_EQ(e.path().filename().string().find("tfevents"), std::string::npos);
}

TEST(Logger, DummyNoneAndOtherRanksWriteNothingExtra) {
  TempBaseDir tmp;
  {
    Logger dummy("nanochat", "dummy", "tensorboard");
    EXPECT_FALSE(dummy.tensorboard());
    EXPECT_TRUE(dummy.enabled());
    dummy.log(1, {{"x", 1}});
  }
  EXPECT_EQ(read_jsonl(tmp.dir / "logs" / "nanochat" / "dummy" / "metrics.jsonl").size(), 1u);
  {
    Logger none("nanochat", "off", "none");
    EXPECT_FALSE(none.enabled());
    none.log(1, {{"x", 1}});
  }
  EXPECT_FALSE(fs::exists(tmp.dir / "logs" / "nanochat" / "off"));
  ::setenv("RANK", "1", 1);
  {
    Logger rank1("nanochat", "r1", "tensorboard");
    EXPECT_FALSE(rank1.enabled());
    rank1.log(1, {{"x", 1}});
  }
  EXPECT_FALSE(fs::exists(tmp.dir / "logs" / "nanochat" / "r1"));
  // A run name cannot escape the logs directory.
  EXPECT_EQ(logger_run_dir("nanochat", "../x").filename(), ".._x");
}

TEST(Logger, ConsoleLineFormat) {
  std::string plain = format_log_line(LogLevel::Info, "nanochat.dataset", "Downloaded 95.1 MB (Shard 12, 40%)", false);
  EXPECT_TRUE(std::regex_match(
      plain,
      std::regex(
          R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - nanochat\.dataset - INFO - Downloaded 95\.1 MB \(Shard 12, 40%\))")))
      << plain;
  std::string colored = format_log_line(LogLevel::Info, "n", "Downloaded 95.1 MB (Shard 12, 40%)", true);
  EXPECT_NE(colored.find("\033[32m\033[1mINFO\033[0m"), std::string::npos);
  EXPECT_NE(colored.find("\033[1m95.1 MB\033[0m"), std::string::npos);
  EXPECT_NE(colored.find("\033[1m40%\033[0m"), std::string::npos);
  EXPECT_NE(colored.find("Shard 12\033[0m"), std::string::npos);
  std::string warn = format_log_line(LogLevel::Warning, "n", "5 GB left", true);
  EXPECT_NE(warn.find("\033[33m\033[1mWARNING"), std::string::npos);
  EXPECT_EQ(warn.find("\033[1m5 GB"), std::string::npos);  // highlighting is for INFO only
}
