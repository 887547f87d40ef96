// report: the training report card (nanochat's report.py). Each script logs a markdown section; `nanochat report
// reset` starts a run's report with the environment; `nanochat report generate` assembles report.md.
//
//   auto report = nanochat::get_report();           // <base_dir>/report; a no-op on ranks other than 0
//   report.log("Base model training", {
//       nanochat::ReportItem(user_config),           // a JSON object: one "- key: value" line per entry
//       nanochat::ReportItem{{"Number of parameters", num_params}, {"Minimum validation bpb", min_val_bpb}},
//       nanochat::ReportItem("free text, written verbatim\n"),   // a string
//   });
//
// Section files are <base_dir>/report/<slug>.md (slug = lower case, spaces -> "-"): "## <section>", a
// "timestamp: YYYY-MM-DD HH:MM:SS" line (local time), then the items. Values print like Python's: floats with 4
// decimals, integers >= 10000 with thousands separators, booleans True/False, null None, lists and objects as
// Python reprs. Empty items (null, "", {}, []) are skipped.
//
// reset() deletes the section files and report.md and writes header.md: git (branch, commit, dirty, message),
// hardware (platform, CPU model and cores, memory, GPUs from nvidia-smi, hourly rate), software (libtorch, CUDA,
// compiler) and "Bloat" (characters, lines, files, approx tokens of the git-tracked *.cpp *.h *.sh *.html *.md *.py
// and CMakeLists.txt files of the source tree, and the Debian packages scripts/setup.sh installs).
//
// generate() writes report.md = header + the sections in nanochat's order (tokenizer-training, tokenizer-evaluation,
// base-model-training, base-model-loss, base-model-evaluation, chat-sft, chat-evaluation-sft, chat-rl,
// chat-evaluation-rl) + a Summary (bloat, a BASE/SFT/RL metric table, total wall clock time, estimated cost).
// SFT's section is logged as "SFT" (sft.md) as in nanochat; unlike nanochat, which never collects it, we use it
// in chat-sft's place. After each training section it links SVG charts (train loss, validation bpb; RL reward)
// drawn from the newest metrics.jsonl of that stage under <base_dir>/logs/<project>/ (see logger.h), written to
// <base_dir>/report/report-charts/. report.md and report-charts/ are also copied to the current directory.
// Not covered: Ascend NPUs are not detected (the program has no NPU backend), but the cost table has their rate.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanochat {

// One item of a section: a string (verbatim) or an object (key: value lines); ordered_json keeps key order.
using ReportItem = nlohmann::ordered_json;

std::string slugify(const std::string& section);
// A value as nanochat's report prints it ({:.4f} floats, {:,} big ints, True/False/None, Python reprs).
std::string format_report_value(const ReportItem& value);
// "1234567" -> "1,234,567".
std::string with_thousands(int64_t n);
// The text of a section file, for a given timestamp string.
std::string render_section(const std::string& section, const std::vector<ReportItem>& data,
                           const std::string& timestamp);
std::string timestamp_now();  // local "YYYY-MM-DD HH:MM:SS"

// What the caller knows about the software (the program links libtorch; the report library does not).
struct SoftwareInfo {
  std::string torch_version;               // e.g. "1.13.1"
  std::string cuda_version;                // libtorch's CUDA, "" = from nvidia-smi, if any
  std::filesystem::path source_dir = ".";  // the git checkout to describe (Git Information, Bloat)
};

// Cost of the accelerators per hour (nanochat/report.py estimate_cost and the Ascend fork's table): by substring of the
// first device's name: H100 $3.00, A100 $1.79, V100 $0.55, Ascend/910 CNY 3.00, any other GPU $2.00; x count.
struct HourlyRate {
  double amount = 0;
  std::string currency = "USD";
  std::string symbol = "$";
};
std::optional<HourlyRate> estimate_hourly_rate(const std::string& first_device_name, int count);

struct GpuInfo {
  std::vector<std::string> names;
  std::vector<double> memory_gb;
  std::string cuda_version;
};
// From `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` and the `nvidia-smi`
// banner (CUDA version), limited to CUDA_VISIBLE_DEVICES when that lists indices; empty when there is no GPU.
GpuInfo query_gpus();
GpuInfo parse_nvidia_smi(const std::string& csv, const std::string& banner, const std::string& visible_devices);

struct BloatInfo {
  int64_t chars = 0, lines = 0, files = 0, dependencies = 0;
  bool ok = false;
};
BloatInfo measure_bloat(const std::filesystem::path& source_dir);

std::string generate_header(const SoftwareInfo& software);

// The Summary table: metrics[stage][metric] for stages "base", "sft", "rl" (CORE first, ChatCORE last).
std::string summary_table(const std::map<std::string, std::map<std::string, std::string>>& metrics);
// For every line of `section` containing a key: the text after the first ':' (up to the next ':'), stripped.
std::map<std::string, std::string> extract_metrics(const std::string& section, const std::vector<std::string>& keys);
// "YYYY-MM-DD HH:MM:SS" after `prefix` at the start of a line, as local time; nullopt if absent or malformed.
std::optional<int64_t> extract_timestamp(const std::string& content, const std::string& prefix);

class Report {
 public:
  // dir: the report directory (created); logs_dir: where the metrics live (default dir/../logs).
  explicit Report(std::filesystem::path dir, bool enabled = true, std::filesystem::path logs_dir = {});
  // Writes the section file; returns its path (empty when disabled).
  std::filesystem::path log(const std::string& section, const std::vector<ReportItem>& data) const;
  // Writes report.md (and its charts), copies both into copy_to (skipped when empty); returns report.md's path.
  std::filesystem::path generate(const std::filesystem::path& copy_to = std::filesystem::current_path()) const;
  void reset(const SoftwareInfo& software) const;
  const std::filesystem::path& dir() const { return dir_; }
  bool enabled() const { return enabled_; }

 private:
  std::string charts_for(const std::string& project, const std::string& prefix, const std::string& stage_title,
                         std::optional<int64_t> start_time) const;
  std::filesystem::path dir_, logs_dir_;
  bool enabled_ = true;
};

// <base_dir>/report, enabled on rank 0 only.
Report get_report();

}  // namespace nanochat
