// pickle writer: pickle_dumps (see pickle.h). It follows CPython's C pickler (_pickle.c) decision by decision —
// which opcode for each size, memoization order, batch_list_exact / batch_dict_exact for list and dict,
// save_reduce's generic batching for object items, framing checked before every saved object with large payloads
// written outside frames — so the same objects give the same bytes as pickle.dumps.
#include <cstring>
#include <unordered_map>

#include "nanochat/common.h"
#include "nanochat/formats/pickle.h"

namespace nanochat {
namespace {

constexpr uint32_t kMaxDepth = 1000;
constexpr size_t kFrameHeader = 9, kFrameMin = 4, kFrameTarget = 64 * 1024, kBatch = 1000;

class PickleWriter {
 public:
  explicit PickleWriter(int protocol) : proto_(protocol) {
    if (protocol < 2 || protocol > 5) fail("pickle: cannot write protocol {} (2 to 5 are supported)", protocol);
  }

  std::string dump(const PyValue& v) {
    char header[2] = {(char)0x80, (char)proto_};
    write(header, 2);  // PROTO goes before the first frame
    framing_ = proto_ >= 4;
    save(v, 0);
    write(".", 1);
    commit_frame();
    return std::move(out_);
  }

 private:
  int proto_;
  std::string out_;
  bool framing_ = false;
  int64_t frame_start_ = -1;
  std::unordered_map<const void*, uint32_t> memo_;
  // Python writes a class's module and name strings from the same objects every time (module.__name__,
  // cls.__qualname__) and a class once; these stand in for that identity.
  std::unordered_map<std::string, uint32_t> global_memo_;

  void write(const char* p, size_t n) {
    if (framing_ && frame_start_ < 0) {
      frame_start_ = (int64_t)out_.size();
      out_.append(kFrameHeader, '\0');
    }
    out_.append(p, n);
  }
  void write(std::string_view s) { write(s.data(), s.size()); }
  void op(uint8_t o) {
    char c = (char)o;
    write(&c, 1);
  }
  void op_le(uint8_t o, uint64_t v, int n) {
    char buf[9];
    buf[0] = (char)o;
    for (int i = 0; i < n; i++) buf[1 + i] = (char)((v >> (8 * i)) & 0xff);
    write(buf, 1 + n);
  }

  void commit_frame() {
    if (!framing_ || frame_start_ < 0) return;
    size_t len = out_.size() - frame_start_ - kFrameHeader;
    if (len >= kFrameMin) {
      out_[frame_start_] = (char)0x95;
      for (int i = 0; i < 8; i++) out_[frame_start_ + 1 + i] = (char)((len >> (8 * i)) & 0xff);
    } else {
      out_.erase(frame_start_, kFrameHeader);
    }
    frame_start_ = -1;
  }
  // Before every save: start a new frame once this one reaches the target size.
  void boundary() {
    if (framing_ && frame_start_ >= 0 && out_.size() - frame_start_ - kFrameHeader >= kFrameTarget) commit_frame();
  }
  // Header + payload; a payload of a frame's size or more goes outside any frame.
  void write_bytes(const char* header, size_t header_len, std::string_view data) {
    bool bypass = data.size() >= kFrameTarget;
    bool framing = framing_;
    if (bypass) {
      commit_frame();
      framing_ = false;
    }
    write(header, header_len);
    write(data);
    framing_ = framing;
  }

  void memo_put(const void* key) {
    uint32_t idx = (uint32_t)(memo_.size() + global_memo_.size());
    if (key) memo_[key] = idx;
    memo_put_index(idx);
  }
  void memo_put_index(uint32_t idx) {
    if (proto_ >= 4)
      op(0x94);
    else if (idx < 256)
      op_le('q', idx, 1);
    else
      op_le('r', idx, 4);
  }
  void memo_get(uint32_t idx) {
    if (idx < 256)
      op_le('h', idx, 1);
    else
      op_le('j', idx, 4);
  }
  // A memo entry keyed by value rather than by node (see global_memo_).
  bool memo_get_named(const std::string& key) {
    auto it = global_memo_.find(key);
    if (it == global_memo_.end()) return false;
    memo_get(it->second);
    return true;
  }
  void memo_put_named(const std::string& key) {
    uint32_t idx = (uint32_t)(memo_.size() + global_memo_.size());
    global_memo_[key] = idx;
    memo_put_index(idx);
  }

  void save_int(int64_t v) {
    if (v >= 0 && v <= 0xff)
      op_le('K', v, 1);
    else if (v >= 0 && v <= 0xffff)
      op_le('M', v, 2);
    else if (v >= INT32_MIN && v <= INT32_MAX)
      op_le('J', (uint32_t)(int32_t)v, 4);
    else {
      // LONG1 as Python's encode_long: (bit_length(|v|) >> 3) + 1 bytes of little-endian two's complement,
      // dropping a redundant 0xff for negatives.
      uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
      int n = ((64 - __builtin_clzll(mag)) >> 3) + 1;
      std::string b(n, '\0');
      for (int i = 0; i < n; i++) b[i] = i < 8 ? (char)(((uint64_t)v >> (8 * i)) & 0xff) : (char)(v < 0 ? 0xff : 0);
      if (v < 0 && n > 1 && (uint8_t)b[n - 1] == 0xff && ((uint8_t)b[n - 2] & 0x80)) b.pop_back();
      char h[2] = {(char)0x8a, (char)b.size()};
      write(h, 2);
      write(b);
    }
  }

  void save_str_data(uint8_t short_op, uint8_t op4, uint8_t op8, const std::string& s) {
    char h[9];
    size_t hl;
    if (s.size() <= 0xff && short_op) {
      h[0] = (char)short_op;
      h[1] = (char)s.size();
      hl = 2;
    } else if (s.size() > 0xffffffffull && proto_ >= 4) {
      h[0] = (char)op8;
      for (int i = 0; i < 8; i++) h[1 + i] = (char)((s.size() >> (8 * i)) & 0xff);
      hl = 9;
    } else {
      if (s.size() > 0xffffffffull) fail("pickle: string of {} bytes needs protocol 4", s.size());
      h[0] = (char)op4;
      for (int i = 0; i < 4; i++) h[1 + i] = (char)((s.size() >> (8 * i)) & 0xff);
      hl = 5;
    }
    write_bytes(h, hl, s);
  }

  void save_global(const PyGlobal& g) {
    std::string key = "G\n" + g.module + "\n" + g.name;
    if (memo_get_named(key)) return;
    if (proto_ >= 4) {
      std::string mkey = "M\n" + g.module, nkey = "N\n" + g.module + "\n" + g.name;
      if (!memo_get_named(mkey)) {
        save_str_data(0x8c, 'X', 0x8d, g.module);
        memo_put_named(mkey);
      }
      boundary();
      if (!memo_get_named(nkey)) {
        save_str_data(0x8c, 'X', 0x8d, g.name);
        memo_put_named(nkey);
      }
      boundary();
      op(0x93);
    } else {
      write("c" + g.module + "\n" + g.name + "\n");
    }
    memo_put_named(key);
  }

  // Python's generic batching (for items fed from an iterator, as save_reduce does): a lone trailing item uses
  // APPEND/SETITEM, and an exact multiple of the batch size needs no empty batch.
  template <typename F>
  void batch_generic(size_t n, uint8_t one_op, uint8_t many_op, F save_item) {
    size_t i = 0;
    while (i < n) {
      if (n - i == 1) {
        save_item(i++);
        op(one_op);
        break;
      }
      op('(');
      size_t k = 0;
      while (i < n && k < kBatch) {
        save_item(i++);
        k++;
      }
      op(many_op);
    }
  }

  void save(const PyValue& v, uint32_t depth) {
    if (depth > kMaxDepth)
      fail("pickle: value nested deeper than {} levels (or recursive) cannot be written", kMaxDepth);
    boundary();  // as CPython's save(): a full frame is closed before every object, atoms and memo hits included
    using K = PyValue::Kind;
    switch (v.kind()) {  // atoms: never memoized
      case K::None:
        op('N');
        return;
      case K::Bool:
        op(v.as_bool() ? 0x88 : 0x89);
        return;
      case K::Int:
        save_int(v.as_int());
        return;
      case K::Float: {
        double f = v.as_float();
        uint64_t bits;
        std::memcpy(&bits, &f, 8);
        char b[9];
        b[0] = 'G';
        for (int i = 0; i < 8; i++) b[1 + i] = (char)((bits >> (8 * (7 - i))) & 0xff);
        write(b, 9);
        return;
      }
      default:
        break;
    }
    const void* key = v.node_ptr();
    if (auto it = memo_.find(key); it != memo_.end()) {
      memo_get(it->second);
      return;
    }
    switch (v.kind()) {
      case K::Str:
        save_str_data(proto_ >= 4 ? 0x8c : 0, 'X', 0x8d, v.str());
        memo_put(key);
        break;
      case K::Bytes:
        if (proto_ < 3) fail("pickle: bytes need protocol 3 or higher");
        save_str_data('C', 'B', 0x8e, v.bytes());
        memo_put(key);
        break;
      case K::Tuple: {
        auto& t = v.tuple();
        if (t.empty()) {
          op(')');
          break;
        }
        if (t.size() <= 3) {
          for (auto& x : t) save(x, depth + 1);
          if (auto it = memo_.find(key); it != memo_.end()) {  // the tuple was reached through its own items
            for (size_t i = 0; i < t.size(); i++) op('0');
            memo_get(it->second);
            return;
          }
          op(0x84 + t.size());
        } else {
          op('(');
          for (auto& x : t) save(x, depth + 1);
          if (auto it = memo_.find(key); it != memo_.end()) {
            op('1');
            memo_get(it->second);
            return;
          }
          op('t');
        }
        memo_put(key);
        break;
      }
      case K::List: {
        op(']');
        memo_put(key);
        auto& l = v.list();
        size_t n = l.size();
        if (n == 1) {
          save(l[0], depth + 1);
          op('a');
          break;
        }
        size_t i = 0;  // batch_list_exact
        while (i < n) {
          op('(');
          for (size_t k = 0; i < n && k < kBatch; k++) save(l[i++], depth + 1);
          op('e');
        }
        break;
      }
      case K::Dict: {
        op('}');
        memo_put(key);
        auto& items = v.dict().items;
        size_t n = items.size();
        if (n == 0) break;
        if (n == 1) {
          save(items[0].first, depth + 1);
          save(items[0].second, depth + 1);
          op('s');
          break;
        }
        size_t i = 0, k;  // batch_dict_exact: a full last batch is followed by an empty MARK SETITEMS
        do {
          op('(');
          for (k = 0; i < n && k < kBatch; k++, i++) {
            save(items[i].first, depth + 1);
            save(items[i].second, depth + 1);
          }
          op('u');
        } while (k == kBatch);
        break;
      }
      case K::Global:
        save_global(v.global());
        break;
      case K::Object: {
        const PyObject& o = v.object();
        if (!o.args.is(K::Tuple)) fail("pickle: object arguments must be a tuple, got {}", o.args.kind_name());
        save(o.callable, depth + 1);
        save(o.args, depth + 1);
        op(o.newobj ? 0x81 : 'R');
        memo_put(key);
        batch_generic(o.list_items.size(), 'a', 'e', [&](size_t i) { save(o.list_items[i], depth + 1); });
        batch_generic(o.dict_items.size(), 's', 'u', [&](size_t i) {
          save(o.dict_items[i].first, depth + 1);
          save(o.dict_items[i].second, depth + 1);
        });
        if (!o.state.is_none()) {
          save(o.state, depth + 1);
          op('b');
        }
        break;
      }
      case K::PersId:
        save(v.persid().pid, depth + 1);
        op('Q');
        break;
      case K::Native:
        fail("pickle: cannot write a {} value", v.kind_name());
      default:
        break;
    }
  }
};

}  // namespace

std::string pickle_dumps(const PyValue& v, int protocol) { return PickleWriter(protocol).dump(v); }

}  // namespace nanochat
