// report: see report.h.
#include "nanochat/report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include <fmt/core.h>

#include "nanochat/common.h"
#include "nanochat/formats/svg_chart.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

// Section files in report order. chat-sft's slot also takes sft.md, the slug SFT actually logs under.
const std::vector<std::string> kSectionFiles = {
    "tokenizer-training.md",    "tokenizer-evaluation.md",
    "base-model-training.md",   "base-model-loss.md",
    "base-model-evaluation.md", "chat-sft.md",
    "chat-evaluation-sft.md",   "chat-rl.md",
    "chat-evaluation-rl.md",
};
const std::vector<std::string> kChatMetrics = {"ARC-Easy", "ARC-Challenge", "MMLU", "GSM8K", "HumanEval", "ChatCORE"};
const char* kChartsDir = "report-charts";

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Runs a shell command with a 5 s limit (as nanochat does); stdout stripped, or nullopt on failure.
std::optional<std::string> run_command(const std::string& cmd) {
  std::string full = "timeout 5 " + cmd + " 2>/dev/null";
  std::FILE* p = ::popen(full.c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  if (status != 0) return std::nullopt;
  return trim(out);
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); i++) out += (i ? sep : "") + parts[i];
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string py_repr(const ReportItem& v) {
  if (v.is_string()) {
    std::string out = "'";
    for (char c : v.get<std::string>()) {
      if (c == '\\' || c == '\'') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out + "'";
  }
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); i++) out += (i ? ", " : "") + py_repr(v[i]);
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it, first = false)
      out += (first ? "" : ", ") + py_repr(ReportItem(it.key())) + ": " + py_repr(it.value());
    return out + "}";
  }
  if (v.is_number_float()) return python_float_str(v.get<double>());
  return format_report_value(v);
}

// Reads the lines of /proc/<file> into key -> value ("model name : X" -> {"model name", "X"}), first wins.
std::map<std::string, std::string> read_proc_kv(const char* path,
                                                std::vector<std::pair<std::string, std::string>>* all = nullptr) {
  std::map<std::string, std::string> kv;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = trim(line.substr(0, colon)), v = trim(line.substr(colon + 1));
    kv.emplace(k, v);
    if (all) all->emplace_back(k, v);
  }
  return kv;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------------
// section files

std::string slugify(const std::string& section) {
  std::string s = section;
  for (auto& c : s) c = c == ' ' ? '-' : char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -(n + 1) + uint64_t(1) : uint64_t(n));
  std::string out;
  for (size_t i = 0; i < digits.size(); i++) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string format_report_value(const ReportItem& v) {
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_number_float()) return fmt::format("{:.4f}", v.get<double>());
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    return u >= 10000 && u <= uint64_t(INT64_MAX) ? with_thousands(int64_t(u)) : std::to_string(u);
  }
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    return i >= 10000 ? with_thousands(i) : std::to_string(i);
  }
  if (v.is_string()) return v.get<std::string>();
  return py_repr(v);
}

std::string timestamp_now() { return format_local_time(std::time(nullptr)); }

std::string render_section(const std::string& section, const std::vector<ReportItem>& data,
                           const std::string& timestamp) {
  std::string out = fmt::format("## {}\ntimestamp: {}\n\n", section, timestamp);
  for (const auto& item : data) {
    if (item.is_null() || item.empty() || (item.is_string() && item.get<std::string>().empty())) continue;  // falsy
    if (item.is_boolean() && !item.get<bool>()) continue;
    if (item.is_number() && item.get<double>() == 0) continue;
    if (item.is_string()) {
      out += item.get<std::string>();
    } else if (item.is_object()) {
      for (auto it = item.begin(); it != item.end(); ++it)
        out += fmt::format("- {}: {}\n", it.key(), format_report_value(it.value()));
    } else {
      fail("report section '{}': an item must be a string or an object of key: value, not {}", section, item.dump());
    }
  }
  out += "\n";
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// environment (header.md)

std::optional<HourlyRate> estimate_hourly_rate(const std::string& name, int count) {
  if (count <= 0) return std::nullopt;
  HourlyRate rate;
  if (name.find("H100") != std::string::npos)
    rate.amount = 3.00;
  else if (name.find("A100") != std::string::npos)
    rate.amount = 1.79;
  else if (name.find("V100") != std::string::npos)
    rate.amount = 0.55;
  else if (name.find("Ascend") != std::string::npos || name.find("910") != std::string::npos) {
    rate.amount = 3.00;  // Ascend 910B: 3 CNY per card-hour (the Ascend fork's rate)
    rate.currency = "CNY";
    rate.symbol = "¥";
  } else
    rate.amount = 2.00;
  rate.amount *= count;
  return rate;
}

GpuInfo parse_nvidia_smi(const std::string& csv, const std::string& banner, const std::string& visible_devices) {
  // CUDA_VISIBLE_DEVICES as a list of indices limits the GPUs this run sees, as torch.cuda counts them;
  // UUIDs or MIG names are left alone (all GPUs listed).
  std::set<std::string> visible;
  bool filter = !visible_devices.empty();
  std::istringstream ids(visible_devices);
  std::string id;
  while (std::getline(ids, id, ',')) {
    id = trim(id);
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) filter = false;
    visible.insert(id);
  }
  GpuInfo info;
  std::istringstream lines(csv);
  std::string line;
  while (std::getline(lines, line)) {  // "0, NVIDIA H100 80GB HBM3, 81559"
    auto first = line.find(','), last = line.rfind(',');
    if (first == std::string::npos || first == last) continue;
    if (filter && !visible.count(trim(line.substr(0, first)))) continue;
    info.names.push_back(trim(line.substr(first + 1, last - first - 1)));
    info.memory_gb.push_back(std::atof(trim(line.substr(last + 1)).c_str()) / 1024.0);  // MiB -> GiB
  }
  auto pos = banner.find("CUDA Version:");  // the driver's, from the banner: "... CUDA Version: 12.4 |"
  if (pos != std::string::npos) {
    std::istringstream ss(banner.substr(pos + 13));
    ss >> info.cuda_version;
  }
  return info;
}

GpuInfo query_gpus() {
  auto csv = run_command("nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits");
  if (!csv || csv->empty()) return {};
  return parse_nvidia_smi(*csv, run_command("nvidia-smi").value_or(""), getenv_or("CUDA_VISIBLE_DEVICES", ""));
}

BloatInfo measure_bloat(const fs::path& source_dir) {
  BloatInfo b;
  auto listing = run_command("git -C " + shell_quote(source_dir.string()) + " ls-files");
  if (!listing) return b;
  static const std::set<std::string> kExt = {".cpp", ".h", ".sh", ".html", ".md", ".py"};
  std::istringstream files(*listing);
  std::string rel;
  while (std::getline(files, rel)) {
    fs::path p(rel);
    if (!kExt.count(p.extension().string()) && p.filename() != "CMakeLists.txt") continue;
    std::error_code ec;
    if (!fs::is_regular_file(source_dir / p, ec)) continue;  // deleted but still tracked
    std::string text = read_file(source_dir / p);
    b.files++;
    b.chars += int64_t(text.size());
    b.lines += std::count(text.begin(), text.end(), '\n');
  }
  // Dependencies: the Debian packages setup.sh installs (our uv.lock).
  std::error_code ec;
  if (fs::is_regular_file(source_dir / "scripts" / "setup.sh", ec)) {
    std::string setup = read_file(source_dir / "scripts" / "setup.sh");
    auto start = setup.find("PACKAGES=(");
    auto end = start == std::string::npos ? start : setup.find(')', start);
    if (start != std::string::npos && end != std::string::npos) {
      std::istringstream words(setup.substr(start + 10, end - start - 10));
      std::string w;
      while (words >> w)
        if (w[0] != '#') b.dependencies++;
    }
  }
  b.ok = true;
  return b;
}

std::string generate_header(const SoftwareInfo& software) {
  std::string src = shell_quote(software.source_dir.string());
  std::string commit = run_command("git -C " + src + " rev-parse --short HEAD").value_or("");
  std::string branch = run_command("git -C " + src + " rev-parse --abbrev-ref HEAD").value_or("");
  auto status = run_command("git -C " + src + " status --porcelain");
  std::string message = run_command("git -C " + src + " log -1 --pretty=%B").value_or("");
  message = message.substr(0, message.find('\n')).substr(0, 80);
  bool dirty = status && !status->empty();

  struct utsname uts {};
  std::string platform = ::uname(&uts) == 0 ? uts.sysname : "unknown";
  std::vector<std::pair<std::string, std::string>> cpuinfo;
  auto cpu = read_proc_kv("/proc/cpuinfo", &cpuinfo);
  std::set<std::string> cores;  // physical cores = distinct (physical id, core id)
  std::string phys;
  for (const auto& [k, v] : cpuinfo) {
    if (k == "physical id") phys = v;
    if (k == "core id") cores.insert(phys + ":" + v);
  }
  long logical = ::sysconf(_SC_NPROCESSORS_ONLN);
  size_t physical = cores.empty() ? size_t(logical) : cores.size();
  std::string cpu_model = cpu.count("model name") ? cpu["model name"] : (cpu.count("Model") ? cpu["Model"] : "unknown");
  double mem_gb = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0 * 1024.0);

  std::string h = fmt::format(
      "# nanochat training report\n\nGenerated: {}\n\n## Environment\n\n### Git Information\n- Branch: {}\n"
      "- Commit: {} {}\n- Message: {}\n\n### Hardware\n- Platform: {}\n- CPU: {}\n- CPUs: {} cores ({} logical)\n"
      "- Memory: {:.1f} GB\n",
      timestamp_now(), branch.empty() ? "unknown" : branch, commit.empty() ? "unknown" : commit,
      dirty ? "(dirty)" : "(clean)", message, platform, cpu_model, physical, logical, mem_gb);
  GpuInfo gpus = query_gpus();
  if (!gpus.names.empty()) {
    std::vector<std::string> unique;
    for (const auto& n : gpus.names)
      if (std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
    double vram = 0;
    for (double g : gpus.memory_gb) vram += g;
    std::string cuda = !software.cuda_version.empty() ? software.cuda_version : gpus.cuda_version;
    h += fmt::format("- GPUs: {}x {}\n- GPU Memory: {:.1f} GB total\n- CUDA Version: {}\n", gpus.names.size(),
                     join(unique, ", "), vram, cuda.empty() ? "unknown" : cuda);
    if (auto rate = estimate_hourly_rate(gpus.names.front(), int(gpus.names.size())); rate && rate->amount > 0)
      h += fmt::format("- Hourly Rate: {}{:.2f}/hour{}\n", rate->symbol, rate->amount,
                       rate->currency == "USD" ? "" : " (" + rate->currency + ")");
  } else {
    h += "- GPUs: None available\n";
  }
  h += fmt::format("\n### Software\n- libtorch: {}\n- Compiler: g++ {}\n\n",
                   software.torch_version.empty() ? "unknown" : software.torch_version, __VERSION__);
  BloatInfo b = measure_bloat(software.source_dir);
  if (b.ok) {
    h += fmt::format(
        "\n### Bloat\n- Characters: {}\n- Lines: {}\n- Files: {}\n- Tokens (approx): {}\n"
        "- Dependencies (setup.sh packages): {}\n\n",
        with_thousands(b.chars), with_thousands(b.lines), with_thousands(b.files), with_thousands(b.chars / 4),
        with_thousands(b.dependencies));
  } else {
    h +=
        fmt::format("\n### Bloat\n- Unknown: {} is not a git checkout of the source\n\n", software.source_dir.string());
  }
  return h;
}

// ---------------------------------------------------------------------------------------------------------------------
// report.md

std::map<std::string, std::string> extract_metrics(const std::string& section, const std::vector<std::string>& keys) {
  std::map<std::string, std::string> out;
  std::istringstream lines(section);
  std::string line;
  while (std::getline(lines, line)) {
    for (const auto& key : keys) {
      if (line.find(key) == std::string::npos) continue;
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;  // nanochat would crash here; we skip the line
      auto next = line.find(':', colon + 1);
      out[key] = trim(line.substr(colon + 1, next == std::string::npos ? std::string::npos : next - colon - 1));
    }
  }
  return out;
}

std::optional<int64_t> extract_timestamp(const std::string& content, const std::string& prefix) {
  std::istringstream lines(content);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = trim(line.substr(colon + 1));
    std::tm tm{};
    std::istringstream ss(value);
    ss >> std::get_time(&tm, "%Y-%m-%d %H:%M:%S");
    if (ss.fail()) continue;
    tm.tm_isdst = -1;
    return int64_t(std::mktime(&tm));
  }
  return std::nullopt;
}

std::string summary_table(const std::map<std::string, std::map<std::string, std::string>>& metrics) {
  const std::vector<std::string> stages = {"base", "sft", "rl"};
  const int mw = 15, vw = 8;
  std::vector<std::string> names;
  for (const auto& [stage, m] : metrics)
    for (const auto& [name, value] : m)
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  // CORE first, ChatCORE last, the rest alphabetical.
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    auto key = [](const std::string& s) { return std::make_tuple(s != "CORE", s == "ChatCORE", s); };
    return key(a) < key(b);
  });
  std::string out = fmt::format("| {:<{}} |", "Metric", mw);
  for (const auto& s : stages) {
    std::string upper = s;
    for (auto& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    out += fmt::format(" {:<{}} |", upper, vw);
  }
  out += "\n|" + std::string(mw + 2, '-') + "|";
  for (size_t i = 0; i < stages.size(); i++) out += std::string(vw + 2, '-') + "|";
  out += "\n";
  for (const auto& name : names) {
    out += fmt::format("| {:<{}} |", name, mw);
    for (const auto& s : stages) {
      std::string v = "-";
      if (auto it = metrics.find(s); it != metrics.end())
        if (auto jt = it->second.find(name); jt != it->second.end()) v = jt->second;
      out += fmt::format(" {:<{}} |", v, vw);
    }
    out += "\n";
  }
  return out;
}

Report::Report(fs::path dir, bool enabled, fs::path logs_dir)
    : dir_(std::move(dir)), logs_dir_(std::move(logs_dir)), enabled_(enabled) {
  if (logs_dir_.empty()) logs_dir_ = dir_.parent_path() / "logs";
  if (enabled_) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) fail("cannot create report dir {}: {} (check NANOCHAT_BASE_DIR)", dir_.string(), ec.message());
  }
}

fs::path Report::log(const std::string& section, const std::vector<ReportItem>& data) const {
  if (!enabled_) return {};
  fs::path path = dir_ / (slugify(section) + ".md");
  write_file_atomic(path, render_section(section, data, timestamp_now()));
  return path;
}

void Report::reset(const SoftwareInfo& software) const {
  if (!enabled_) return;
  std::error_code ec;
  for (const auto& f : kSectionFiles) fs::remove(dir_ / f, ec);
  fs::remove(dir_ / "sft.md", ec);
  fs::remove(dir_ / "report.md", ec);
  fs::remove_all(dir_ / kChartsDir, ec);
  std::string header = generate_header(software);
  header += fmt::format("Run started: {}\n\n---\n\n", timestamp_now());
  write_file_atomic(dir_ / "header.md", header);
  print0(fmt::format("Reset report and wrote header to {}", (dir_ / "header.md").string()));
}

// The newest metrics.jsonl of a project (by its last wall_time), drawn as charts; returns the markdown links.
std::string Report::charts_for(const std::string& project, const std::string& prefix, const std::string& stage_title,
                               std::optional<int64_t> start_time) const {
  struct Run {
    std::string name;
    double last_time = -1;
    std::map<std::string, ChartSeries> series;
  };
  std::optional<Run> best;
  std::error_code ec;
  fs::path project_dir = logs_dir_ / project;
  if (!fs::is_directory(project_dir, ec)) return "";
  for (const auto& entry : fs::directory_iterator(project_dir, ec)) {
    fs::path jsonl = entry.path() / "metrics.jsonl";
    if (!fs::is_regular_file(jsonl, ec)) continue;
    Run run;
    run.name = entry.path().filename().string();
    std::ifstream f(jsonl);
    std::string line;
    while (std::getline(f, line)) {
      auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!row.is_object() || !row.contains("step") || !row["step"].is_number()) continue;  // e.g. a torn last line
      double step = row["step"].get<double>();
      if (row.contains("wall_time") && row["wall_time"].is_number())
        run.last_time = std::max(run.last_time, row["wall_time"].get<double>());
      for (auto it = row.begin(); it != row.end(); ++it) {
        if (!it.value().is_number() || it.key() == "step" || it.key() == "wall_time") continue;
        auto& s = run.series[it.key()];
        s.label = it.key();
        s.x.push_back(step);
        s.y.push_back(it.value().get<double>());
      }
    }
    if (!best || run.last_time > best->last_time) best = std::move(run);
  }
  if (!best) return "";
  if (start_time && best->last_time < double(*start_time)) {
    print0(fmt::format("Warning: the newest {} metrics (run {}) predate this report's run, no charts for them", project,
                       best->name));
    return "";
  }
  struct Chart {
    const char* key;
    const char* file;
    const char* what;
    const char* y_label;
  };
  const std::vector<Chart> charts = {
      {"train/loss", "train-loss", "train loss", "loss"},
      {"val/bpb", "val-bpb", "validation bits per byte", "bpb"},
      {"reward", "reward", "mean reward", "reward"},
  };
  std::string md;
  for (const auto& c : charts) {
    auto it = best->series.find(c.key);
    if (it == best->series.end()) continue;
    std::string file = fmt::format("{}-{}.svg", prefix, c.file);
    std::string title = fmt::format("{}: {} (run {})", stage_title, c.what, best->name);
    write_file_atomic(dir_ / kChartsDir / file, svg_line_chart(title, "step", c.y_label, {it->second}));
    md += fmt::format("![{}: {}]({}/{})\n", stage_title, c.what, kChartsDir, file);
  }
  return md.empty() ? "" : "\n" + md;
}

fs::path Report::generate(const fs::path& copy_to) const {
  if (!enabled_) return {};
  fs::path report_file = dir_ / "report.md";
  print0(fmt::format("Generating report to {}", report_file.string()));
  std::error_code ec;
  fs::remove_all(dir_ / kChartsDir, ec);  // charts of an earlier generate may belong to other runs
  std::string out, bloat;
  std::optional<int64_t> start_time, end_time;
  fs::path header_file = dir_ / "header.md";
  if (fs::is_regular_file(header_file, ec)) {
    std::string header = read_file(header_file);
    out += header;
    start_time = extract_timestamp(header, "Run started:");
    auto b = header.find("### Bloat\n");
    if (b != std::string::npos) {
      b += 10;
      auto e = header.find("\n\n", b);
      bloat = header.substr(b, e == std::string::npos ? std::string::npos : e - b);
    }
  } else {
    bloat = "[bloat data missing]";
    print0(fmt::format("Warning: {} does not exist. Did you forget to run `nanochat report reset`?",
                       header_file.string()));
  }
  // Charts go after their stage's section (or in its place when the section was not logged).
  const std::map<std::string, std::array<std::string, 3>> stage_charts = {
      {"base-model-training.md", {"nanochat", "base", "Base model"}},
      {"chat-sft.md", {"nanochat-sft", "sft", "SFT"}},
      {"chat-rl.md", {"nanochat-rl", "rl", "Chat RL"}},
  };
  std::map<std::string, std::map<std::string, std::string>> metrics;
  for (const auto& name : kSectionFiles) {
    fs::path file = dir_ / name;
    if (name == "chat-sft.md" && !fs::exists(file, ec) && fs::exists(dir_ / "sft.md", ec)) file = dir_ / "sft.md";
    std::string charts;
    if (auto it = stage_charts.find(name); it != stage_charts.end())
      charts = charts_for(it->second[0], it->second[1], it->second[2], start_time);
    if (!fs::is_regular_file(file, ec)) {
      if (name != "base-model-loss.md") print0(fmt::format("Warning: {} does not exist, skipping", file.string()));
      if (!charts.empty()) out += charts + "\n";
      continue;
    }
    std::string section = read_file(file);
    if (name.find("rl") == std::string::npos)
      end_time = extract_timestamp(section, "timestamp:");  // RL is experimental
    if (name == "base-model-evaluation.md") metrics["base"] = extract_metrics(section, {"CORE"});
    if (name == "chat-evaluation-sft.md") metrics["sft"] = extract_metrics(section, kChatMetrics);
    if (name == "chat-evaluation-rl.md") metrics["rl"] = extract_metrics(section, {"GSM8K"});
    if (!charts.empty()) {
      // keep the section's closing blank line after the charts
      while (!section.empty() && section.back() == '\n') section.pop_back();
      section += "\n" + charts + "\n";
    }
    out += section + "\n";
  }
  out += "## Summary\n\n" + bloat + "\n\n" + summary_table(metrics) + "\n";
  if (start_time && end_time) {
    int64_t total = std::max<int64_t>(*end_time - *start_time, 0);
    out += fmt::format("Total wall clock time: {}h{}m\n", total / 3600, (total % 3600) / 60);
    // Cost = the header's hourly rate x the wall clock (nanochat computes the rate but never prints a total).
    auto header = read_file(header_file);
    auto pos = header.find("- Hourly Rate: ");
    if (pos != std::string::npos) {
      std::string rest =
          header.substr(pos + 15, header.find('\n', pos) - pos - 15);  // "$24.00/hour" / "¥12.00/hour (CNY)"
      auto digit = rest.find_first_of("0123456789");
      if (digit != std::string::npos) {
        std::string symbol = rest.substr(0, digit);
        double rate = std::atof(rest.c_str() + digit);
        out += fmt::format("Estimated cost: {}{:.2f} ({:.2f} h at {}{:.2f}/hour)\n", symbol,
                           rate * double(total) / 3600.0, double(total) / 3600.0, symbol, rate);
      }
    }
  } else {
    out += "Total wall clock time: unknown\n";
  }
  write_file_atomic(report_file, out);
  if (!copy_to.empty() && fs::absolute(copy_to) != fs::absolute(dir_)) {
    print0("Copying report.md to current directory for convenience");
    write_file_atomic(copy_to / "report.md", out);
    fs::remove_all(copy_to / kChartsDir, ec);
    if (fs::is_directory(dir_ / kChartsDir, ec))
      fs::copy(dir_ / kChartsDir, copy_to / kChartsDir,
               fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }
  return report_file;
}

Report get_report() { return Report(get_base_dir() / "report", is_master_process()); }

}  // namespace nanochat
