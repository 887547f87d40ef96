// Tests for nanochat/pt_file: reading Python torch.save files (state dicts as OrderedDict, optimizer state,
// every dtype, views and shared storages), writing .pt files, and — when /usr/bin/python3 has torch — that
// Python's torch.load (weights_only=True) reads what we write with the same keys, dtypes, shapes and values.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "nanochat/common.h"
#include "nanochat/formats/pt_file.h"

using namespace nanochat;
namespace fs = std::filesystem;

static fs::path fx(const std::string& rel) { return fs::path(NANOCHAT_FIXTURES) / rel; }

static fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nanochat_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

static c10::IValue get(const c10::IValue& dict, const c10::IValue& key) {
  auto d = dict.toGenericDict();
  auto it = d.find(key);
  if (it == d.end()) throw std::runtime_error("missing key");
  return it->value();
}

TEST(PtFile, LoadsPythonModelStateDict) {
  NamedTensors sd = load_state_dict(fx("python_basedir/base_checkpoints/d2/model_000003.pt"));
  ASSERT_EQ(sd.size(), 21u);
  EXPECT_EQ(sd.front().first, "resid_lambdas");
  EXPECT_EQ(sd[4].first, "transformer.wte.weight");
  EXPECT_EQ(sd.back().first, "value_embeds.1.weight");
  const torch::Tensor& wte = sd[4].second;
  EXPECT_EQ(wte.sizes(), torch::IntArrayRef({1088, 64}));
  EXPECT_EQ(wte.dtype(), torch::kFloat32);
  // Numbers from Python's torch.load of the same file.
  EXPECT_NEAR(wte.to(torch::kDouble).sum().item<double>(), 86.78962051738608, 1e-9);
  EXPECT_FLOAT_EQ(wte.flatten()[1].item<float>(), 0.2968766689300537f);
  EXPECT_NEAR(sd.back().second.to(torch::kDouble).sum().item<double>(), -103.24524584307846, 1e-9);
  EXPECT_FLOAT_EQ(sd[0].second[0].item<float>(), 1.0626604557037354f);
}

TEST(PtFile, LoadsPythonOptimizerState) {
  c10::IValue o = load_pt(fx("python_basedir/base_checkpoints/d2/optim_000003_rank0.pt"));
  c10::IValue state = get(o, "state");
  EXPECT_EQ(state.toGenericDict().size(), 12u);
  c10::IValue s0 = get(state, int64_t(0));
  EXPECT_EQ(get(s0, "step").toInt(), 3);
  EXPECT_EQ(get(s0, "exp_avg").toTensor().sizes(), torch::IntArrayRef({1088, 64}));
  c10::IValue s9 = get(state, int64_t(9));
  EXPECT_NEAR(get(s9, "momentum_buffer").toTensor().to(torch::kDouble).sum().item<double>(), 0.08346857597233015,
              1e-12);
  auto groups = get(o, "param_groups").toList();
  ASSERT_EQ(groups.size(), 10u);
  c10::IValue g0 = groups.get(0);
  EXPECT_EQ(get(g0, "kind").toStringRef(), "adamw");
  auto betas = get(g0, "betas").toTuple()->elements();
  EXPECT_DOUBLE_EQ(betas[0].toDouble(), 0.8);
  EXPECT_DOUBLE_EQ(betas[1].toDouble(), 0.96);
  EXPECT_DOUBLE_EQ(get(g0, "eps").toDouble(), 1e-10);
  c10::IValue g7 = groups.get(7);
  EXPECT_EQ(get(g7, "kind").toStringRef(), "muon");
  EXPECT_EQ(get(g7, "ns_steps").toInt(), 5);
  auto params = get(g7, "params").toList();
  ASSERT_EQ(params.size(), 8u);
  EXPECT_EQ(params.get(0).toInt(), 9);
}

TEST(PtFile, LoadsTokenBytesAndGptTiny) {
  NamedTensors tb;
  c10::IValue t = load_pt(fx("python_basedir/tokenizer/token_bytes.pt"));
  ASSERT_TRUE(t.isTensor());
  EXPECT_EQ(t.toTensor().dtype(), torch::kInt32);
  EXPECT_EQ(t.toTensor().numel(), 1033);
  EXPECT_EQ(t.toTensor().sum().item<int64_t>(), 3006);
  NamedTensors tiny = load_state_dict(fx("gpt_tiny/model.pt"));
  EXPECT_GT(tiny.size(), 10u);
  for (auto& [k, v] : tiny) EXPECT_EQ(v.dtype(), torch::kFloat32) << k;
}

TEST(PtFile, LoadsEveryDtypeViewsAndSharedStorages) {
  NamedTensors sd = load_state_dict(fx("pt/views.pt"));
  std::map<std::string, torch::Tensor> m(sd.begin(), sd.end());
  torch::Tensor a = torch::arange(12, torch::kFloat32).view({3, 4});
  EXPECT_TRUE(torch::equal(m["a"], a));
  EXPECT_TRUE(torch::equal(m["a_t"], a.t()));
  EXPECT_EQ(m["a_t"].strides(), torch::IntArrayRef({1, 4}));
  EXPECT_TRUE(torch::equal(m["a_row"], a[1]));
  EXPECT_EQ(m["a_row"].storage_offset(), 4);
  EXPECT_TRUE(torch::equal(m["a_col"], a.select(1, 2)));
  EXPECT_EQ(m["a_col"].storage_offset(), 2);
  EXPECT_EQ(m["a"].data_ptr(), m["a_t"].data_ptr());  // one storage, as in Python
  EXPECT_TRUE(torch::equal(m["bf16"], torch::arange(5, torch::kBFloat16) / 4));
  EXPECT_TRUE(torch::equal(m["f16"], torch::arange(4, torch::kFloat16) - 1.5));
  EXPECT_TRUE(torch::allclose(m["f64"], torch::arange(3, torch::kFloat64) / 3));
  EXPECT_TRUE(torch::equal(m["i64"], torch::arange(4, torch::kInt64) * int64_t(-1000000000000)));
  EXPECT_TRUE(torch::equal(m["i32"], torch::arange(1033, torch::kInt32)));
  EXPECT_TRUE(torch::equal(m["u8"], torch::arange(6, torch::kUInt8) * 50));
  EXPECT_TRUE(torch::equal(m["i8"], torch::arange(3, torch::kInt8) - 1));
  EXPECT_EQ(m["bool"].dtype(), torch::kBool);
  EXPECT_EQ(m["scalar"].dim(), 0);
  EXPECT_EQ(m["scalar"].item<float>(), 3.5f);
  EXPECT_EQ(m["empty"].sizes(), torch::IntArrayRef({0, 3}));

  c10::IValue o = load_pt(fx("pt/optim_like.pt"));
  auto g1 = get(o, "param_groups").toList().get(1);
  EXPECT_TRUE(get(g1, "nesterov").toBool());
  EXPECT_TRUE(get(g1, "note").isNone());
  EXPECT_EQ(get(get(get(o, "state"), int64_t(0)), "step").toInt(), 7);
}

TEST(PtFile, RoundTripsStateDictsAndNestedValues) {
  fs::path dir = temp_dir("pt_roundtrip");
  NamedTensors views = load_state_dict(fx("pt/views.pt"));
  save_state_dict(dir / "views.pt", views);
  EXPECT_FALSE(fs::exists(dir / "views.pt.tmp"));
  NamedTensors back = load_state_dict(dir / "views.pt");
  ASSERT_EQ(back.size(), views.size());
  for (size_t i = 0; i < views.size(); i++) {
    EXPECT_EQ(back[i].first, views[i].first);
    EXPECT_EQ(back[i].second.dtype(), views[i].second.dtype());
    EXPECT_EQ(back[i].second.strides(), views[i].second.strides()) << views[i].first;
    EXPECT_EQ(back[i].second.storage_offset(), views[i].second.storage_offset());
    EXPECT_TRUE(torch::equal(back[i].second, views[i].second)) << views[i].first;
  }
  EXPECT_EQ(back[0].second.data_ptr(), back[1].second.data_ptr());  // sharing survives

  c10::IValue opt = load_pt(fx("python_basedir/base_checkpoints/d2/optim_000003_rank0.pt"));
  save_pt(dir / "optim.pt", opt);
  c10::IValue opt2 = load_pt(dir / "optim.pt");
  auto s = get(opt2, "state").toGenericDict();
  EXPECT_EQ(s.size(), 12u);
  EXPECT_TRUE(torch::equal(get(get(get(opt2, "state"), int64_t(19)), "momentum_buffer").toTensor(),
                           get(get(get(opt, "state"), int64_t(19)), "momentum_buffer").toTensor()));
  EXPECT_EQ(get(get(opt2, "param_groups").toList().get(2), "betas").toTuple()->elements()[1].toDouble(), 0.995);
}

// Files written by libtorch's own torch::pickle_save (dicts wrapped in restore_type_tag, typed lists) load too.
TEST(PtFile, LoadsLibtorchPickleSaveFiles) {
  fs::path dir = temp_dir("pt_libtorch");
  c10::Dict<std::string, at::Tensor> d;
  d.insert("w", torch::arange(6, torch::kFloat32).view({2, 3}));
  d.insert("b", torch::ones({3}, torch::kBFloat16));
  std::vector<char> bytes = torch::pickle_save(d);
  std::ofstream(dir / "ps.pt", std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
  NamedTensors sd = load_state_dict(dir / "ps.pt");
  ASSERT_EQ(sd.size(), 2u);
  EXPECT_EQ(sd[0].first, "w");
  EXPECT_TRUE(torch::equal(sd[0].second, torch::arange(6, torch::kFloat32).view({2, 3})));
  EXPECT_EQ(sd[1].second.dtype(), torch::kBFloat16);
  c10::impl::GenericList l(c10::IntType::get());
  l.push_back(int64_t(4));
  l.push_back(int64_t(5));
  bytes = torch::pickle_save(c10::IValue(l));
  std::ofstream(dir / "list.pt", std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
  c10::IValue back = load_pt(dir / "list.pt");
  ASSERT_TRUE(back.isList());
  EXPECT_EQ(back.toList().get(1).toInt(), 5);
}

TEST(PtFile, BadFilesAreErrors) {
  fs::path dir = temp_dir("pt_bad");
  EXPECT_THROW(load_pt(dir / "missing.pt"), Error);
  { std::ofstream(dir / "garbage.pt") << "this is not a zip file at all"; }
  EXPECT_THROW(load_pt(dir / "garbage.pt"), Error);
  std::string good = read_file(fx("pt/views.pt"));
  for (size_t n : {size_t(0), size_t(100), good.size() / 2, good.size() - 10}) {
    { std::ofstream(dir / "cut.pt", std::ios::binary) << good.substr(0, n); }
    EXPECT_THROW(load_pt(dir / "cut.pt"), Error) << n;
  }
  EXPECT_THROW(load_state_dict(fx("pt/optim_like.pt")), Error);  // a dict, but not of tensors
  try {
    load_state_dict(fx("pt/optim_like.pt"));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'state'"), std::string::npos) << e.what();
  }
}

static bool python_torch_available() {
  return std::system((std::string(NANOCHAT_PYTHON) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
}

// What we write must load in Python with weights_only=True and equal what Python itself loaded from the originals.
TEST(PtFile, PythonReadsWhatWeWrite) {
  if (!python_torch_available())
    GTEST_SKIP() << NANOCHAT_PYTHON << " cannot import torch (bash scripts/setup.sh installs it into .venv)";
  fs::path dir = temp_dir("pt_python");
  fs::path model = fx("python_basedir/base_checkpoints/d2/model_000003.pt");
  fs::path optim = fx("python_basedir/base_checkpoints/d2/optim_000003_rank0.pt");
  NamedTensors sd = load_state_dict(model);
  NamedTensors mixed = load_state_dict(fx("pt/views.pt"));
  mixed.emplace_back("bf16_model", sd[4].second.to(torch::kBFloat16));
  save_state_dict(dir / "model.pt", sd);
  save_state_dict(dir / "views.pt", mixed);
  save_pt(dir / "optim.pt", load_pt(optim));
  std::ofstream(dir / "check.py") << R"PY(
import sys, torch
d, model, optim, views = sys.argv[1:5]
# Ours and Python's alike load with weights_only=True (torch 2.x's restricted unpickler, its default).
def load_pair(ours, ref):
    return torch.load(ours, map_location="cpu", weights_only=True), torch.load(ref, map_location="cpu", weights_only=True)
def same(a, b, path):
    assert type(a) == type(b) or (isinstance(a, dict) and isinstance(b, dict)), (path, type(a), type(b))
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), (path, list(a.keys())[:5], list(b.keys())[:5])
        for k in a: same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)): same(x, y, f"{path}[{i}]")
    elif torch.is_tensor(a):
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride(), (path, a.dtype, b.dtype, a.shape, b.shape)
        assert torch.equal(a, b), path
    else:
        assert a == b, (path, a, b)
m, ref = load_pair(d + "/model.pt", model)
assert type(m) is dict and all(torch.is_tensor(v) for v in m.values())
same(m, dict(ref), "model")
same(*load_pair(d + "/optim.pt", optim), "optim")
v, ref = load_pair(d + "/views.pt", views)
for k in ref: same(v[k], ref[k], k)
assert v["a_t"].data_ptr() == v["a"].data_ptr()
assert v["bf16_model"].dtype == torch.bfloat16 and v["bf16_model"].shape == (1088, 64)
assert torch.equal(v["bf16_model"], m["transformer.wte.weight"].bfloat16())
print("python-ok")
)PY";
  std::string cmd = std::string(NANOCHAT_PYTHON) + " " + (dir / "check.py").string() + " " + dir.string() + " " +
                    model.string() + " " + optim.string() + " " + fx("pt/views.pt").string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("python-ok"), std::string::npos) << out;
}
