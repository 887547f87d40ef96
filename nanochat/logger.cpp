// logger: see logger.h.
#include "nanochat/logger.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <regex>

#include "nanochat/common.h"
#include "nanochat/formats/tensorboard.h"

namespace nanochat {

namespace fs = std::filesystem;

LoggerBackend resolve_logger_backend(const std::string& flag_value, const std::string& run) {
  std::string name = flag_value;
  if (name.empty() || name == "auto") name = getenv_or("NANOCHAT_LOGGER", "auto");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  bool dummy = run.empty() || run == "dummy";
  if (name == "none") return LoggerBackend::None;
  if (name == "jsonl") return LoggerBackend::Jsonl;
  if (name == "auto") return dummy ? LoggerBackend::Jsonl : LoggerBackend::TensorBoard;
  if (name == "tensorboard") {
    if (dummy) {
      print0(
          "logger: --run dummy turns the TensorBoard tracker off (as it turns wandb off in nanochat); "
          "writing metrics.jsonl only. Pass --run NAME to get event files.");
      return LoggerBackend::Jsonl;
    }
    return LoggerBackend::TensorBoard;
  }
  if (name == "wandb" || name == "swanlab")
    fail(
        "--logger {}: there is no {} client here; use --logger tensorboard and import the event files "
        "(wandb sync --sync-tensorboard, or swanlab convert -t tensorboard)",
        name, name);
  fail("unknown logger '{}' (from --logger or NANOCHAT_LOGGER): use auto, tensorboard, jsonl or none", name);
}

const char* logger_backend_name(LoggerBackend backend) {
  switch (backend) {
    case LoggerBackend::None:
      return "none";
    case LoggerBackend::Jsonl:
      return "jsonl";
    case LoggerBackend::TensorBoard:
      return "tensorboard";
  }
  return "?";
}

fs::path logger_run_dir(const std::string& project, const std::string& run) {
  std::string r = run.empty() ? "dummy" : run;
  // A run name is one path component: keep slashes from escaping the logs directory.
  std::replace(r.begin(), r.end(), '/', '_');
  if (r.size() <= 2 && r.find_first_not_of('.') == std::string::npos) r.assign(1, '_');  // "." and ".."
  return get_base_dir() / "logs" / project / r;
}

Logger::Logger() = default;

Logger::Logger(const std::string& project, const std::string& run, const std::string& backend_flag,
               const nlohmann::json& config, bool resume) {
  LoggerBackend backend = resolve_logger_backend(backend_flag, run);  // validate the flag on every rank
  if (!is_master_process() || backend == LoggerBackend::None) return;
  backend_ = backend;
  dir_ = logger_run_dir(project, run);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) fail("cannot create log dir {}: {} (check NANOCHAT_BASE_DIR)", dir_.string(), ec.message());
  write_file_atomic(dir_ / "config.json", config.dump(2) + "\n");
  jsonl_ = std::fopen(jsonl_path().c_str(), resume ? "ab" : "wb");
  if (!jsonl_) fail("cannot write {}: {}", jsonl_path().string(), std::strerror(errno));
  if (backend_ == LoggerBackend::TensorBoard) tb_ = std::make_unique<EventWriter>(dir_);
}

Logger::~Logger() { finish(); }

Logger::Logger(Logger&& other) noexcept
    : backend_(other.backend_), dir_(std::move(other.dir_)), jsonl_(other.jsonl_), tb_(std::move(other.tb_)) {
  other.jsonl_ = nullptr;
  other.backend_ = LoggerBackend::None;
}

Logger& Logger::operator=(Logger&& other) noexcept {
  if (this != &other) {
    finish();
    backend_ = other.backend_;
    dir_ = std::move(other.dir_);
    jsonl_ = other.jsonl_;
    tb_ = std::move(other.tb_);
    other.jsonl_ = nullptr;
    other.backend_ = LoggerBackend::None;
  }
  return *this;
}

fs::path Logger::event_file() const { return tb_ ? tb_->path() : fs::path(); }

void Logger::log(int64_t step, const std::map<std::string, double>& metrics) {
  if (!jsonl_) return;
  double now = unix_time_now();
  nlohmann::ordered_json row;
  row["step"] = step;
  row["wall_time"] = now;
  for (const auto& [key, value] : metrics) {
    if (key == "step" || key == "wall_time") continue;  // reserved columns
    row[key] = std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
  }
  std::string line = row.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), jsonl_) != line.size())
    fail("cannot write {}: {}", jsonl_path().string(), std::strerror(errno));
  // One line per call and flushed: a crashed run keeps every metric it logged, and the report can read it live.
  std::fflush(jsonl_);
  if (tb_) tb_->add_scalars(step, metrics, now);
}

void Logger::finish() {
  if (jsonl_) {
    std::fclose(jsonl_);
    jsonl_ = nullptr;
  }
  if (tb_) {
    tb_->close();
    tb_.reset();
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// console lines

namespace {

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "DEBUG";
    case LogLevel::Info:
      return "INFO";
    case LogLevel::Warning:
      return "WARNING";
    case LogLevel::Error:
      return "ERROR";
    case LogLevel::Critical:
      return "CRITICAL";
  }
  return "?";
}

const char* level_color(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "\033[36m";  // cyan
    case LogLevel::Info:
      return "\033[32m";  // green
    case LogLevel::Warning:
      return "\033[33m";  // yellow
    case LogLevel::Error:
      return "\033[31m";  // red
    case LogLevel::Critical:
      return "\033[35m";  // magenta
  }
  return "";
}

constexpr const char* kBold = "\033[1m";
constexpr const char* kReset = "\033[0m";

std::string asctime_now() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  int ms = int(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  return fmt::format("{},{:03d}", format_local_time(t), ms);
}

}  // namespace

std::string format_log_line(LogLevel level, std::string_view name, std::string_view message, bool color) {
  std::string msg(message);
  std::string lvl = level_name(level);
  if (color) {
    lvl = fmt::format("{}{}{}{}", level_color(level), kBold, lvl, kReset);
    if (level == LogLevel::Info) {
      // Make the numbers a reader scans for stand out: sizes, percentages, document counts, shard numbers.
      static const std::regex sizes(R"((\d+(?:\.\d+)?\s*(?:GB|MB|%|docs)))");
      static const std::regex shard(R"((Shard \d+))");
      msg = std::regex_replace(msg, sizes, std::string(kBold) + "$1" + kReset);
      msg = std::regex_replace(msg, shard, std::string(level_color(LogLevel::Debug)) + kBold + "$1" + kReset);
    }
  }
  return fmt::format("{} - {} - {} - {}", asctime_now(), name, lvl, msg);
}

void log_message(LogLevel level, std::string_view name, std::string_view message) {
  if (level == LogLevel::Debug || !is_master_process()) return;
  static const bool tty = ::isatty(STDERR_FILENO);
  std::string line = format_log_line(level, name, message, tty) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace nanochat
