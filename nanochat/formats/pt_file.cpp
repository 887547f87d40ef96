// pt_file: see pt_file.h. Layout of what torch.save writes (torch.serialization's zip format): a zip with one top
// folder holding data.pkl (protocol 2), data/<key> (raw little-endian storage bytes), version and optionally byteorder.
#include "nanochat/formats/pt_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <tuple>
#include <unordered_map>

#include <caffe2/serialize/inline_container.h>
#include <zlib.h>

#include "nanochat/common.h"
#include "nanochat/formats/pickle.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

// Storage class names as torch pickles them (torch.<Name>Storage) and their dtypes.
const std::vector<std::pair<std::string, at::ScalarType>>& storage_types() {
  static const std::vector<std::pair<std::string, at::ScalarType>> t = {{"FloatStorage", at::kFloat},
                                                                        {"BFloat16Storage", at::kBFloat16},
                                                                        {"HalfStorage", at::kHalf},
                                                                        {"DoubleStorage", at::kDouble},
                                                                        {"LongStorage", at::kLong},
                                                                        {"IntStorage", at::kInt},
                                                                        {"ShortStorage", at::kShort},
                                                                        {"CharStorage", at::kChar},
                                                                        {"ByteStorage", at::kByte},
                                                                        {"BoolStorage", at::kBool},
                                                                        {"ComplexFloatStorage", at::kComplexFloat},
                                                                        {"ComplexDoubleStorage", at::kComplexDouble},
                                                                        {"UntypedStorage", at::kByte}};
  return t;
}

struct LoadedStorage {
  at::Storage storage;
  at::ScalarType dtype;
};

// ----- reading -------------------------------------------------------------------------------------------------

uint32_t le32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t le64(const unsigned char* p) { return uint64_t(le32(p)) | uint64_t(le32(p + 4)) << 32; }
uint16_t le16(const unsigned char* p) { return uint16_t(p[0] | p[1] << 8); }

// The CRC-32 of every record, from the zip's central directory, by name without the top folder ("data/0").
// torch's zip reader does not check them (miniz is built without its CRC checks), so bytes flipped inside a
// tensor would load silently; PtReader checks each record it reads against these.
std::unordered_map<std::string, uint32_t> zip_crcs(const fs::path& path) {
  std::string bytes;
  std::ifstream f(path, std::ios::binary);
  f.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(f.tellg());
  auto read_at = [&](uint64_t off, uint64_t n) {
    if (off > size || n > size - off) fail("{}: its zip directory points outside the file (truncated?)", path.string());
    std::string b(n, '\0');
    f.seekg(std::streamoff(off));
    f.read(b.data(), std::streamsize(n));
    return b;
  };
  // End of central directory: 22 bytes + a comment of up to 64 KiB at the very end.
  const uint64_t tail_len = std::min<uint64_t>(size, 22 + 65535);
  const std::string tail = read_at(size - tail_len, tail_len);
  size_t eocd = std::string::npos;
  for (size_t i = tail.size() >= 22 ? tail.size() - 22 + 1 : 0; i-- > 0;)
    if (le32(reinterpret_cast<const unsigned char*>(tail.data() + i)) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) fail("{}: no zip end-of-directory record (truncated file?)", path.string());
  auto* e = reinterpret_cast<const unsigned char*>(tail.data() + eocd);
  uint64_t entries = le16(e + 10), dir_size = le32(e + 12), dir_off = le32(e + 16);
  if ((entries == 0xffff || dir_size == 0xffffffff || dir_off == 0xffffffff) && eocd >= 20) {
    auto* loc = e - 20;  // zip64 locator, then the zip64 end record it points at
    if (le32(loc) == 0x07064b50) {
      const std::string z = read_at(le64(loc + 8), 56);
      auto* zp = reinterpret_cast<const unsigned char*>(z.data());
      if (le32(zp) != 0x06064b50) fail("{}: damaged zip64 directory", path.string());
      entries = le64(zp + 32), dir_size = le64(zp + 40), dir_off = le64(zp + 48);
    }
  }
  const std::string dir = read_at(dir_off, dir_size);
  std::unordered_map<std::string, uint32_t> crcs;
  size_t pos = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (pos + 46 > dir.size()) fail("{}: damaged zip directory", path.string());
    auto* c = reinterpret_cast<const unsigned char*>(dir.data() + pos);
    if (le32(c) != 0x02014b50) fail("{}: damaged zip directory", path.string());
    const size_t name_len = le16(c + 28), extra_len = le16(c + 30), comment_len = le16(c + 32);
    if (pos + 46 + name_len > dir.size()) fail("{}: damaged zip directory", path.string());
    std::string name = dir.substr(pos + 46, name_len);
    const size_t slash = name.find('/');
    crcs[slash == std::string::npos ? name : name.substr(slash + 1)] = le32(c + 16);
    pos += 46 + name_len + extra_len + comment_len;
  }
  return crcs;
}

class PtReader {
 public:
  explicit PtReader(const fs::path& path) : path_(path) {
    if (!fs::exists(path)) fail("{} does not exist", path.string());
    try {
      reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path.string());
    } catch (const c10::Error& e) {
      fail("{} is not a torch.save zip file ({}); files from torch older than 1.6 need re-saving with a newer torch",
           path.string(), first_line(e.what_without_backtrace()));
    }
    crcs_ = zip_crcs(path);
  }

  c10::IValue load() {
    if (reader_->hasRecord("byteorder")) {
      auto [ptr, n] = record("byteorder");
      std::string order(static_cast<const char*>(ptr.get()), n);
      if (order != "little")
        fail("{} was saved on a {}-endian machine; only little-endian files are supported", path_.string(), order);
    }
    if (!reader_->hasRecord("data.pkl")) fail("{} has no data.pkl: not a torch.save file", path_.string());
    auto [ptr, n] = record("data.pkl");
    std::string_view pkl(static_cast<const char*>(ptr.get()), n);
    UnpickleHooks hooks;
    hooks.persistent_load = [this](const PyValue& pid) { return persistent_load(pid); };
    hooks.reduce = [this](const PyGlobal& g, const PyValue& args) { return reduce(g, args); };
    try {
      PyValue tree = pickle_loads(pkl, hooks);
      return to_ivalue(tree);
    } catch (const Error& e) {
      if (std::string_view(e.what()).rfind(path_.string(), 0) == 0) throw;  // already names the file
      fail("{}: {}", path_.string(), e.what());
    } catch (const c10::Error& e) {
      fail("{}: {}", path_.string(), first_line(e.what_without_backtrace()));
    }
  }

 private:
  fs::path path_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
  std::unordered_map<std::string, LoadedStorage> storages_;

  std::unordered_map<std::string, uint32_t> crcs_;

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  // A record's bytes, checked against the CRC-32 the zip directory stores for it.
  std::tuple<at::DataPtr, size_t> record(const std::string& name) {
    auto [ptr, n] = reader_->getRecord(name);
    auto it = crcs_.find(name);
    if (it == crcs_.end()) fail("{}: record {} is not in the zip directory; the file is damaged", path_.string(), name);
    uLong crc = crc32(0L, Z_NULL, 0);
    const auto* p = static_cast<const Bytef*>(ptr.get());
    for (size_t done = 0; done < n;) {  // zlib takes 32-bit lengths
      const uInt chunk = uInt(std::min<size_t>(n - done, size_t(1) << 30));
      crc = crc32(crc, p + done, chunk);
      done += chunk;
    }
    // 0 is what a writer stores when told not to compute CRCs (torch.serialization.set_crc32_options(False)).
    if (it->second != 0 && uint32_t(crc) != it->second)
      fail(
          "{} is corrupted: record {} fails its CRC-32 check (the file was damaged after it was written; restore it "
          "or use another checkpoint)",
          path_.string(), name);
    return {std::move(ptr), n};
  }

  // ('storage', torch.<Type>Storage, key, location, numel) → the storage's bytes from data/<key>.
  PyValue persistent_load(const PyValue& pid) {
    auto& t = pid.tuple();
    if (t.size() < 5 || t[0].str() != "storage") fail("unsupported persistent id {}", pid.repr(100));
    const PyGlobal& cls = t[1].global();
    const std::string& key = t[2].str();
    int64_t numel = t[4].as_int();
    at::ScalarType dtype = at::kByte;
    bool known = false;
    for (auto& [name, st] : storage_types())
      if (cls.module == "torch" && cls.name == name) {
        dtype = st;
        known = true;
      }
    if (!known) fail("unsupported storage type {}.{}", cls.module, cls.name);
    auto it = storages_.find(key);
    if (it == storages_.end()) {
      std::string rec = "data/" + key;
      if (!reader_->hasRecord(rec)) fail("storage record {} is missing", rec);
      auto [data, nbytes] = record(rec);
      int64_t itemsize = (int64_t)c10::elementSize(dtype);
      if (numel < 0 || (int64_t)nbytes != numel * itemsize)
        fail("storage {} holds {} bytes, expected {} elements of {} bytes", key, nbytes, numel, itemsize);
      at::Storage storage(at::Storage::use_byte_size_t(), nbytes, std::move(data), nullptr, false);
      it = storages_.emplace(key, LoadedStorage{std::move(storage), dtype}).first;
    }
    return PyValue::make_native(it->second, "storage");
  }

  static std::vector<int64_t> int_tuple(const PyValue& v) {
    std::vector<int64_t> out;
    for (auto& x : v.items()) out.push_back(x.as_int());
    return out;
  }

  std::optional<PyValue> reduce(const PyGlobal& g, const PyValue& args) {
    if (g.module == "torch._utils" && (g.name == "_rebuild_tensor_v2" || g.name == "_rebuild_tensor")) {
      auto& a = args.tuple();
      if (a.size() < 4 || !a[0].is(PyValue::Kind::Native) || a[0].native().type != "storage")
        fail("{} with unexpected arguments {}", g.name, args.repr(120));
      const auto& st = std::any_cast<const LoadedStorage&>(a[0].native().value);
      int64_t offset = a[1].as_int();
      std::vector<int64_t> size = int_tuple(a[2]), stride = int_tuple(a[3]);
      if (size.size() != stride.size()) fail("tensor with {} sizes but {} strides", size.size(), stride.size());
      int64_t numel = (int64_t)(st.storage.nbytes() / c10::elementSize(st.dtype));
      int64_t last = offset;  // furthest element the view touches must lie inside the storage
      bool empty = false;
      for (size_t i = 0; i < size.size(); i++) {
        if (size[i] < 0 || stride[i] < 0) fail("tensor with negative size or stride");
        if (size[i] == 0)
          empty = true;
        else
          last += (size[i] - 1) * stride[i];
      }
      if (offset < 0 || (!empty && last >= numel))
        fail("tensor view (offset {}, size {}, stride {}) reaches past its storage of {} elements", offset,
             args.tuple()[2].repr(), args.tuple()[3].repr(), numel);
      at::Tensor t = at::empty({0}, at::TensorOptions().dtype(st.dtype)).set_(st.storage, offset, size, stride);
      return PyValue::make_native(t, "tensor");
    }
    if (g.module == "torch._utils" && (g.name == "_rebuild_parameter" || g.name == "_rebuild_parameter_with_state")) {
      auto& a = args.tuple();
      if (a.empty()) fail("{} without arguments", g.name);
      return a[0];
    }
    if ((g.module == "torch.jit._pickle" && g.name == "restore_type_tag") ||
        (g.module == "torch" && g.name == "Size")) {
      if (args.tuple().empty()) fail("{}.{} without arguments", g.module, g.name);
      return args.tuple()[0];
    }
    if (g.module == "torch.jit._pickle" && g.name.rfind("build_", 0) == 0 && !args.tuple().empty())
      return args.tuple()[0];
    return std::nullopt;
  }

  c10::IValue dict_to_ivalue(const std::vector<std::pair<PyValue, PyValue>>& items) {
    bool all_str = true, all_int = true;
    for (auto& [k, v] : items) {
      all_str &= k.is(PyValue::Kind::Str);
      all_int &= k.is(PyValue::Kind::Int);
    }
    if (!all_str && !all_int) fail("dict keys must be all str or all int, got {}", items.front().first.kind_name());
    c10::TypePtr key_type = all_str ? c10::TypePtr(c10::StringType::get()) : c10::TypePtr(c10::IntType::get());
    c10::impl::GenericDict d(key_type, c10::AnyType::get());
    for (auto& [k, v] : items) d.insert_or_assign(to_ivalue(k), to_ivalue(v));
    return d;
  }

  c10::IValue to_ivalue(const PyValue& v) {
    using K = PyValue::Kind;
    switch (v.kind()) {
      case K::None:
        return c10::IValue();
      case K::Bool:
        return v.as_bool();
      case K::Int:
        return v.as_int();
      case K::Float:
        return v.as_float();
      case K::Str:
        return v.str();
      case K::List: {
        c10::impl::GenericList l(c10::AnyType::get());
        for (auto& x : v.list()) l.push_back(to_ivalue(x));
        return l;
      }
      case K::Tuple: {
        std::vector<c10::IValue> items;
        for (auto& x : v.tuple()) items.push_back(to_ivalue(x));
        return c10::ivalue::Tuple::create(std::move(items));
      }
      case K::Dict:
        return dict_to_ivalue(v.dict().items);
      case K::Object: {
        const PyObject& o = v.object();
        if (o.is("collections", "OrderedDict")) return dict_to_ivalue(o.dict_items);  // _metadata state dropped
        fail("unsupported Python object {}", o.qualname().empty() ? v.repr(80) : o.qualname());
      }
      case K::Native:
        if (v.native().type == "tensor") return std::any_cast<const at::Tensor&>(v.native().value);
        fail("a bare storage (not wrapped in a tensor) is not supported");
      default:
        fail("unsupported value {} of type {}", v.repr(80), v.kind_name());
    }
  }
};

// ----- writing -------------------------------------------------------------------------------------------------

class PtWriter {
 public:
  PyValue to_py(const c10::IValue& v) {
    if (v.isNone()) return PyValue();
    if (v.isBool()) return PyValue::make_bool(v.toBool());
    if (v.isInt()) return PyValue::make_int(v.toInt());
    if (v.isDouble()) return PyValue::make_float(v.toDouble());
    if (v.isString()) return PyValue::make_str(v.toStringRef());
    if (v.isTensor()) return tensor(v.toTensor());
    if (v.isTuple()) {
      std::vector<PyValue> items;
      for (auto& x : v.toTuple()->elements()) items.push_back(to_py(x));
      return PyValue::make_tuple(std::move(items));
    }
    if (v.isList()) {
      std::vector<PyValue> items;
      for (const auto& x : v.toList()) items.push_back(to_py(c10::IValue(x)));
      return PyValue::make_list(std::move(items));
    }
    if (v.isGenericDict()) {
      PyDict d;
      for (auto& e : v.toGenericDict()) d.set(to_py(e.key()), to_py(e.value()));
      return PyValue::make_dict(std::move(d));
    }
    fail("cannot save a {} in a .pt file", v.tagKind());
  }

  // data/<key> records in key order.
  std::vector<std::pair<std::string, at::Tensor>> records;

 private:
  PyValue storage_str_ = PyValue::make_str("storage"), cpu_str_ = PyValue::make_str("cpu");
  PyValue rebuild_ = PyValue::make_global("torch._utils", "_rebuild_tensor_v2");
  PyValue ordered_dict_ = PyValue::make_global("collections", "OrderedDict");
  struct Saved {
    std::string key;
    at::ScalarType dtype;
  };
  std::unordered_map<const void*, Saved> saved_;

  PyValue tensor(const at::Tensor& t0) {
    if (!t0.defined()) return PyValue();
    if (t0.is_sparse() || t0.is_quantized()) fail("cannot save a sparse or quantized tensor");
    at::Tensor t = t0.detach();
    at::ScalarType dtype = t.scalar_type();
    std::string cls;
    for (auto& [name, st] : storage_types())
      if (st == dtype && name != "UntypedStorage") {
        cls = name;
        break;
      }
    if (cls.empty()) fail("cannot save a tensor of dtype {}", c10::toString(dtype));
    size_t itemsize = c10::elementSize(dtype);
    const at::Storage& storage = t.storage();
    if (storage.nbytes() % itemsize)
      fail("tensor storage of {} bytes is not a whole number of {}", storage.nbytes(), c10::toString(dtype));
    int64_t storage_numel = (int64_t)(storage.nbytes() / itemsize);
    const void* id = storage.unsafeGetStorageImpl();
    auto it = saved_.find(id);
    if (it == saved_.end()) {
      std::string key = std::to_string(saved_.size());
      // The whole storage, as Python saves it, so views keep their offsets and shared storages stay shared.
      // (Copied to the CPU one storage at a time while writing, not all at once.)
      records.emplace_back(key, at::empty({0}, t.options()).set_(storage, 0, {storage_numel}, {1}));
      it = saved_.emplace(id, Saved{key, dtype}).first;
    } else if (it->second.dtype != dtype) {
      fail("cannot save tensors that view the same storage as different dtypes");
    }
    PyValue pid = PyValue::make_tuple({storage_str_, PyValue::make_global("torch", cls),
                                       PyValue::make_str(it->second.key), cpu_str_, PyValue::make_int(storage_numel)});
    std::vector<PyValue> size, stride;
    for (int64_t s : t.sizes()) size.push_back(PyValue::make_int(s));
    for (int64_t s : t.strides()) stride.push_back(PyValue::make_int(s));
    PyValue hooks = PyValue::make_object(ordered_dict_, PyValue::make_tuple(), false);
    PyValue args = PyValue::make_tuple({PyValue::make_persid(pid), PyValue::make_int(t.storage_offset()),
                                        PyValue::make_tuple(std::move(size)), PyValue::make_tuple(std::move(stride)),
                                        PyValue::make_bool(t0.requires_grad()), hooks});
    return PyValue::make_object(rebuild_, args, false);
  }
};

void write_pt(const c10::IValue& value, const std::function<size_t(const void*, size_t)>& sink) {
  PtWriter w;
  std::string pkl = pickle_dumps(w.to_py(value), 2);
  caffe2::serialize::PyTorchStreamWriter zip(sink);
  zip.writeRecord("data.pkl", pkl.data(), pkl.size());
  zip.writeRecord("byteorder", "little", 6);
  for (auto& [key, t] : w.records) {
    at::Tensor cpu = t.device().is_cpu() ? t : t.cpu();
    zip.writeRecord("data/" + key, cpu.data_ptr(), cpu.nbytes());
  }
  zip.writeEndOfFile();
}

}  // namespace

c10::IValue load_pt(const fs::path& path) { return PtReader(path).load(); }

NamedTensors load_state_dict(const fs::path& path) {
  c10::IValue v = load_pt(path);
  if (!v.isGenericDict()) fail("{} holds a {}, not a state dict", path.string(), v.tagKind());
  NamedTensors out;
  for (auto& e : v.toGenericDict()) {
    if (!e.key().isString()) fail("{}: state dict key {} is not a string", path.string(), e.key().tagKind());
    if (!e.value().isTensor())
      fail("{}: state dict entry '{}' is a {}, not a tensor", path.string(), e.key().toStringRef(),
           e.value().tagKind());
    out.emplace_back(e.key().toStringRef(), e.value().toTensor());
  }
  return out;
}

std::string pt_bytes(const c10::IValue& value) {
  std::string out;
  write_pt(value, [&](const void* p, size_t n) {
    out.append(static_cast<const char*>(p), n);
    return n;
  });
  return out;
}

void save_pt(const fs::path& path, const c10::IValue& value) {
  write_file_atomic_with(path, [&](const ChunkWriter& w) {
    // An exception must not unwind through the zip writer's C code: keep the first one and rethrow it after.
    std::exception_ptr error;
    write_pt(value, [&](const void* p, size_t n) {
      if (!error) {
        try {
          w(p, n);
        } catch (...) {
          error = std::current_exception();
        }
      }
      return n;
    });
    if (error) std::rethrow_exception(error);
  });
}

c10::IValue state_dict_ivalue(const NamedTensors& tensors) {
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  for (auto& [k, t] : tensors) d.insert_or_assign(k, t);
  return d;
}

void save_state_dict(const fs::path& path, const NamedTensors& tensors) { save_pt(path, state_dict_ivalue(tensors)); }

}  // namespace nanochat
