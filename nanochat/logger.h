// logger: the experiment logger (nanochat's wandb calls) and the console log lines (nanochat's logging setup).
//
// Metrics. A training script makes one Logger and logs a map of scalars at a step:
//
//   nanochat::Logger logger{"nanochat", opt.run, opt.logger, user_config};   // project, --run, --logger, config
//   logger.log(step, {{"train/loss", loss}, {"train/lrm", lrm}, {"train/dt", dt}});
//   logger.log(step, {{"val/bpb", val_bpb}});
//   logger.finish();
//
// Files, on rank 0 only, under <base_dir>/logs/<project>/<run>/:
//   metrics.jsonl     one JSON object per log() call: {"step": N, "wall_time": unix seconds, "<key>": value, ...}
//                     (non-finite values are written as null). Always written unless the backend is "none";
//                     `nanochat report generate` draws its charts from these files.
//   config.json       the config given to the constructor (the CLI flags), like wandb's run config.
//   events.out.tfevents.*   TensorBoard event files (backend "tensorboard"): `tensorboard --logdir <base_dir>/logs`
//                     shows every project and run; wandb and SwanLab can import them.
// Projects follow nanochat's wandb projects: "nanochat" (base_train), "nanochat-sft", "nanochat-rl".
//
// Backend, from --logger (default auto) or, when the flag is left at auto, $NANOCHAT_LOGGER:
//   auto         tensorboard when --run names a run, jsonl when --run is "dummy"
//   tensorboard  metrics.jsonl + TensorBoard event files
//   jsonl        metrics.jsonl only
//   none         nothing is written
// `--run dummy` (nanochat's default) turns the experiment tracker off as in nanochat, so no event files are
// written, but metrics.jsonl still is (it feeds the report). Ranks other than 0 never write.
// A resumed run (resume = true) appends to metrics.jsonl instead of starting it over.
//
// Console. log_info("nanochat.dataset", "Downloaded shard 12 (95.1 MB)") prints
//   2026-01-01 12:00:00,123 - nanochat.dataset - INFO - Downloaded shard 12 (95.1 MB)
// on stderr, with the level name colored and (for INFO) sizes, percentages and "Shard N" bolded when stderr is
// a terminal. Training step lines are plain print0 calls in the scripts, not this.
// Not covered: talking to wandb or SwanLab directly (no network clients); image or histogram logging.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace nanochat {

class EventWriter;

enum class LoggerBackend { None, Jsonl, TensorBoard };

// Resolves --logger (and $NANOCHAT_LOGGER when the flag is "auto" or empty) and --run to a backend.
// Fails with a one-line Error on an unknown name.
LoggerBackend resolve_logger_backend(const std::string& flag_value, const std::string& run);
const char* logger_backend_name(LoggerBackend backend);

// Where a project's run logs live: <base_dir>/logs/<project>/<run>.
std::filesystem::path logger_run_dir(const std::string& project, const std::string& run);

class Logger {
 public:
  // A Logger that writes nothing (for code paths that take a Logger but are not logging).
  Logger();
  Logger(const std::string& project, const std::string& run, const std::string& backend_flag = "auto",
         const nlohmann::json& config = nlohmann::json::object(), bool resume = false);
  ~Logger();
  Logger(Logger&&) noexcept;
  Logger& operator=(Logger&&) noexcept;

  void log(int64_t step, const std::map<std::string, double>& metrics);
  void finish();

  LoggerBackend backend() const { return backend_; }
  bool enabled() const { return backend_ != LoggerBackend::None; }
  bool tensorboard() const { return tb_ != nullptr; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path jsonl_path() const { return dir_ / "metrics.jsonl"; }
  std::filesystem::path event_file() const;

 private:
  LoggerBackend backend_ = LoggerBackend::None;
  std::filesystem::path dir_;
  std::FILE* jsonl_ = nullptr;
  std::unique_ptr<EventWriter> tb_;
};

// --- console log lines (nanochat's ColoredFormatter) ---
enum class LogLevel { Debug, Info, Warning, Error, Critical };
// The full line without a trailing newline; color = ANSI escapes as described above.
std::string format_log_line(LogLevel level, std::string_view name, std::string_view message, bool color);
// Writes format_log_line(...) + "\n" to stderr, colored when stderr is a terminal; rank 0 only. Debug is
// dropped (nanochat logs at INFO).
void log_message(LogLevel level, std::string_view name, std::string_view message);

template <typename... Args>
void log_info(std::string_view name, fmt::format_string<Args...> f, Args&&... args) {
  log_message(LogLevel::Info, name, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warning(std::string_view name, fmt::format_string<Args...> f, Args&&... args) {
  log_message(LogLevel::Warning, name, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(std::string_view name, fmt::format_string<Args...> f, Args&&... args) {
  log_message(LogLevel::Error, name, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace nanochat
