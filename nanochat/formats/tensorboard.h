// tensorboard: TensorBoard event files written (and read back) without TensorFlow or protobuf.
//
//   nanochat::EventWriter tb{"/path/to/logdir"};        // creates events.out.tfevents.<time>.<host>.<pid>.0
//   tb.add_scalars(step, {{"train/loss", 3.2}, {"val/bpb", 1.1}});
//   auto events = nanochat::read_events(tb.path());     // for tests and tools: every Event in the file
//
// `tensorboard --logdir <dir>` shows the scalars; wandb (`wandb sync --sync-tensorboard`) and SwanLab
// (`swanlab convert -t tensorboard`) import them. The file is a TFRecord stream: each record is
// [uint64 length][uint32 masked crc32c(length)][data][uint32 masked crc32c(data)], little-endian, and each data
// is a serialized tensorflow.Event proto. The first event carries file_version "brain.Event:2"; the rest carry
// wall_time, step and a Summary of (tag, simple_value) pairs. The protobuf fields are encoded by hand.
// Not covered: images, histograms, text or hparams summaries (only scalars).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nanochat {

// CRC-32C (Castagnoli), and TFRecord's masked form of it.
uint32_t crc32c(std::string_view data);
uint32_t masked_crc32c(std::string_view data);

// One decoded tensorflow.Event (only the fields we write; unknown fields are skipped when reading).
struct TbEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;                            // set only on the first event of a file
  std::vector<std::pair<std::string, float>> scalars;  // Summary values with a simple_value
};

// Protobuf encoding/decoding of one Event (exposed for tests).
std::string encode_event(const TbEvent& event);
TbEvent decode_event(std::string_view bytes);
// TFRecord framing of one record.
std::string frame_record(std::string_view data);

class EventWriter {
 public:
  // Creates dir if needed and a new event file in it; writes the file_version event.
  explicit EventWriter(const std::filesystem::path& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // One Event holding every scalar (stored as float32, as TensorBoard does). wall_time < 0 means now.
  void add_scalars(int64_t step, const std::map<std::string, double>& scalars, double wall_time = -1);
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = -1);
  void flush();
  void close();
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_event(const TbEvent& event);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

// Every event of an event file, in order. Fails (nanochat::Error) on a CRC mismatch or an undecodable record;
// a truncated last record (a writer still running or killed mid-write) ends the list without error.
std::vector<TbEvent> read_events(const std::filesystem::path& path);

// Seconds since the epoch, as a double (the wall_time TensorBoard expects).
double unix_time_now();

}  // namespace nanochat
