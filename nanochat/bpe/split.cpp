// split: see split.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "nanochat/bpe/split.h"

#include <pcre2.h>

#include <atomic>

#include "nanochat/common.h"
#include "nanochat/bpe/utf8.h"

namespace nanochat {

namespace {

// Rust's regex (which fancy_regex uses) takes \s as the Unicode White_Space property. PCRE2's UCP \s is
// "separator category + ASCII controls", which misses U+0085 (NEXT LINE). Spell \s and \S out so both agree.
constexpr const char* kWhiteSpace =
    R"(\t-\r\x20\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string translate_pattern(const std::string& pat) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pat.size(); i++) {
    char c = pat[i];
    if (c == '\\' && i + 1 < pat.size()) {
      char d = pat[i + 1];
      i++;
      if (d == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (d == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else if (d == 'S') {
        fail("split pattern uses \\S inside a character class, which is not supported: {}", pat);
      } else {
        out += c;
        out += d;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      if (i + 1 < pat.size() && pat[i + 1] == '^') out += pat[++i];
      if (i + 1 < pat.size() && pat[i + 1] == ']') out += pat[++i];  // a literal ']' first in a class
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

// Per-thread match data and JIT stack; one per (thread, Splitter) pair, made on first use.
struct ThreadState {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ~ThreadState() {
    if (md) pcre2_match_data_free(md);
    if (mctx) pcre2_match_context_free(mctx);
    if (stack) pcre2_jit_stack_free(stack);
  }
};

}  // namespace

struct Splitter::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  uint64_t serial = 0;
};

static uint64_t next_serial() {
  static std::atomic<uint64_t> counter{1};
  return counter++;
}

Splitter::Splitter(const std::string& pattern) : pattern_(pattern), impl_(std::make_unique<Impl>()) {
  std::string translated = translate_pattern(pattern);
  int err = 0;
  PCRE2_SIZE erroff = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &erroff, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail("cannot compile split pattern at offset {}: {} (pattern {})", erroff, reinterpret_cast<char*>(msg), pattern);
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
  impl_->serial = next_serial();
}

Splitter::~Splitter() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

bool Splitter::next_match(std::string_view text, size_t pos, size_t& start, size_t& end) const {
  // Thread-local scratch keyed by the splitter's serial number (splitters can be destroyed and recreated).
  thread_local uint64_t tl_serial = 0;
  thread_local std::unique_ptr<ThreadState> tl;
  if (tl_serial != impl_->serial) {
    tl = std::make_unique<ThreadState>();
    tl->md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
    tl->mctx = pcre2_match_context_create(nullptr);
    if (impl_->jit) {
      tl->stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
      pcre2_jit_stack_assign(tl->mctx, nullptr, tl->stack);
    }
    tl_serial = impl_->serial;
  }
  while (pos < text.size()) {
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, tl->md, tl->mctx)
                        : pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, tl->md, tl->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("split regex failed at byte {}: {}", pos, reinterpret_cast<char*>(msg));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(tl->md);
    start = ov[0];
    end = ov[1];
    if (end > start) return true;
    // An empty match yields nothing (fancy_regex's find_iter would yield an empty piece, which encodes to
    // nothing); step over one character and search again.
    size_t step = utf8_sequence_length(text, start);
    pos = start + (step ? step : 1);
  }
  return false;
}

std::vector<std::string_view> Splitter::split(std::string_view text) const {
  std::vector<std::string_view> out;
  for_each(text, [&](std::string_view p) { out.push_back(p); });
  return out;
}

}  // namespace nanochat
