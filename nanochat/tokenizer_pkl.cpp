// tokenizer_pkl: see tokenizer_pkl.h.
#include "nanochat/tokenizer_pkl.h"

#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "nanochat/common.h"

namespace nanochat {

namespace {

// Emits pickle opcodes the way CPython's C pickler does for this object graph. Output is built in frames: before
// each object is saved, a frame that has reached 64 KiB is closed (FRAME + 8-byte length + its bytes).
class PklWriter {
 public:
  std::string finish() {
    op('.');  // STOP
    commit(true);
    return std::move(out_);
  }
  void begin() { out_ = std::string("\x80\x04", 2); }  // PROTO 4, outside any frame
  void op(char c) { frame_.push_back(c); }
  void memoize() { op('\x94'); }
  void save_start() { commit(false); }

  void save_str(std::string_view s) {
    save_start();
    if (s.size() < 256) {
      op('\x8c');  // SHORT_BINUNICODE
      frame_.push_back(char(s.size()));
    } else {
      op('X');  // BINUNICODE
      put_u32(uint32_t(s.size()));
    }
    frame_.append(s);
    memoize();
  }
  void save_bytes(std::string_view b) {
    save_start();
    if (b.size() >= 64 * 1024) fail("cannot pickle a token of {} bytes (64 KiB or more)", b.size());
    if (b.size() < 256) {
      op('C');  // SHORT_BINBYTES
      frame_.push_back(char(b.size()));
    } else {
      op('B');  // BINBYTES
      put_u32(uint32_t(b.size()));
    }
    frame_.append(b);
    memoize();
  }
  void save_int(int32_t v) {
    save_start();
    if (v >= 0 && v <= 0xFF) {
      op('K');
      frame_.push_back(char(v));
    } else if (v >= 0 && v <= 0xFFFF) {
      op('M');
      frame_.push_back(char(v & 0xFF));
      frame_.push_back(char(v >> 8));
    } else {
      op('J');
      put_u32(uint32_t(v));
    }
  }
  // A dict: EMPTY_DICT, MEMOIZE, then items in batches of 1000 (a single item uses SETITEM).
  template <typename Items, typename SaveKey, typename SaveValue>
  void save_dict(const Items& items, SaveKey save_key, SaveValue save_value) {
    save_start();
    op('}');
    memoize();
    if (items.empty()) return;
    if (items.size() == 1) {
      save_key(items[0]);
      save_value(items[0]);
      op('s');
      return;
    }
    size_t i = 0, in_batch;
    do {
      op('(');  // MARK
      in_batch = 0;
      while (i < items.size()) {
        save_key(items[i]);
        save_value(items[i]);
        i++;
        if (++in_batch == 1000) break;
      }
      op('u');  // SETITEMS
    } while (in_batch == 1000);
  }

 private:
  void put_u32(uint32_t v) {
    for (int k = 0; k < 4; k++) frame_.push_back(char((v >> (8 * k)) & 0xFF));
  }
  void commit(bool force) {
    if (frame_.empty() || (!force && frame_.size() < 64 * 1024)) return;
    if (frame_.size() >= 4) {
      out_.push_back('\x95');  // FRAME
      uint64_t n = frame_.size();
      for (int k = 0; k < 8; k++) out_.push_back(char((n >> (8 * k)) & 0xFF));
    }
    out_ += frame_;
    frame_.clear();
  }
  std::string out_, frame_;
};

}  // namespace

namespace {

// The few value kinds this file holds. Dicts keep their items in order.
struct PVal {
  enum Kind { kNone, kInt, kStr, kBytes, kDict, kTuple, kMark, kClass, kObject } kind = kNone;
  int64_t i = 0;
  std::string s;  // str / bytes / class name
  std::vector<std::pair<std::shared_ptr<PVal>, std::shared_ptr<PVal>>> items;  // dict
  std::shared_ptr<PVal> state;                                                 // object
};
using P = std::shared_ptr<PVal>;

class PklReader {
 public:
  PklReader(std::string_view b, const std::string& what) : b_(b), what_(what) {}

  P run() {
    std::vector<P> stack;
    std::vector<size_t> marks;
    std::vector<P> memo;
    auto pop = [&]() {
      if (stack.empty()) bad("stack underflow");
      P v = stack.back();
      stack.pop_back();
      return v;
    };
    auto make = [](PVal::Kind k) {
      auto v = std::make_shared<PVal>();
      v->kind = k;
      return v;
    };
    while (true) {
      uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;        // PROTO
        case 0x95: take(8); break;     // FRAME: frames are transparent
        case 0x94: memo.push_back(stack.empty() ? bad("MEMOIZE on empty stack") : stack.back()); break;
        case 'q': put(memo, u8(), stack); break;        // BINPUT
        case 'r': put(memo, u32(), stack); break;       // LONG_BINPUT
        case 'h': stack.push_back(get(memo, u8())); break;   // BINGET
        case 'j': stack.push_back(get(memo, u32())); break;  // LONG_BINGET
        case 0x8c: { auto v = make(PVal::kStr); v->s = std::string(take(u8())); stack.push_back(v); break; }
        case 'X': { auto v = make(PVal::kStr); v->s = std::string(take(u32())); stack.push_back(v); break; }
        case 'C': { auto v = make(PVal::kBytes); v->s = std::string(take(u8())); stack.push_back(v); break; }
        case 'B': { auto v = make(PVal::kBytes); v->s = std::string(take(u32())); stack.push_back(v); break; }
        case 'K': { auto v = make(PVal::kInt); v->i = u8(); stack.push_back(v); break; }
        case 'M': { auto v = make(PVal::kInt); v->i = u8(); v->i |= int64_t(u8()) << 8; stack.push_back(v); break; }
        case 'J': { auto v = make(PVal::kInt); v->i = int32_t(u32()); stack.push_back(v); break; }
        case 0x8a: {  // LONG1: little-endian two's complement
          size_t n = u8();
          std::string_view d = take(n);
          if (n > 8) bad("integer too large");
          int64_t x = 0;
          for (size_t k = 0; k < n; k++) x |= int64_t(uint8_t(d[k])) << (8 * k);
          if (n && n < 8 && (uint8_t(d[n - 1]) & 0x80)) x -= int64_t(1) << (8 * n);
          auto v = make(PVal::kInt);
          v->i = x;
          stack.push_back(v);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          P name = pop(), mod = pop();
          if (mod->kind != PVal::kStr || name->kind != PVal::kStr) bad("STACK_GLOBAL needs two strings");
          auto v = make(PVal::kClass);
          v->s = mod->s + "." + name->s;
          stack.push_back(v);
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n" (protocols 0-3)
          std::string mod = line(), name = line();
          auto v = make(PVal::kClass);
          v->s = mod + "." + name;
          stack.push_back(v);
          break;
        }
        case ')': stack.push_back(make(PVal::kTuple)); break;  // EMPTY_TUPLE
        case 0x81: {  // NEWOBJ
          P args = pop(), cls = pop();
          if (cls->kind != PVal::kClass || args->kind != PVal::kTuple) bad("NEWOBJ needs a class and a tuple");
          auto v = make(PVal::kObject);
          v->s = cls->s;
          stack.push_back(v);
          break;
        }
        case '}': stack.push_back(make(PVal::kDict)); break;
        case '(': marks.push_back(stack.size()); break;
        case 's': {  // SETITEM
          P v = pop(), k = pop();
          if (stack.empty() || stack.back()->kind != PVal::kDict) bad("SETITEM without a dict");
          stack.back()->items.emplace_back(k, v);
          break;
        }
        case 'u': {  // SETITEMS
          if (marks.empty()) bad("SETITEMS without MARK");
          size_t m = marks.back();
          marks.pop_back();
          if (m == 0 || m > stack.size() || (stack.size() - m) % 2) bad("bad SETITEMS");
          P d = stack[m - 1];
          if (d->kind != PVal::kDict) bad("SETITEMS without a dict");
          for (size_t k = m; k < stack.size(); k += 2) d->items.emplace_back(stack[k], stack[k + 1]);
          stack.resize(m);
          break;
        }
        case 'b': {  // BUILD
          P st = pop();
          if (stack.empty() || stack.back()->kind != PVal::kObject) bad("BUILD without an object");
          stack.back()->state = st;
          break;
        }
        case '.': {  // STOP
          if (stack.size() != 1) bad(fmt::format("STOP with {} items on the stack", stack.size()));
          return stack.back();
        }
        default:
          bad(fmt::format("unsupported pickle opcode 0x{:02x} at byte {}", op, pos_ - 1));
      }
    }
  }

 private:
  [[noreturn]] P bad(const std::string& why) {
    fail("{} is not a tokenizer.pkl this program can read ({}); expected a pickled tiktoken Encoding", what_, why);
  }
  std::string_view take(size_t n) {
    if (n > b_.size() - pos_) bad("file ends early");
    std::string_view v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  uint8_t u8() { return uint8_t(take(1)[0]); }
  uint32_t u32() {
    std::string_view d = take(4);
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) v |= uint32_t(uint8_t(d[k])) << (8 * k);
    return v;
  }
  std::string line() {
    size_t nl = b_.find('\n', pos_);
    if (nl == std::string_view::npos) bad("unterminated GLOBAL");
    std::string s(b_.substr(pos_, nl - pos_));
    pos_ = nl + 1;
    return s;
  }
  void put(std::vector<P>& memo, uint32_t idx, std::vector<P>& stack) {
    if (stack.empty()) bad("PUT on empty stack");
    if (memo.size() <= idx) memo.resize(idx + 1);
    memo[idx] = stack.back();
  }
  P get(std::vector<P>& memo, uint32_t idx) {
    if (idx >= memo.size() || !memo[idx]) bad("GET of a missing memo entry");
    return memo[idx];
  }
  std::string_view b_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace

TiktokenState parse_tokenizer_pkl(std::string_view bytes, const std::string& what) {
  P root = PklReader(bytes, what).run();
  auto bad = [&](const std::string& why) -> void {
    fail("{} is not a tokenizer.pkl ({}); expected a pickled tiktoken Encoding", what, why);
  };
  if (root->kind != PVal::kObject || root->s != "tiktoken.core.Encoding") bad("the top object is not a tiktoken Encoding");
  if (!root->state || root->state->kind != PVal::kDict)
    bad("the Encoding's state is not a dict (registered encodings like cl100k_base are pickled by name only)");
  TiktokenState st;
  int seen = 0;
  for (const auto& [k, v] : root->state->items) {
    if (k->kind != PVal::kStr) bad("a state key is not a string");
    if (k->s == "name" || k->s == "pat_str") {
      if (v->kind != PVal::kStr) bad(k->s + " is not a string");
      (k->s == "name" ? st.name : st.pat_str) = v->s;
      seen |= k->s == "name" ? 1 : 2;
    } else if (k->s == "mergeable_ranks" || k->s == "special_tokens") {
      bool ranks = k->s == "mergeable_ranks";
      if (v->kind != PVal::kDict) bad(k->s + " is not a dict");
      for (const auto& [tk, tv] : v->items) {
        if (tk->kind != (ranks ? PVal::kBytes : PVal::kStr) || tv->kind != PVal::kInt || tv->i < 0 || tv->i > INT32_MAX)
          bad(k->s + " has an entry of the wrong type");
        (ranks ? st.mergeable_ranks : st.special_tokens).emplace_back(tk->s, int32_t(tv->i));
      }
      seen |= ranks ? 4 : 8;
    }
  }
  if (seen != 15) bad("the state lacks one of name, pat_str, mergeable_ranks, special_tokens");
  return st;
}

std::string write_tokenizer_pkl(const TiktokenState& st) {
  PklWriter w;
  w.begin();
  // Encoding object: STACK_GLOBAL 'tiktoken.core' 'Encoding', EMPTY_TUPLE, NEWOBJ, then its state and BUILD.
  w.save_start();
  w.save_str("tiktoken.core");
  w.save_str("Encoding");
  w.op('\x93');
  w.memoize();
  w.save_start();
  w.op(')');
  w.op('\x81');
  w.memoize();
  // The state dict's four items; its values are saved by kind.
  struct Item {
    const char* key;
    int kind;
  };
  std::vector<Item> items = {{"name", 0}, {"pat_str", 1}, {"mergeable_ranks", 2}, {"special_tokens", 3}};
  w.save_dict(
      items, [&](const Item& it) { w.save_str(it.key); },
      [&](const Item& it) {
        switch (it.kind) {
          case 0: w.save_str(st.name); break;
          case 1: w.save_str(st.pat_str); break;
          case 2:
            w.save_dict(
                st.mergeable_ranks, [&](const auto& kv) { w.save_bytes(kv.first); },
                [&](const auto& kv) { w.save_int(kv.second); });
            break;
          default:
            w.save_dict(
                st.special_tokens, [&](const auto& kv) { w.save_str(kv.first); },
                [&](const auto& kv) { w.save_int(kv.second); });
        }
      });
  w.op('b');  // BUILD
  return w.finish();
}

}  // namespace nanochat
