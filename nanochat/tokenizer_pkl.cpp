// tokenizer_pkl: see tokenizer_pkl.h. Reading goes through the generic pickle reader (pickle.h). Writing uses the
// small emitter below, specific to this one object graph: it checks for a full 64 KiB frame before *every* saved
// object, ints included, which is what CPython's C pickler does (tests/test_core_tokenizer_files.cpp re-pickles
// our output with Python, including the 1.3 MB cl100k vocabulary and frames that end next to MARK/SETITEMS).
#include "nanochat/tokenizer_pkl.h"

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "nanochat/common.h"
#include "nanochat/pickle.h"

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

TiktokenState parse_tokenizer_pkl(std::string_view bytes, const std::string& what) {
  auto bad = [&](const std::string& why) {
    fail("{} is not a usable tokenizer.pkl ({}); expected a pickled tiktoken Encoding as nanochat saves it", what, why);
  };
  PyValue root;
  try {
    root = pickle_loads(bytes);
  } catch (const Error& e) {
    bad(e.what());
  }
  if (!root.is(PyValue::Kind::Object) || !root.object().is("tiktoken.core", "Encoding"))
    bad(fmt::format("the pickled object is {}", root.repr(80)));
  const PyValue& state = root.object().state;
  if (!state.is(PyValue::Kind::Dict))
    bad("the Encoding's state is not a dict; registered encodings such as cl100k_base are pickled by name only");
  TiktokenState st;
  try {
    const PyDict& d = state.dict();
    st.name = d.at("name").str();
    st.pat_str = d.at("pat_str").str();
    const PyDict& ranks = d.at("mergeable_ranks").dict();
    st.mergeable_ranks.reserve(ranks.size());
    for (const auto& [k, v] : ranks.items) {
      int64_t r = v.as_int();
      if (r < 0 || r > INT32_MAX) bad(fmt::format("rank {} is out of range", r));
      st.mergeable_ranks.emplace_back(k.bytes(), int32_t(r));
    }
    for (const auto& [k, v] : d.at("special_tokens").dict().items) {
      int64_t id = v.as_int();
      if (id < 0 || id > INT32_MAX) bad(fmt::format("special token id {} is out of range", id));
      st.special_tokens.emplace_back(k.str(), int32_t(id));
    }
  } catch (const Error& e) {
    bad(e.what());
  }
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
