// pickle: see pickle.h. PyValue, PyDict, and the reader: a stack machine over the binary opcodes (the writer is
// in pickle_write.cpp).
#include "nanochat/formats/pickle.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "nanochat/common.h"

namespace nanochat {

namespace {
constexpr uint32_t kMaxDepth = 1000;  // Python's default recursion limit; keeps destructors and repr off the edge
}

// ---------------------------------------------------------------------------------------------------------------
// PyValue

PyValue PyValue::make_bool(bool b) {
  PyValue v;
  v.v_ = b;
  return v;
}
PyValue PyValue::make_int(int64_t i) {
  PyValue v;
  v.v_ = i;
  return v;
}
PyValue PyValue::make_float(double f) {
  PyValue v;
  v.v_ = f;
  return v;
}
PyValue PyValue::make_str(std::string utf8) {
  PyValue v;
  v.v_ = std::make_shared<PyStr>(PyStr{std::move(utf8)});
  return v;
}
PyValue PyValue::make_bytes(std::string data) {
  PyValue v;
  v.v_ = std::make_shared<PyBytes>(PyBytes{std::move(data)});
  return v;
}
PyValue PyValue::make_list(std::vector<PyValue> items) {
  auto n = std::make_shared<PyList>();
  for (auto& x : items) n->depth = std::max(n->depth, x.depth() + 1);
  n->items = std::move(items);
  PyValue v;
  v.v_ = std::move(n);
  return v;
}
PyValue PyValue::make_tuple(std::vector<PyValue> items) {
  auto n = std::make_shared<PyTuple>();
  for (auto& x : items) n->depth = std::max(n->depth, x.depth() + 1);
  n->items = std::move(items);
  PyValue v;
  v.v_ = std::move(n);
  return v;
}
PyValue PyValue::make_dict(PyDict d) {
  PyValue v;
  v.v_ = std::make_shared<PyDict>(std::move(d));
  return v;
}
PyValue PyValue::make_dict() { return make_dict(PyDict{}); }
PyValue PyValue::make_global(std::string module, std::string name) {
  PyValue v;
  v.v_ = std::make_shared<PyGlobal>(PyGlobal{std::move(module), std::move(name)});
  return v;
}
PyValue PyValue::make_object(PyValue callable, PyValue args, bool newobj) {
  auto n = std::make_shared<PyObject>();
  n->depth = std::max(callable.depth(), args.depth()) + 1;
  n->callable = std::move(callable);
  n->args = std::move(args);
  n->newobj = newobj;
  PyValue v;
  v.v_ = std::move(n);
  return v;
}
PyValue PyValue::make_persid(PyValue pid) {
  PyValue v;
  v.v_ = std::make_shared<PyPersId>(PyPersId{std::move(pid)});
  return v;
}
PyValue PyValue::make_native(std::any value, std::string type) {
  PyValue v;
  v.v_ = std::make_shared<PyNative>(PyNative{std::move(value), std::move(type)});
  return v;
}

const char* PyValue::kind_name() const {
  static const char* names[] = {"None",  "bool", "int",    "float",  "str",           "bytes", "list",
                                "tuple", "dict", "global", "object", "persistent id", "native"};
  if (kind() == Kind::Native) return std::get<std::shared_ptr<PyNative>>(v_)->type.c_str();
  return names[v_.index()];
}

namespace {
[[noreturn]] void wrong_kind(const PyValue& v, const char* want) {
  fail("pickle: expected {}, got {} {}", want, v.kind_name(), v.repr(60));
}
}  // namespace

bool PyValue::as_bool() const {
  if (auto p = std::get_if<bool>(&v_)) return *p;
  wrong_kind(*this, "bool");
}
int64_t PyValue::as_int() const {
  if (auto p = std::get_if<int64_t>(&v_)) return *p;
  if (auto p = std::get_if<bool>(&v_)) return *p;
  wrong_kind(*this, "int");
}
double PyValue::as_float() const {
  if (auto p = std::get_if<double>(&v_)) return *p;
  if (auto p = std::get_if<int64_t>(&v_)) return static_cast<double>(*p);
  wrong_kind(*this, "float");
}
#define NANOCHAT_NODE_ACCESSOR(Ret, fn, Node, member, want)                  \
  Ret PyValue::fn() const {                                                  \
    if (auto p = std::get_if<std::shared_ptr<Node>>(&v_)) return (*p)member; \
    wrong_kind(*this, want);                                                 \
  }
NANOCHAT_NODE_ACCESSOR(const std::string&, str, PyStr, ->utf8, "str")
NANOCHAT_NODE_ACCESSOR(const std::string&, bytes, PyBytes, ->data, "bytes")
NANOCHAT_NODE_ACCESSOR(std::vector<PyValue>&, list, PyList, ->items, "list")
NANOCHAT_NODE_ACCESSOR(std::vector<PyValue>&, tuple, PyTuple, ->items, "tuple")
NANOCHAT_NODE_ACCESSOR(PyDict&, dict, PyDict, .operator*(), "dict")
NANOCHAT_NODE_ACCESSOR(PyGlobal&, global, PyGlobal, .operator*(), "global")
NANOCHAT_NODE_ACCESSOR(PyObject&, object, PyObject, .operator*(), "object")
NANOCHAT_NODE_ACCESSOR(PyPersId&, persid, PyPersId, .operator*(), "persistent id")
NANOCHAT_NODE_ACCESSOR(PyNative&, native, PyNative, .operator*(), "native value")
#undef NANOCHAT_NODE_ACCESSOR

std::vector<PyValue>& PyValue::items() const {
  if (kind() == Kind::Tuple) return tuple();
  if (kind() == Kind::List) return list();
  wrong_kind(*this, "list or tuple");
}

const void* PyValue::node_ptr() const {
  return std::visit(
      [](auto&& x) -> const void* {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate> || std::is_same_v<T, bool> || std::is_same_v<T, int64_t> ||
                      std::is_same_v<T, double>)
          return nullptr;
        else
          return x.get();
      },
      v_);
}

uint32_t PyValue::depth() const {
  switch (kind()) {
    case Kind::List:
      return std::get<std::shared_ptr<PyList>>(v_)->depth;
    case Kind::Tuple:
      return std::get<std::shared_ptr<PyTuple>>(v_)->depth;
    case Kind::Dict:
      return std::get<std::shared_ptr<PyDict>>(v_)->depth;
    case Kind::Object:
      return std::get<std::shared_ptr<PyObject>>(v_)->depth;
    case Kind::PersId:
      return std::get<std::shared_ptr<PyPersId>>(v_)->pid.depth() + 1;
    default:
      return 0;
  }
}

bool PyValue::same(const PyValue& o) const {
  if (kind() != o.kind()) return false;
  if (const void* p = node_ptr()) return p == o.node_ptr();
  return v_ == o.v_;
}

namespace {
bool is_number(PyValue::Kind k) {
  return k == PyValue::Kind::Bool || k == PyValue::Kind::Int || k == PyValue::Kind::Float;
}
}  // namespace

bool PyValue::equals(const PyValue& o) const {
  Kind a = kind(), b = o.kind();
  if (is_number(a) && is_number(b)) {
    if (a == Kind::Float || b == Kind::Float) return as_float() == o.as_float();
    return as_int() == o.as_int();
  }
  if (a != b) return false;
  switch (a) {
    case Kind::None:
      return true;
    case Kind::Str:
      return str() == o.str();
    case Kind::Bytes:
      return bytes() == o.bytes();
    case Kind::Tuple: {
      auto &x = tuple(), &y = o.tuple();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); i++)
        if (!x[i].equals(y[i])) return false;
      return true;
    }
    case Kind::Global:
      return global().module == o.global().module && global().name == o.global().name;
    default:
      return node_ptr() == o.node_ptr();
  }
}

size_t PyValue::hash() const {
  switch (kind()) {
    case Kind::None:
      return 0x9e3779b9u;
    case Kind::Bool:
    case Kind::Int:
      return std::hash<int64_t>()(as_int());
    case Kind::Float: {
      double f = as_float();
      if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9.2e18) return std::hash<int64_t>()((int64_t)f);
      return std::hash<double>()(f);
    }
    case Kind::Str:
      return std::hash<std::string>()(str()) * 31 + 1;
    case Kind::Bytes:
      return std::hash<std::string>()(bytes()) * 31 + 2;
    case Kind::Tuple: {
      size_t h = 0x345678;
      for (auto& x : tuple()) h = h * 1000003 ^ x.hash();
      return h;
    }
    case Kind::Global:
      return std::hash<std::string>()(global().module + "." + global().name);
    case Kind::List:
    case Kind::Dict:
      fail("pickle: unhashable {} used as a dict key", kind_name());
    default:
      return std::hash<const void*>()(node_ptr());
  }
}

namespace {
void repr_into(const PyValue& v, std::string& out, size_t max_len, uint32_t depth);

void repr_bytes(const std::string& s, std::string& out, bool is_bytes) {
  if (is_bytes) out += 'b';
  out += '\'';
  for (unsigned char c : s) {
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += (char)c;
    } else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f || (is_bytes && c >= 0x80))
      out += fmt::format("\\x{:02x}", c);
    else
      out += (char)c;
  }
  out += '\'';
}

void repr_seq(const std::vector<PyValue>& items, std::string& out, size_t max_len, uint32_t depth) {
  for (size_t i = 0; i < items.size() && out.size() < max_len; i++) {
    if (i) out += ", ";
    repr_into(items[i], out, max_len, depth + 1);
  }
}

void repr_items(const std::vector<std::pair<PyValue, PyValue>>& items, std::string& out, size_t max_len,
                uint32_t depth) {
  for (size_t i = 0; i < items.size() && out.size() < max_len; i++) {
    if (i) out += ", ";
    repr_into(items[i].first, out, max_len, depth + 1);
    out += ": ";
    repr_into(items[i].second, out, max_len, depth + 1);
  }
}

void repr_into(const PyValue& v, std::string& out, size_t max_len, uint32_t depth) {
  if (out.size() >= max_len) return;
  if (depth > 50) {
    out += "...";
    return;
  }
  using K = PyValue::Kind;
  switch (v.kind()) {
    case K::None:
      out += "None";
      break;
    case K::Bool:
      out += v.as_bool() ? "True" : "False";
      break;
    case K::Int:
      out += std::to_string(v.as_int());
      break;
    case K::Float:
      out += fmt::format("{}", v.as_float());
      break;
    case K::Str:
      repr_bytes(v.str(), out, false);
      break;
    case K::Bytes:
      repr_bytes(v.bytes(), out, true);
      break;
    case K::List:
      out += '[';
      repr_seq(v.list(), out, max_len, depth);
      out += ']';
      break;
    case K::Tuple:
      out += '(';
      repr_seq(v.tuple(), out, max_len, depth);
      if (v.tuple().size() == 1) out += ',';
      out += ')';
      break;
    case K::Dict:
      out += '{';
      repr_items(v.dict().items, out, max_len, depth);
      out += '}';
      break;
    case K::Global:
      out += v.global().module + "." + v.global().name;
      break;
    case K::Object: {
      const PyObject& o = v.object();
      repr_into(o.callable, out, max_len, depth + 1);
      repr_into(o.args, out, max_len, depth + 1);
      if (!o.dict_items.empty()) {
        out += "{";
        repr_items(o.dict_items, out, max_len, depth);
        out += "}";
      }
      if (!o.list_items.empty()) {
        out += "[";
        repr_seq(o.list_items, out, max_len, depth);
        out += "]";
      }
      if (!o.state.is_none()) {
        out += ".__setstate__(";
        repr_into(o.state, out, max_len, depth + 1);
        out += ")";
      }
      break;
    }
    case K::PersId:
      out += "persistent_id(";
      repr_into(v.persid().pid, out, max_len, depth + 1);
      out += ")";
      break;
    case K::Native:
      out += "<" + v.native().type + ">";
      break;
  }
}
}  // namespace

std::string PyValue::repr(size_t max_len) const {
  std::string out;
  repr_into(*this, out, max_len, 0);
  if (out.size() > max_len) out = out.substr(0, max_len) + "...";
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// PyDict

// The index follows `items`; when a caller edited items directly, rebuild it.
void PyDict::sync_index() const {
  if (index_.size() == items.size()) return;
  index_.clear();
  for (size_t i = 0; i < items.size(); i++) index_.emplace(items[i].first.hash(), i);
}

void PyDict::set(PyValue key, PyValue value) {
  sync_index();
  size_t h = key.hash();
  auto [lo, hi] = index_.equal_range(h);
  for (auto it = lo; it != hi; ++it) {
    if (items[it->second].first.equals(key)) {
      items[it->second].second = std::move(value);
      return;
    }
  }
  index_.emplace(h, items.size());
  items.emplace_back(std::move(key), std::move(value));
}

const PyValue* PyDict::find(const PyValue& key) const {
  sync_index();
  auto [lo, hi] = index_.equal_range(key.hash());
  for (auto it = lo; it != hi; ++it)
    if (items[it->second].first.equals(key)) return &items[it->second].second;
  return nullptr;
}

const PyValue* PyDict::find(std::string_view str_key) const { return find(PyValue::make_str(std::string(str_key))); }

const PyValue& PyDict::at(std::string_view str_key) const {
  if (auto p = find(str_key)) return *p;
  fail("pickle: dict has no key '{}'", str_key);
}

const PyValue& PyDict::at(const PyValue& key) const {
  if (auto p = find(key)) return *p;
  fail("pickle: dict has no key {}", key.repr(80));
}

std::string PyObject::qualname() const {
  if (callable.kind() != PyValue::Kind::Global) return "";
  return callable.global().module + "." + callable.global().name;
}

bool PyObject::is(std::string_view module, std::string_view name) const {
  return callable.kind() == PyValue::Kind::Global && callable.global().module == module &&
         callable.global().name == name;
}

}  // namespace nanochat

// ---------------------------------------------------------------------------------------------------------------
// Reader

namespace nanochat {

class Unpickler {
 public:
  Unpickler(std::string_view data, const UnpickleHooks& hooks) : d_(data), hooks_(hooks) {}

  PyValue run(bool allow_trailing) {
    while (true) {
      op_pos_ = pos_;
      uint8_t op = u8("opcode");
      if (op == '.') {  // STOP
        if (stack_.size() != 1 || !marks_.empty()) err("STOP with {} values on the stack (expected 1)", stack_.size());
        if (!allow_trailing && pos_ != d_.size()) err("{} bytes after STOP", d_.size() - pos_);
        return std::move(stack_.back());
      }
      step(op);
    }
  }

 private:
  std::string_view d_;
  const UnpickleHooks& hooks_;
  size_t pos_ = 0, op_pos_ = 0;
  std::vector<PyValue> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyValue> memo_;

  template <typename... Args>
  [[noreturn]] void err(fmt::format_string<Args...> f, Args&&... args) {
    fail("pickle: {} (opcode at byte {})", fmt::format(f, std::forward<Args>(args)...), op_pos_);
  }

  std::string_view take(uint64_t n, const char* what) {
    if (n > d_.size() - pos_) err("truncated data: {} needs {} bytes, {} left", what, n, d_.size() - pos_);
    auto s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t le(int n, const char* what) {
    auto s = take(n, what);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | (uint8_t)s[i];
    return v;
  }
  uint8_t u8(const char* what) { return (uint8_t)le(1, what); }
  std::string line(const char* what) {
    size_t nl = d_.find('\n', pos_);
    if (nl == std::string_view::npos) err("truncated data: {} has no newline", what);
    std::string s(d_.substr(pos_, nl - pos_));
    pos_ = nl + 1;
    return s;
  }

  PyValue pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) err("stack underflow");
    PyValue v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  PyValue& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) err("stack underflow");
    return stack_.back();
  }
  std::vector<PyValue> pop_mark() {
    if (marks_.empty()) err("no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyValue> items(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  void push(PyValue v) { stack_.push_back(std::move(v)); }

  uint32_t grow(uint32_t cur, const PyValue& child) {
    uint32_t d = std::max(cur, child.depth() + 1);
    if (d > kMaxDepth) err("nesting deeper than {} levels", kMaxDepth);
    return d;
  }

  void append(PyValue& target, std::vector<PyValue> items) {
    if (target.is(PyValue::Kind::List)) {
      auto& l = *std::get<std::shared_ptr<PyList>>(target.v_);
      for (auto& x : items) {
        l.depth = grow(l.depth, x);
        l.items.push_back(std::move(x));
      }
    } else if (target.is(PyValue::Kind::Object)) {
      auto& o = target.object();
      for (auto& x : items) {
        o.depth = grow(o.depth, x);
        o.list_items.push_back(std::move(x));
      }
    } else {
      err("APPEND to a {}", target.kind_name());
    }
  }

  void setitems(PyValue& target, std::vector<PyValue> kv) {
    if (kv.size() % 2) err("SETITEMS with an odd number of values");
    if (target.is(PyValue::Kind::Dict)) {
      auto& d = target.dict();
      for (size_t i = 0; i < kv.size(); i += 2) {
        d.depth = grow(grow(d.depth, kv[i]), kv[i + 1]);
        if (kv[i].is(PyValue::Kind::List) || kv[i].is(PyValue::Kind::Dict))
          err("unhashable {} as a dict key", kv[i].kind_name());
        d.set(std::move(kv[i]), std::move(kv[i + 1]));
      }
    } else if (target.is(PyValue::Kind::Object)) {
      auto& o = target.object();
      for (size_t i = 0; i < kv.size(); i += 2) {
        o.depth = grow(grow(o.depth, kv[i]), kv[i + 1]);
        o.dict_items.emplace_back(std::move(kv[i]), std::move(kv[i + 1]));
      }
    } else {
      err("SETITEM on a {}", target.kind_name());
    }
  }

  PyValue make_tuple(std::vector<PyValue> items) {
    uint32_t d = 1;
    for (auto& x : items) d = grow(d, x);
    return PyValue::make_tuple(std::move(items));
  }

  PyValue global(std::string module, std::string name) {
    PyGlobal g{std::move(module), std::move(name)};
    if (hooks_.check_global) hooks_.check_global(g);
    return PyValue::make_global(std::move(g.module), std::move(g.name));
  }

  PyValue reduce(PyValue callable, PyValue args, bool newobj) {
    if (!args.is(PyValue::Kind::Tuple))
      err("{} arguments must be a tuple, got {}", newobj ? "NEWOBJ" : "REDUCE", args.kind_name());
    if (hooks_.reduce && callable.is(PyValue::Kind::Global))
      if (auto r = hooks_.reduce(callable.global(), args)) return std::move(*r);
    uint32_t d = grow(grow(1, callable), args);
    PyValue v = PyValue::make_object(std::move(callable), std::move(args), newobj);
    v.object().depth = d;
    return v;
  }

  void memo_put(uint64_t idx) { memo_[idx] = top(); }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) err("memo key {} was never stored", idx);
    push(it->second);
  }

  PyValue read_int(uint64_t nbytes) {
    auto s = take(nbytes, "LONG");
    if (nbytes > 8) {
      // Python writes minimal two's complement; more than 8 significant bytes does not fit int64.
      err("integer of {} bytes does not fit in 64 bits", nbytes);
    }
    uint64_t v = 0;
    for (size_t i = nbytes; i-- > 0;) v = (v << 8) | (uint8_t)s[i];
    if (nbytes > 0 && nbytes < 8 && ((uint8_t)s[nbytes - 1] & 0x80)) v |= ~uint64_t(0) << (8 * nbytes);  // sign-extend
    return PyValue::make_int((int64_t)v);
  }

  std::string utf8(std::string_view s) {
    // Python encodes str with 'surrogatepass', so encoded surrogates are allowed; anything else must be UTF-8.
    size_t i = 0;
    while (i < s.size()) {
      uint8_t c = s[i];
      size_t n = c < 0x80                   ? 0
                 : (c >= 0xc2 && c <= 0xdf) ? 1
                 : (c & 0xf0) == 0xe0       ? 2
                 : (c >= 0xf0 && c <= 0xf4) ? 3
                                            : 9;
      if (n == 9 || i + n >= s.size() + (n == 0)) err("string is not valid UTF-8 (byte {} of it)", i);
      for (size_t k = 1; k <= n; k++)
        if (((uint8_t)s[i + k] & 0xc0) != 0x80) err("string is not valid UTF-8 (byte {} of it)", i);
      i += n + 1;
    }
    return std::string(s);
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        uint8_t p = u8("PROTO");
        if (p > 5) err("unsupported pickle protocol {}", p);
        break;
      }
      case 0x95: {  // FRAME: frames only group bytes for buffered I/O
        uint64_t n = le(8, "FRAME");
        if (n > d_.size() - pos_) err("truncated data: frame of {} bytes, {} left", n, d_.size() - pos_);
        break;
      }
      case '(':
        marks_.push_back(stack_.size());
        break;
      case '0':
        pop();
        break;  // POP
      case '1':
        pop_mark();
        break;  // POP_MARK
      case '2':
        push(top());
        break;  // DUP
      case 'N':
        push(PyValue());
        break;
      case 0x88:
        push(PyValue::make_bool(true));
        break;
      case 0x89:
        push(PyValue::make_bool(false));
        break;
      case 'J':
        push(PyValue::make_int((int32_t)(uint32_t)le(4, "BININT")));
        break;
      case 'K':
        push(PyValue::make_int(u8("BININT1")));
        break;
      case 'M':
        push(PyValue::make_int((int64_t)le(2, "BININT2")));
        break;
      case 0x8a:
        push(read_int(u8("LONG1")));
        break;
      case 0x8b: {
        uint64_t n = le(4, "LONG4");
        push(read_int(n));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        auto s = take(8, "BINFLOAT");
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = (bits << 8) | (uint8_t)s[i];
        double f;
        std::memcpy(&f, &bits, 8);
        push(PyValue::make_float(f));
        break;
      }
      case 0x8c:
        push(PyValue::make_str(utf8(take(u8("SHORT_BINUNICODE"), "SHORT_BINUNICODE"))));
        break;
      case 'X':
        push(PyValue::make_str(utf8(take(le(4, "BINUNICODE"), "BINUNICODE"))));
        break;
      case 0x8d:
        push(PyValue::make_str(utf8(take(le(8, "BINUNICODE8"), "BINUNICODE8"))));
        break;
      case 'U':
      case 'T': {  // SHORT_BINSTRING / BINSTRING (Python 2 str): decoded as ASCII, Python 3's default
        auto s = op == 'U' ? take(u8("SHORT_BINSTRING"), "SHORT_BINSTRING") : take(le(4, "BINSTRING"), "BINSTRING");
        for (unsigned char c : s)
          if (c >= 0x80) err("Python 2 string is not ASCII");
        push(PyValue::make_str(std::string(s)));
        break;
      }
      case 'C':
        push(PyValue::make_bytes(std::string(take(u8("SHORT_BINBYTES"), "SHORT_BINBYTES"))));
        break;
      case 'B':
        push(PyValue::make_bytes(std::string(take(le(4, "BINBYTES"), "BINBYTES"))));
        break;
      case 0x8e:
        push(PyValue::make_bytes(std::string(take(le(8, "BINBYTES8"), "BINBYTES8"))));
        break;
      case 0x96:
        push(PyValue::make_bytes(std::string(take(le(8, "BYTEARRAY8"), "BYTEARRAY8"))));
        break;
      case '}':
        push(PyValue::make_dict());
        break;
      case ']':
        push(PyValue::make_list());
        break;
      case ')':
        push(PyValue::make_tuple());
        break;
      case 't':
        push(make_tuple(pop_mark()));
        break;
      case 0x85: {
        auto a = pop();
        push(make_tuple({std::move(a)}));
        break;
      }
      case 0x86: {
        auto b = pop();
        auto a = pop();
        push(make_tuple({std::move(a), std::move(b)}));
        break;
      }
      case 0x87: {
        auto c = pop();
        auto b = pop();
        auto a = pop();
        push(make_tuple({std::move(a), std::move(b), std::move(c)}));
        break;
      }
      case 'a': {
        auto v = pop();
        std::vector<PyValue> one;
        one.push_back(std::move(v));
        append(top(), std::move(one));
        break;
      }
      case 'e': {
        auto items = pop_mark();
        append(top(), std::move(items));
        break;
      }
      case 's': {
        auto v = pop();
        auto k = pop();
        std::vector<PyValue> kv;
        kv.push_back(std::move(k));
        kv.push_back(std::move(v));
        setitems(top(), std::move(kv));
        break;
      }
      case 'u': {
        auto kv = pop_mark();
        setitems(top(), std::move(kv));
        break;
      }
      case 'q':
        memo_put(u8("BINPUT"));
        break;
      case 'r':
        memo_put(le(4, "LONG_BINPUT"));
        break;
      case 0x94:
        memo_put(memo_.size());
        break;  // MEMOIZE
      case 'h':
        memo_get(u8("BINGET"));
        break;
      case 'j':
        memo_get(le(4, "LONG_BINGET"));
        break;
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = line("GLOBAL module");
        std::string name = line("GLOBAL name");
        push(global(std::move(module), std::move(name)));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PyValue name = pop(), module = pop();
        if (!name.is(PyValue::Kind::Str) || !module.is(PyValue::Kind::Str)) err("STACK_GLOBAL needs two str");
        push(global(module.str(), name.str()));
        break;
      }
      case 'R': {
        auto args = pop();
        auto fn = pop();
        push(reduce(std::move(fn), std::move(args), false));
        break;
      }
      case 0x81: {
        auto args = pop();
        auto cls = pop();
        push(reduce(std::move(cls), std::move(args), true));
        break;
      }
      case 'b': {  // BUILD
        PyValue state = pop();
        PyValue& obj = top();
        if (!obj.is(PyValue::Kind::Object)) err("BUILD on a {}", obj.kind_name());
        obj.object().depth = grow(obj.object().depth, state);
        obj.object().state = std::move(state);
        break;
      }
      case 'Q': {  // BINPERSID
        PyValue pid = pop();
        push(hooks_.persistent_load ? hooks_.persistent_load(pid) : PyValue::make_persid(std::move(pid)));
        break;
      }
      default:
        if (op == 'I' || op == 'L' || op == 'F' || op == 'S' || op == 'V' || op == 'g' || op == 'p' || op == 'd' ||
            op == 'l' || op == 'o' || op == 'i' || op == 'P')
          err("protocol 0 opcode '{}' is not supported (re-save with protocol 2 or higher)", (char)op);
        err("unsupported opcode 0x{:02x}", op);
    }
  }
};

PyValue pickle_loads(std::string_view data, const UnpickleHooks& hooks, bool allow_trailing) {
  return Unpickler(data, hooks).run(allow_trailing);
}

}  // namespace nanochat
