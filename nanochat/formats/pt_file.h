// pt_file: torch.save files (.pt) read and written the way Python torch does, so checkpoints move freely between
// Python nanochat and this program in both directions.
//
// Reading: libtorch's zip reader (caffe2::serialize::PyTorchStreamReader, any top folder name) plus our own
// unpickler (nanochat/formats/pickle.h) for data.pkl — torch::pickle_load cannot read Python's OrderedDict state dicts.
// Tensors of any dtype (bf16 included), storage offsets, strides and storages shared between tensors come back
// as they were saved, on the CPU. Python values map to IValues: dict / OrderedDict → GenericDict (str or int
// keys), list → GenericList, tuple → Tuple, float → double, int, str, bool, None.
//
// Writing: data.pkl is produced by our pickler (protocol 2, the opcodes torch.save emits: _rebuild_tensor_v2 with
// persistent-id storages) inside libtorch's zip writer. Python's torch.load reads it, also with
// weights_only=True (the default since torch 2.6) — which torch::pickle_save's output fails, because it tags
// every dict and list with torch.jit._pickle.restore_type_tag. Dicts are written as plain dicts.
//
// Files are written atomically: "<path>.tmp", fsync, rename, fsync of the directory.
//
// Usage:
//   auto sd = load_state_dict("model_000500.pt");       // [(name, tensor)] in file order
//   c10::IValue opt = load_pt("optim_000500_rank0.pt");  // {"state": {0: {...}}, "param_groups": [...]}
//   save_state_dict("model.pt", sd);
//   save_pt("optim.pt", opt);
//
// Not covered: Python's legacy (pre-1.6, non-zip) format, sparse / quantized / nested tensors, big-endian files.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace nanochat {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Any torch.save file → IValue tree (tensors on CPU). Bad or unsupported content → nanochat::Error naming the file.
c10::IValue load_pt(const std::filesystem::path& path);
// A state dict file (dict or OrderedDict of str → tensor) in file order.
NamedTensors load_state_dict(const std::filesystem::path& path);

// The .pt bytes for an IValue tree (dicts with str/int/bool/float keys, lists, tuples, tensors, scalars, None).
std::string pt_bytes(const c10::IValue& value);
void save_pt(const std::filesystem::path& path, const c10::IValue& value);
void save_state_dict(const std::filesystem::path& path, const NamedTensors& tensors);
// A GenericDict str → tensor holding the tensors in order (what save_state_dict writes).
c10::IValue state_dict_ivalue(const NamedTensors& tensors);

}  // namespace nanochat
