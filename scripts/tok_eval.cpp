// tok_eval: how well our tokenizer compresses text compared with GPT-2's and GPT-4's (scripts/tok_eval.py).
//   nanochat tok_eval --gpt2 gpt2.tiktoken --gpt4 cl100k_base.tiktoken
// Nothing is downloaded: pass tiktoken's rank files (gpt2 / cl100k_base in .tiktoken form), or put them at
// <base_dir>/tiktoken/gpt2.tiktoken and <base_dir>/tiktoken/cl100k_base.tiktoken and run it without flags; a baseline
// whose file is in neither place is skipped with a note (with neither, our own ratios are still measured). Texts: five
// samples written for this program (news, Korean, code, math, science), plus the first row group of the first train
// shard
// ("fwe-train") and of the val shard ("fwe-val") when the pretraining shards are available. Every tokenizer must
// round-trip every text exactly. Ratio = UTF-8 bytes per token (higher is better).
// The report section "Tokenizer evaluation" holds the comparison tables, as nanochat's does.
#include <fmt/format.h>

#include "nanochat/common.h"
#include "nanochat/dataset.h"
#include "nanochat/cli/flags.h"
#include "nanochat/report.h"
#include "nanochat/tokenizer.h"

using namespace nanochat;

namespace {

const char* kNews =
    R"(Livestock officials in three southern counties confirmed on Tuesday that traps set along the river corridor
caught adult New World screwworm flies for the second week in a row, prompting an emergency quarantine on cattle
movements. The parasite, whose larvae burrow into open wounds of warm-blooded animals, had been pushed back to
Central America decades ago by releasing billions of sterile males bred in dedicated facilities. "We are not in a
panic, but we are in a hurry," said the state veterinarian, who asked ranchers to inspect calves daily, treat
navels and ear tags promptly, and report any wound that smells of rot or shows moving larvae. Agriculture
officials said a new sterile-fly dispersal center will open next spring, and that aircraft would begin dropping
sterile flies over the affected area within 10 days. Hunters were asked to check harvested deer as well.)";

const char* kKorean = R"(오늘의 주요 뉴스 | 경제 · 사회 · 문화
서울시는 내년부터 대중교통 통합 정기권의 적용 범위를 수도권 광역버스까지 넓힌다고 밝혔다. 시 관계자는 "출퇴근 시간대
이용객의 교통비 부담을 줄이기 위한 조치"라고 설명했다. 한편 기상청은 이번 주말 중부 지방에 첫눈이 내릴 가능성이 있다고
예보했다. 구독하기 · 기사 제보 · 광고 문의 © 2025 한빛일보. 무단 전재 및 재배포 금지.)";

const char* kCode = R"(class BasicTokenizer:
    """Byte-level BPE in a few lines: train on a string, then encode and decode."""

    def __init__(self):
        self.merges = {}  # (int, int) -> int
        self.vocab = {i: bytes([i]) for i in range(256)}

    @staticmethod
    def _pair_counts(ids):
        counts = {}
        for a, b in zip(ids, ids[1:]):
            counts[(a, b)] = counts.get((a, b), 0) + 1
        return counts

    @staticmethod
    def _replace(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    def train(self, text, vocab_size):
        ids = list(text.encode("utf-8"))
        for new_id in range(256, vocab_size):
            counts = self._pair_counts(ids)
            if not counts:
                break
            pair = max(counts, key=counts.get)
            ids = self._replace(ids, pair, new_id)
            self.merges[pair] = new_id
            self.vocab[new_id] = self.vocab[pair[0]] + self.vocab[pair[1]]

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")
)";

const char* kMath = R"(\documentclass{article}
\usepackage{amsmath,amssymb,amsthm}
\newtheorem{proposition}{Proposition}
\begin{document}
\begin{proposition}
For every integer $n \geq 1$,
\[ \sum_{k=1}^{n} k^3 = \left( \sum_{k=1}^{n} k \right)^2 = \frac{n^2 (n+1)^2}{4}. \]
\end{proposition}
\begin{proof}
We argue by induction on $n$. For $n = 1$ both sides equal $1$. Suppose the identity holds for some $n \geq 1$.
Then
\begin{align*}
\sum_{k=1}^{n+1} k^3 &= \frac{n^2 (n+1)^2}{4} + (n+1)^3 \\
  &= \frac{(n+1)^2 \left( n^2 + 4n + 4 \right)}{4} \\
  &= \frac{(n+1)^2 (n+2)^2}{4},
\end{align*}
which is the claim for $n+1$. Since $\sum_{k=1}^{n} k = n(n+1)/2$, the middle expression agrees as well.
\end{proof}
\end{document})";

const char* kScience =
    R"(Photosynthesis turns light into chemical energy. In the thylakoid membranes of the chloroplast, chlorophyll
absorbs photons mostly in the blue and red parts of the spectrum; the energy splits water molecules, releasing
oxygen (O2) and driving an electron transport chain that pumps protons and makes ATP and NADPH. In the stroma,
the Calvin cycle then uses that ATP and NADPH to fix carbon dioxide: the enzyme RuBisCO attaches CO2 to
ribulose-1,5-bisphosphate, and after a series of reductions the plant exports three-carbon sugars that become
glucose, sucrose and starch. Overall: 6 CO2 + 6 H2O + light -> C6H12O6 + 6 O2.)";

struct Result {
  size_t bytes = 0, tokens = 0;
  double ratio = 0;
};

// Prints the colored table and appends the markdown table to `markdown` (nanochat's report layout: a heading, a
// blank line, the table, a blank line).
void print_comparison(const std::string& baseline, const std::vector<std::pair<std::string, std::string>>& texts,
                      const std::vector<Result>& base, const std::vector<Result>& ours, std::string& markdown) {
  const char* green = "\033[92m";
  const char* red = "\033[91m";
  const char* reset = "\033[0m";
  print0f("\nComparison with {}:", baseline);
  print0(std::string(95, '='));
  print0f("{:<10} {:<8} {:<15} {:<15} {:<12} {:<10}", "Text Type", "Bytes", baseline, "Ours", "Relative", "Better");
  print0f("{:<10} {:<8} {:<7} {:<7} {:<7} {:<7} {:<12}", "", "", "Tokens", "Ratio", "Tokens", "Ratio", "Diff %");
  print0(std::string(95, '-'));
  markdown += fmt::format(
      "### Comparison with {}\n\n| Text Type | Bytes | {} Tokens | {} Ratio | Ours Tokens | Ours Ratio | Relative Diff "
      "% |\n|-----------|-------|--------------|--------------|-------------|------------|-----------------|\n",
      baseline, baseline, baseline);
  for (size_t i = 0; i < texts.size(); i++) {
    const Result &b = base[i], &o = ours[i];
    double diff = (double(b.tokens) - double(o.tokens)) / double(b.tokens) * 100.0;
    const char *bc = "", *oc = "", *dc = "";
    std::string better = "Tie";
    if (b.ratio > o.ratio) bc = green, oc = red, dc = red, better = baseline;
    if (o.ratio > b.ratio) bc = red, oc = green, dc = green, better = "Ours";
    print0f("{:<10} {:<8} {}{:<7}{} {}{:<7.2f}{} {}{:<7}{} {}{:<7.2f}{} {}{:+7.1f}%{}     {:<10}", texts[i].first,
            b.bytes, bc, b.tokens, reset, bc, b.ratio, reset, oc, o.tokens, reset, oc, o.ratio, reset, dc, diff, reset,
            better);
    markdown += fmt::format("| {} | {} | {} | {:.2f} | {} | {:.2f} | {:+.1f}% |\n", texts[i].first, b.bytes, b.tokens,
                            b.ratio, o.tokens, o.ratio, diff);
  }
  markdown += "\n";
}

}  // namespace

std::vector<std::string> tok_eval_shard_texts();

int tok_eval_main(int argc, char** argv) {
  std::string gpt2_path, gpt4_path, tokenizer_dir;
  Flags app{"Compare our tokenizer's compression with GPT-2 and GPT-4", "nanochat tok_eval"};
  app.add_option("--gpt2", gpt2_path, "GPT-2's rank file (default: <base_dir>/tiktoken/gpt2.tiktoken)");
  app.add_option("--gpt4", gpt4_path, "GPT-4's rank file (default: <base_dir>/tiktoken/cl100k_base.tiktoken)");
  app.add_option("--tokenizer-dir", tokenizer_dir, "our tokenizer (default: <base_dir>/tokenizer)");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  // Nothing is downloaded: the baselines' rank files come from the flags or a fixed place in the base dir. A file
  // named on the command line must exist; a missing default only skips that comparison.
  std::vector<std::string> skipped;
  auto rank_file = [&](std::string& path, const char* name, const char* flag, const char* label) {
    if (!path.empty()) {
      if (!std::filesystem::is_regular_file(path))
        fail("{} {}: no such file (tiktoken's {} ranks in .tiktoken form: base64 token, space, rank per line)", flag,
             path, name);
      return true;
    }
    std::filesystem::path def = get_base_dir() / "tiktoken" / (std::string(name) + ".tiktoken");
    if (std::filesystem::is_regular_file(def)) {
      path = def.string();
      return true;
    }
    skipped.push_back(fmt::format("{} (no rank file: pass {} FILE or put {} there)", label, flag, def.string()));
    print0f(
        "note: skipping the comparison with {}: {} not found; pass {} FILE (tiktoken's {} ranks in .tiktoken "
        "form: base64 token, space, rank per line)",
        label, def.string(), flag, name);
    return false;
  };
  bool have_gpt2 = rank_file(gpt2_path, "gpt2", "--gpt2", "GPT-2");
  bool have_gpt4 = rank_file(gpt4_path, "cl100k_base", "--gpt4", "GPT-4");

  std::vector<std::pair<std::string, std::string>> texts = {
      {"news", kNews}, {"korean", kKorean}, {"code", kCode}, {"math", kMath}, {"science", kScience}};
  std::vector<std::string> shard = tok_eval_shard_texts();
  if (shard.size() > 0 && !shard[0].empty()) texts.emplace_back("fwe-train", shard[0]);
  if (shard.size() > 1 && !shard[1].empty()) texts.emplace_back("fwe-val", shard[1]);

  // Ours first, then the baselines that are available.
  std::vector<std::pair<std::string, Tokenizer>> toks;
  toks.emplace_back("ours", Tokenizer::from_directory(tokenizer_dir.empty() ? get_base_dir() / "tokenizer"
                                                                            : std::filesystem::path(tokenizer_dir)));
  if (have_gpt2) toks.emplace_back("GPT-2", Tokenizer::from_pretrained("gpt2", gpt2_path));
  if (have_gpt4) toks.emplace_back("GPT-4", Tokenizer::from_pretrained("cl100k_base", gpt4_path));
  std::vector<std::vector<Result>> results;
  for (const auto& [tname, tok] : toks) {
    std::vector<Result> rs;
    for (const auto& [name, text] : texts) {
      auto ids = tok.encode(text);
      if (tok.decode(ids) != text) fail("tokenizer {} does not round-trip the {} text", tname, name);
      Result r{text.size(), ids.size(), ids.empty() ? 0.0 : double(text.size()) / double(ids.size())};
      rs.push_back(r);
    }
    results.push_back(std::move(rs));
  }
  print0("\nVocab sizes:");
  for (size_t k = 1; k < toks.size(); k++) print0f("{}: {}", toks[k].first, toks[k].second.get_vocab_size());
  print0f("Ours: {}", toks[0].second.get_vocab_size());
  std::string markdown;
  for (size_t k = 1; k < toks.size(); k++) print_comparison(toks[k].first, texts, results[k], results[0], markdown);
  if (toks.size() == 1) {
    // No baseline at all: still measure ours, so the run has numbers to compare later.
    print0("\nOur tokenizer:");
    markdown +=
        "### Our tokenizer\n\n| Text Type | Bytes | Ours Tokens | Ours Ratio "
        "|\n|-----------|-------|-------------|------------|\n";
    for (size_t i = 0; i < texts.size(); i++) {
      const Result& o = results[0][i];
      print0f("{:<10} {:<8} {:<7} {:<7.2f}", texts[i].first, o.bytes, o.tokens, o.ratio);
      markdown += fmt::format("| {} | {} | {} | {:.2f} |\n", texts[i].first, o.bytes, o.tokens, o.ratio);
    }
    markdown += "\n";
  }
  for (const auto& s : skipped) markdown += fmt::format("Not compared: {}\n", s);
  print0("\nMarkdown tables (for the report):");
  print0(markdown);
  if (markdown.ends_with("\n\n")) markdown.pop_back();  // nanochat's section: the tables joined by blank lines
  get_report().log("Tokenizer evaluation", {ReportItem(markdown)});
  return 0;
}

// The first row group of the first train shard and of the val shard, each joined with "\n"; empty when the
// shards are not there (a note says so and the five samples are still compared).
std::vector<std::string> tok_eval_shard_texts() {
  auto first_row_group = [](const char* split) {
    std::string text;
    parquets_iter_batched(split, 0, 1, [&](std::vector<std::string>&& docs) {
      for (size_t i = 0; i < docs.size(); i++) text += (i ? "\n" : "") + docs[i];
      return false;
    });
    return text;
  };
  try {
    return {first_row_group("train"), first_row_group("val")};
  } catch (const Error& e) {
    print0f("note: skipping fwe-train/fwe-val ({})", e.what());
    return {};
  }
}
