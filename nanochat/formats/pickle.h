// pickle: a small reader and writer for Python's pickle format, enough for the files nanochat shares with
// Python: tokenizer.pkl (a pickled tiktoken Encoding, protocol 4) and the data.pkl inside torch.save zips
// (protocol 2: OrderedDict state dicts, tensors rebuilt from persistent-id storages, nested optimizer state).
//
// Reading turns the bytes into a PyValue tree. Classes are never imported: a GLOBAL becomes a PyGlobal node
// (module + name), and REDUCE / NEWOBJ / BUILD / SETITEMS-on-an-object become a PyObject node that records the
// callable, its args, its items and its state. Hooks let a caller turn such nodes into something real (pt_file
// rebuilds torch tensors this way) and resolve persistent ids (torch storages).
//
// Writing (pickle_dumps) serializes a PyValue tree exactly as CPython's C pickler does for the same Python objects
// (memoization by object identity, batches of 1000 items, protocol 4 framing), so a Python file can be re-written
// byte for byte. Node identity is shared_ptr identity: the same node reached twice is written once and then
// fetched from the memo, just as Python does for the same object.
//
// Usage:
//   PyValue v = pickle_loads(read_file("tokenizer.pkl"));           // throws nanochat::Error on bad input
//   const PyObject& enc = v.object();                                // tiktoken.core.Encoding via NEWOBJ
//   std::string name = enc.state.dict().at("name").str();          // "rustbpe"
//   for (auto& [k, r] : enc.state.dict().at("mergeable_ranks").dict().items) use(k.bytes(), r.as_int());
//
//   PyDict state;                                                    // build one and write it back:
//   state.set(PyValue::make_str("name"), PyValue::make_str("rustbpe"));
//   PyValue obj = PyValue::make_object(PyValue::make_global("tiktoken.core", "Encoding"), PyValue::make_tuple({}),
//                                 /*newobj=*/true);
//   obj.object().state = PyValue::make_dict(std::move(state));
//   std::string bytes = pickle_dumps(obj, 4);                        // what pickle.dumps(enc, 4) gives
//
// Not covered: protocol 0/1 text opcodes (INT, LONG, FLOAT, STRING, GET, PUT, DICT, LIST, OBJ, INST, PERSID),
// sets and frozensets, extension registry (EXT1/2/4), out-of-band buffers, integers beyond 64 bits. Nesting is
// capped at 1000 levels; a self-containing structure (a list appended to itself) reads but is never freed.
#pragma once

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace nanochat {

struct PyStr;
struct PyBytes;
struct PyList;
struct PyTuple;
struct PyDict;
struct PyGlobal;
struct PyObject;
struct PyPersId;
struct PyNative;

// One Python value. None, bool, int and float are held inline; everything else is a shared node, so copies of a
// PyValue alias the same object (as Python names do) and identity survives a read → write round trip.
class PyValue {
 public:
  enum class Kind { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Global, Object, PersId, Native };

  PyValue() = default;  // None
  static PyValue make_none() { return PyValue(); }
  static PyValue make_bool(bool b);
  static PyValue make_int(int64_t i);
  static PyValue make_float(double f);
  static PyValue make_str(std::string utf8);
  static PyValue make_bytes(std::string data);
  static PyValue make_list(std::vector<PyValue> items = {});
  static PyValue make_tuple(std::vector<PyValue> items = {});
  static PyValue make_dict();
  static PyValue make_dict(PyDict d);
  static PyValue make_global(std::string module, std::string name);
  // callable(*args) (REDUCE), or cls.__new__(cls, *args) when newobj (NEWOBJ); callable is normally a Global.
  static PyValue make_object(PyValue callable, PyValue args, bool newobj);
  static PyValue make_persid(PyValue pid);
  // Anything a hook wants to put in the tree (e.g. an at::Tensor); `type` names it in error messages.
  static PyValue make_native(std::any value, std::string type);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  const char* kind_name() const;
  bool is_none() const { return kind() == Kind::None; }
  bool is(Kind k) const { return kind() == k; }

  // Typed access; each throws nanochat::Error("pickle: expected <kind>, got <kind> ...") on a mismatch.
  bool as_bool() const;
  int64_t as_int() const;   // int (or bool, as Python allows)
  double as_float() const;  // float or int
  const std::string& str() const;
  const std::string& bytes() const;
  std::vector<PyValue>& list() const;
  std::vector<PyValue>& tuple() const;
  std::vector<PyValue>& items() const;  // list or tuple items
  PyDict& dict() const;
  PyGlobal& global() const;
  PyObject& object() const;
  PyPersId& persid() const;
  PyNative& native() const;

  // True when both refer to the same node (or are equal atoms): Python's `is`.
  bool same(const PyValue& o) const;
  // Python == for hashable values (None, bool, int, float, str, bytes, tuples of those; other nodes by
  // identity). 1 == 1.0 == True as in Python.
  bool equals(const PyValue& o) const;
  size_t hash() const;  // consistent with equals; throws for unhashable kinds (list, dict)
  // Nesting depth as recorded while the tree was built (0 for leaves); the reader bounds it.
  uint32_t depth() const;
  // Python-like repr, cut at max_len characters; for messages and debugging.
  std::string repr(size_t max_len = 200) const;

  const void* node_ptr() const;  // identity of the node (nullptr for atoms)

 private:
  using V = std::variant<std::monostate, bool, int64_t, double, std::shared_ptr<PyStr>, std::shared_ptr<PyBytes>,
                         std::shared_ptr<PyList>, std::shared_ptr<PyTuple>, std::shared_ptr<PyDict>,
                         std::shared_ptr<PyGlobal>, std::shared_ptr<PyObject>, std::shared_ptr<PyPersId>,
                         std::shared_ptr<PyNative>>;
  V v_;
  friend class Unpickler;
};

struct PyStr {
  std::string utf8;
};
struct PyBytes {
  std::string data;
};
struct PyList {
  std::vector<PyValue> items;
  uint32_t depth = 1;
};
struct PyTuple {
  std::vector<PyValue> items;
  uint32_t depth = 1;
};

// An insertion-ordered dict with Python key semantics (any hashable key: str, bytes, int, tuple, ...).
struct PyDict {
  std::vector<std::pair<PyValue, PyValue>> items;
  uint32_t depth = 1;

  size_t size() const { return items.size(); }
  // Insert or replace (keeps the first insertion position, as Python does).
  void set(PyValue key, PyValue value);
  const PyValue* find(const PyValue& key) const;
  const PyValue* find(std::string_view str_key) const;
  // at(): find or throw an Error naming the missing key.
  const PyValue& at(std::string_view str_key) const;
  const PyValue& at(const PyValue& key) const;

 private:
  void sync_index() const;
  mutable std::unordered_multimap<size_t, size_t> index_;  // key hash -> position in items
};

struct PyGlobal {
  std::string module, name;
};

// The result of REDUCE (callable(*args)) or NEWOBJ (cls.__new__(cls, *args)), plus what Python's pickler
// appends for such objects: list items (APPENDS), dict items (SETITEMS, e.g. an OrderedDict) and BUILD state.
struct PyObject {
  PyValue callable;  // normally a Global
  PyValue args;      // a tuple
  bool newobj = false;
  std::vector<PyValue> list_items;
  std::vector<std::pair<PyValue, PyValue>> dict_items;
  PyValue state;  // BUILD argument; None = no BUILD (Python's pickler omits a None state too)
  uint32_t depth = 1;

  // "module.name" of the callable when it is a Global, else "".
  std::string qualname() const;
  bool is(std::string_view module, std::string_view name) const;
};

struct PyPersId {
  PyValue pid;
};

struct PyNative {
  std::any value;
  std::string type;
};

struct UnpickleHooks {
  // BINPERSID: turn a persistent id into a value. Unset: the tree gets a PersId node.
  std::function<PyValue(const PyValue& pid)> persistent_load;
  // REDUCE / NEWOBJ: return a value to use instead of a generic Object node, or nullopt for the default.
  std::function<std::optional<PyValue>(const PyGlobal& callable, const PyValue& args)> reduce;
  // GLOBAL / STACK_GLOBAL: throw to refuse a class (a safety allow-list); unset accepts any.
  std::function<void(const PyGlobal&)> check_global;
};

// Parse one pickle (the bytes up to and including STOP; trailing bytes are an error unless allow_trailing).
// Malformed input of any kind throws nanochat::Error("pickle: ... at byte N"); it never crashes.
PyValue pickle_loads(std::string_view data, const UnpickleHooks& hooks = {}, bool allow_trailing = false);

// Serialize like CPython's pickle.dumps(obj, protocol) (protocols 2, 3 and 4; bytes need protocol >= 3).
// PersId nodes are written as persistent ids (BINPERSID). Native nodes cannot be written (Error).
std::string pickle_dumps(const PyValue& v, int protocol = 4);

}  // namespace nanochat
