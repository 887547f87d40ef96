// Tests for nanochat/report: section files rendered like nanochat's, the header (git, hardware, bloat), the
// assembled report.md (order, summary table, wall clock and cost, charts from the logger's metrics.jsonl).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "nanochat/common.h"
#include "nanochat/logger.h"
#include "nanochat/report.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path dir;
  TempDir() {
    static int n = 0;
    dir = fs::temp_directory_path() / fmt::format("nanochat_report_{}_{}", ::getpid(), n++);
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
};

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) n++;
  return n;
}

// A header.md as reset() writes it, with a fixed start time and hourly rate.
std::string fake_header(const std::string& started, const std::string& rate_line) {
  return "# nanochat training report\n\nGenerated: " + started + "\n\n## Environment\n\n### Hardware\n" + rate_line +
         "\n### Software\n- libtorch: 1.13.0\n\n\n### Bloat\n- Characters: 1,000\n- Lines: 100\n- Files: 3\n"
         "- Tokens (approx): 250\n- Dependencies (setup.sh packages): 20\n\nRun started: " +
         started + "\n\n---\n\n";
}

}  // namespace

TEST(Report, SlugAndValues) {
  EXPECT_EQ(slugify("Base model training"), "base-model-training");
  EXPECT_EQ(slugify("Chat evaluation sft"), "chat-evaluation-sft");
  EXPECT_EQ(slugify("SFT"), "sft");
  EXPECT_EQ(format_report_value(0.12345), "0.1235");
  EXPECT_EQ(format_report_value(1.0), "1.0000");
  EXPECT_EQ(format_report_value(1e-5), "0.0000");
  EXPECT_EQ(format_report_value(9999), "9999");
  EXPECT_EQ(format_report_value(12345), "12,345");
  EXPECT_EQ(format_report_value(int64_t(1000000000000)), "1,000,000,000,000");
  EXPECT_EQ(format_report_value(uint64_t(560988160)), "560,988,160");
  EXPECT_EQ(format_report_value(-20000), "-20000");  // only ints >= 10000 get separators
  EXPECT_EQ(format_report_value(true), "True");
  EXPECT_EQ(format_report_value(nullptr), "None");
  EXPECT_EQ(format_report_value("SSSL"), "SSSL");
  EXPECT_EQ(format_report_value(ReportItem::parse(R"([1, 2.5, "a", 3.0, null, true])")),
            "[1, 2.5, 'a', 3.0, None, True]");
  EXPECT_EQ(with_thousands(999), "999");
  EXPECT_EQ(with_thousands(1000), "1,000");
}

TEST(Report, SectionMatchesNanochat) {
  ReportItem config;
  config["depth"] = 4;
  config["lr"] = 0.02;
  config["num_params"] = 123456;
  config["flag"] = true;
  config["none"] = nullptr;
  config["name"] = "d4";
  config["list"] = {1, 2.5, "a"};
  std::string text = render_section("Base model training",
                                    {config, nullptr, ReportItem(""), ReportItem::object(), ReportItem("free text\n"),
                                     ReportItem{{"Minimum validation bpb", 0.8123}, {"Steps", 5000}}},
                                    "2026-01-01 10:00:00");
  EXPECT_EQ(
      text,
      "## Base model training\ntimestamp: 2026-01-01 10:00:00\n\n- depth: 4\n- lr: 0.0200\n- num_params: 123,456\n"
      "- flag: True\n- none: None\n- name: d4\n- list: [1, 2.5, 'a']\nfree text\n"
      "- Minimum validation bpb: 0.8123\n- Steps: 5000\n\n");
  EXPECT_THROW(render_section("x", {ReportItem::array({1, 2})}, "t"), Error);
  // A plain nlohmann::json config (what the scripts hold) converts; its keys come out sorted.
  nlohmann::json cfg = {{"run", "dummy"}, {"depth", 20}};
  EXPECT_EQ(render_section("x", {ReportItem(cfg)}, "t"), "## x\ntimestamp: t\n\n- depth: 20\n- run: dummy\n\n");
}

TEST(Report, LogWritesOnlyWhenEnabled) {
  TempDir tmp;
  Report report(tmp.dir / "report");
  fs::path p = report.log("Tokenizer training", {ReportItem{{"vocab_size", 32768}}});
  EXPECT_EQ(p, tmp.dir / "report" / "tokenizer-training.md");
  std::string text = read_file(p);
  EXPECT_EQ(text.rfind("## Tokenizer training\ntimestamp: ", 0), 0u);
  EXPECT_TRUE(extract_timestamp(text, "timestamp:").has_value());
  EXPECT_NE(text.find("- vocab_size: 32,768\n"), std::string::npos);
  Report off(tmp.dir / "off", /*enabled=*/false);
  EXPECT_EQ(off.log("Tokenizer training", {ReportItem{{"a", 1}}}), fs::path());
  EXPECT_FALSE(fs::exists(tmp.dir / "off"));
}

TEST(Report, SummaryTableMatchesNanochat) {
  std::map<std::string, std::map<std::string, std::string>> m = {
      {"base", {{"CORE", "0.2219"}}},
      {"sft",
       {{"ARC-Easy", "0.4588"},
        {"ARC-Challenge", "0.3635"},
        {"MMLU", "0.3370"},
        {"GSM8K", "0.0250"},
        {"HumanEval", "0.0915"},
        {"ChatCORE", "0.2500"}}},
      {"rl", {{"GSM8K", "0.0750"}}},
  };
  EXPECT_EQ(summary_table(m),
            "| Metric          | BASE     | SFT      | RL       |\n"
            "|-----------------|----------|----------|----------|\n"
            "| CORE            | 0.2219   | -        | -        |\n"
            "| ARC-Challenge   | -        | 0.3635   | -        |\n"
            "| ARC-Easy        | -        | 0.4588   | -        |\n"
            "| GSM8K           | -        | 0.0250   | 0.0750   |\n"
            "| HumanEval       | -        | 0.0915   | -        |\n"
            "| MMLU            | -        | 0.3370   | -        |\n"
            "| ChatCORE        | -        | 0.2500   | -        |\n");
  auto got = extract_metrics("## Chat evaluation sft\ntimestamp: x\n\n- ARC-Easy: 0.4588\n- ChatCORE metric: 0.25\n",
                             {"ARC-Easy", "ChatCORE", "MMLU"});
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"ARC-Easy", "0.4588"}, {"ChatCORE", "0.25"}}));
}

TEST(Report, HourlyRates) {
  auto h100 = estimate_hourly_rate("NVIDIA H100 80GB HBM3", 8);
  ASSERT_TRUE(h100);
  EXPECT_DOUBLE_EQ(h100->amount, 24.0);
  EXPECT_EQ(h100->symbol, "$");
  EXPECT_DOUBLE_EQ(estimate_hourly_rate("NVIDIA A100-SXM4-80GB", 1)->amount, 1.79);
  EXPECT_DOUBLE_EQ(estimate_hourly_rate("Tesla V100-SXM2-16GB", 2)->amount, 1.10);
  EXPECT_DOUBLE_EQ(estimate_hourly_rate("NVIDIA GeForce RTX 4090", 2)->amount, 4.0);
  auto ascend = estimate_hourly_rate("Ascend 910B2", 4);
  EXPECT_DOUBLE_EQ(ascend->amount, 12.0);
  EXPECT_EQ(ascend->currency, "CNY");
  EXPECT_FALSE(estimate_hourly_rate("", 0));
}

TEST(Report, NvidiaSmiOutput) {
  const std::string csv =
      "0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA H100 80GB HBM3, 81559\n2, NVIDIA H100 80GB HBM3, 81559\n";
  const std::string banner =
      "+---------------------------------------------------------------------------------------+\n"
      "| NVIDIA-SMI 535.104.05             Driver Version: 535.104.05   CUDA Version: 12.2     |\n";
  GpuInfo all = parse_nvidia_smi(csv, banner, "");
  ASSERT_EQ(all.names.size(), 3u);
  EXPECT_EQ(all.names[0], "NVIDIA H100 80GB HBM3");
  EXPECT_NEAR(all.memory_gb[0], 79.65, 0.01);
  EXPECT_EQ(all.cuda_version, "12.2");
  EXPECT_EQ(parse_nvidia_smi(csv, banner, "0,2").names.size(), 2u);
  EXPECT_EQ(parse_nvidia_smi(csv, banner, "GPU-5f3c").names.size(), 3u);  // UUIDs: not filtered
  EXPECT_TRUE(parse_nvidia_smi("", "", "").names.empty());
}

TEST(Report, HeaderDescribesGitHardwareAndBloat) {
  TempDir tmp;
  fs::path src = tmp.dir / "src";
  fs::create_directories(src / "scripts");
  write_file_atomic(src / "a.cpp", "int main() {}\n// two\n");
  write_file_atomic(src / "b.h", "#pragma once\n");
  write_file_atomic(src / "scripts" / "setup.sh", "PACKAGES=(\n  cmake ninja-build\n  libfmt-dev\n)\n");
  write_file_atomic(src / "data.bin", "not counted\n");
  std::string q = "'" + src.string() + "'";
  int rc = std::system(("cd " + q +
                        " && git init -q -b main && git add -A && git -c user.name=t -c user.email=t@t "
                        "commit -q -m 'first commit line' -m 'body' >/dev/null 2>&1")
                           .c_str());
  if (rc != 0) GTEST_SKIP() << "git is not available";
  SoftwareInfo sw;
  sw.torch_version = "1.13.0";
  sw.source_dir = src;
  std::string h = generate_header(sw);
  EXPECT_EQ(h.rfind("# nanochat training report\n\nGenerated: ", 0), 0u);
  EXPECT_NE(h.find("- Branch: main\n"), std::string::npos) << h;
  EXPECT_NE(h.find(" (clean)\n- Message: first commit line\n"), std::string::npos) << h;
  EXPECT_NE(h.find("- Platform: Linux\n"), std::string::npos);
  EXPECT_NE(h.find("- CPUs: "), std::string::npos);
  EXPECT_NE(h.find(" GB\n"), std::string::npos);
  EXPECT_TRUE(h.find("- GPUs: None available\n") != std::string::npos || h.find("- GPU Memory: ") != std::string::npos);
  EXPECT_NE(h.find("- libtorch: 1.13.0\n"), std::string::npos);
  // a.cpp (2 lines, 21 chars) + b.h (1 line, 13 chars) + setup.sh (4 lines, 46 chars); data.bin is not source.
  EXPECT_NE(h.find("### Bloat\n- Characters: 80\n- Lines: 7\n- Files: 3\n- Tokens (approx): 20\n"
                   "- Dependencies (setup.sh packages): 3\n\n"),
            std::string::npos)
      << h;
  write_file_atomic(src / "a.cpp", "changed\n");
  EXPECT_NE(generate_header(sw).find(" (dirty)\n"), std::string::npos);
  sw.source_dir = tmp.dir / "nowhere";
  std::string none = generate_header(sw);
  EXPECT_NE(none.find("- Branch: unknown\n- Commit: unknown (clean)\n"), std::string::npos);
}

TEST(Report, ResetThenGenerate) {
  TempDir tmp;
  Report report(tmp.dir / "report");
  report.log("Base model evaluation", {ReportItem{{"CORE metric", 0.2}}});
  write_file_atomic(tmp.dir / "report" / "sft.md", "## SFT\n");
  SoftwareInfo sw;
  sw.source_dir = tmp.dir;
  report.reset(sw);
  EXPECT_FALSE(fs::exists(tmp.dir / "report" / "base-model-evaluation.md"));
  EXPECT_FALSE(fs::exists(tmp.dir / "report" / "sft.md"));
  std::string header = read_file(tmp.dir / "report" / "header.md");
  EXPECT_TRUE(extract_timestamp(header, "Run started:").has_value());
  EXPECT_EQ(header.substr(header.size() - 7), "\n\n---\n\n");
  report.log("Tokenizer training", {ReportItem{{"vocab_size", 32768}}});
  fs::path out = tmp.dir / "cwd";
  fs::create_directories(out);
  fs::path md = report.generate(out);
  std::string text = read_file(md);
  EXPECT_EQ(text.rfind(header, 0), 0u);
  EXPECT_NE(text.find("## Tokenizer training\n"), std::string::npos);
  EXPECT_NE(text.find("## Summary\n\n- Unknown: "), std::string::npos);  // tmp.dir is not a git checkout
  EXPECT_NE(text.find("Total wall clock time: 0h0m\n"), std::string::npos);
  EXPECT_EQ(read_file(out / "report.md"), text);
}

TEST(Report, GenerateAssemblesSectionsSummaryCostAndCharts) {
  TempDir tmp;
  fs::path dir = tmp.dir / "report";
  fs::create_directories(dir);
  write_file_atomic(dir / "header.md", fake_header("2026-01-01 10:00:00",
                                                   "- GPUs: 8x NVIDIA H100 80GB HBM3\n- Hourly Rate: $24.00/hour\n"));
  auto section = [&](const std::string& file, const std::string& title, const std::string& time,
                     const std::string& body) {
    write_file_atomic(dir / file, "## " + title + "\ntimestamp: " + time + "\n\n" + body + "\n");
  };
  section("tokenizer-training.md", "Tokenizer training", "2026-01-01 10:05:00", "- vocab_size: 32,768\n");
  section("base-model-training.md", "Base model training", "2026-01-01 12:00:00", "- Minimum validation bpb: 0.8123\n");
  section("base-model-evaluation.md", "Base model evaluation", "2026-01-01 12:30:00", "- CORE metric: 0.2219\n");
  section("sft.md", "SFT", "2026-01-01 13:00:00", "- Training rows: 10\n");
  section("chat-evaluation-sft.md", "Chat evaluation sft", "2026-01-01 13:25:30",
          "- ARC-Easy: 0.4588\n- MMLU: 0.3370\n- ChatCORE metric: 0.2500\n");
  section("chat-evaluation-rl.md", "Chat evaluation rl", "2026-01-01 20:00:00", "- GSM8K: 0.0750\n");
  // metrics.jsonl of two base runs: the newer one is charted; an SFT run from before "Run started" is stale.
  auto jsonl = [&](const std::string& project, const std::string& run, const std::string& body) {
    write_file_atomic(tmp.dir / "logs" / project / run / "metrics.jsonl", body);
  };
  std::optional<int64_t> t0 = extract_timestamp("Run started: 2026-01-01 10:00:00", "Run started:");
  ASSERT_TRUE(t0);
  double w = double(*t0);
  jsonl("nanochat", "old", fmt::format("{{\"step\": 0, \"wall_time\": {}, \"train/loss\": 9.0}}\n", w + 10));
  jsonl("nanochat", "d12",
        fmt::format("{{\"step\": 0, \"wall_time\": {0}, \"train/loss\": 10.5}}\n"
                    "{{\"step\": 0, \"wall_time\": {0}, \"val/bpb\": 3.1}}\n"
                    "{{\"step\": 100, \"wall_time\": {1}, \"train/loss\": 5.5}}\n"
                    "{{\"step\": 200, \"wall_time\": {2}, \"train/loss\": null}}\n"
                    "{{\"step\": 200, \"wall_time\": {2}, \"val/bpb\": 1.2}}\n{{\"step\": 3",  // torn last line
                    w + 60, w + 120, w + 180));
  jsonl("nanochat-sft", "s", fmt::format("{{\"step\": 0, \"wall_time\": {}, \"train/loss\": 2.0}}\n", w - 3600));
  fs::path cwd = tmp.dir / "cwd";
  fs::create_directories(cwd);
  Report report(dir);
  std::string text = read_file(report.generate(cwd));

  // Order: header, tokenizer, base training (+ charts), base eval, SFT (from sft.md), chat eval sft, chat eval rl.
  std::vector<std::string> order = {"# nanochat training report",
                                    "## Tokenizer training",
                                    "## Base model training",
                                    "![Base model: train loss](report-charts/base-train-loss.svg)",
                                    "![Base model: validation bits per byte](report-charts/base-val-bpb.svg)",
                                    "## Base model evaluation",
                                    "## SFT",
                                    "## Chat evaluation sft",
                                    "## Chat evaluation rl",
                                    "## Summary"};
  size_t pos = 0;
  for (const auto& s : order) {
    size_t p = text.find(s, pos);
    ASSERT_NE(p, std::string::npos) << "missing or out of order: " << s << "\n" << text;
    pos = p;
  }
  EXPECT_EQ(count(text, "## Tokenizer training"), 1u);
  EXPECT_EQ(text.find("sft-train-loss"), std::string::npos);  // stale SFT metrics are not charted
  EXPECT_NE(text.find("- Minimum validation bpb: 0.8123\n\n![Base model: train loss]"), std::string::npos) << text;
  EXPECT_NE(
      text.find("## Summary\n\n- Characters: 1,000\n- Lines: 100\n- Files: 3\n- Tokens (approx): 250\n"
                "- Dependencies (setup.sh packages): 20\n\n| Metric          | BASE     | SFT      | RL       |\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("| CORE            | 0.2219   | -        | -        |\n"), std::string::npos);
  EXPECT_NE(text.find("| GSM8K           | -        | -        | 0.0750   |\n"), std::string::npos);
  EXPECT_NE(text.find("| ChatCORE        | -        | 0.2500   | -        |\n\n"), std::string::npos);
  // The end time is the last non-RL section (13:25:30): 3h25m; 3.425 h at $24/hour.
  EXPECT_NE(text.find("Total wall clock time: 3h25m\nEstimated cost: $82.20 (3.42 h at $24.00/hour)\n"),
            std::string::npos)
      << text;

  std::string loss_svg = read_file(dir / "report-charts" / "base-train-loss.svg");
  EXPECT_NE(loss_svg.find("Base model: train loss (run d12)"), std::string::npos);
  EXPECT_NE(loss_svg.find("<polyline"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "report-charts" / "base-val-bpb.svg"));
  EXPECT_FALSE(fs::exists(dir / "report-charts" / "sft-train-loss.svg"));
  // Copied beside report.md in the working directory, links intact.
  EXPECT_EQ(read_file(cwd / "report.md"), text);
  EXPECT_EQ(read_file(cwd / "report-charts" / "base-train-loss.svg"), loss_svg);
}

TEST(Report, GenerateWithoutHeaderOrSections) {
  TempDir tmp;
  Report report(tmp.dir / "report");
  std::string text = read_file(report.generate(fs::path()));
  EXPECT_EQ(text,
            "## Summary\n\n[bloat data missing]\n\n| Metric          | BASE     | SFT      | RL       |\n"
            "|-----------------|----------|----------|----------|\n\nTotal wall clock time: unknown\n");
}

TEST(Report, AscendCostInYuan) {
  TempDir tmp;
  fs::path dir = tmp.dir / "report";
  fs::create_directories(dir);
  write_file_atomic(dir / "header.md", fake_header("2026-01-01 10:00:00", "- Hourly Rate: ¥12.00/hour (CNY)\n"));
  write_file_atomic(dir / "base-model-training.md", "## Base model training\ntimestamp: 2026-01-01 12:00:00\n\n");
  std::string text = read_file(Report(dir).generate(fs::path()));
  EXPECT_NE(text.find("Total wall clock time: 2h0m\nEstimated cost: ¥24.00 (2.00 h at ¥12.00/hour)\n"),
            std::string::npos)
      << text;
}
