// Tests for nanochat/checkpoint_manager: save → find → load round trips, build_model's fixes (bf16 → fp32 on CPU,
// "_orig_mod." stripping, missing window_pattern / lambdas), model-tag and step discovery, loading the
// Python-written base dir, crash safety (the process is SIGKILLed at many points of a save and the previous
// checkpoint must still be the one found and it must load), and Python reading our checkpoint files.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "nanochat/checkpoint_manager.h"
#include "nanochat/common.h"

using namespace nanochat;
namespace fs = std::filesystem;

static fs::path fx(const std::string& rel) { return fs::path(NANOCHAT_FIXTURES) / rel; }
static const fs::path kD2 = fx("python_basedir/base_checkpoints/d2");

static fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nanochat_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

static const torch::Tensor& find(const NamedTensors& sd, const std::string& k) {
  for (auto& [name, t] : sd)
    if (name == k) return t;
  throw std::runtime_error("missing " + k);
}

static bool has(const NamedTensors& sd, const std::string& k) {
  for (auto& [name, t] : sd)
    if (name == k) return true;
  return false;
}

TEST(CheckpointManager, LoadsPythonBaseDir) {
  ::setenv("NANOCHAT_BASE_DIR", fx("python_basedir").c_str(), 1);
  ModelCheckpoint ck = load_model_state("base", torch::kCPU);
  EXPECT_EQ(ck.step, 3);
  EXPECT_EQ(ck.dir.filename(), "d2");
  EXPECT_EQ(ck.state.size(), 21u);
  EXPECT_EQ(ck.meta["model_config"]["window_pattern"], "SSSL");
  EXPECT_EQ(ck.meta["dataloader_state_dict"]["rg_idx"], 1);
  auto opt = load_optimizer_state("base", torch::kCPU, 0);
  ASSERT_TRUE(opt.has_value());
  EXPECT_EQ(opt->toGenericDict().at("param_groups").toList().size(), 10u);
  EXPECT_FALSE(load_optimizer_state("base", torch::kCPU, 1).has_value());  // rank 1 never saved: nullopt
  EXPECT_THROW(load_model_state("sft", torch::kCPU), Error);
  EXPECT_THROW(checkpoints_dir_for("mid-train"), Error);
}

TEST(CheckpointManager, SaveThenLoadAppliesBuildModelFixes) {
  fs::path base = temp_dir("ckpt_roundtrip");
  ::setenv("NANOCHAT_BASE_DIR", base.c_str(), 1);
  NamedTensors sd = load_state_dict(kD2 / "model_000003.pt");
  NamedTensors saved;
  for (auto& [k, t] : sd) {
    if (k == "resid_lambdas" || k == "x0_lambdas") continue;  // an "old" checkpoint without them
    saved.emplace_back("_orig_mod." + k, k == "lm_head.weight" ? t.to(torch::kBFloat16) : t);
  }
  Json meta = load_meta(kD2, 3);
  meta["model_config"].erase("window_pattern");
  meta["loop_state"]["min_val_bpb"] = INFINITY;
  meta["user_config"]["run"] = "d\u00e9j\u00e0 vu";
  c10::IValue opt = load_pt(kD2 / "optim_000003_rank0.pt");
  fs::path dir = checkpoints_dir_for("sft") / "d2";
  save_checkpoint(dir, 7, saved, opt, meta, 0);
  save_checkpoint(dir, 12, saved, std::nullopt, meta, 0);

  for (auto& e : fs::directory_iterator(dir)) EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  EXPECT_EQ(find_last_step(dir), 12);
  ModelCheckpoint ck = load_model_state("sft", torch::kCPU, std::nullopt, 7);
  EXPECT_EQ(ck.step, 7);
  ASSERT_EQ(ck.state.size(), sd.size());
  EXPECT_EQ(ck.state[0].first, "smear_lambda");                          // prefix stripped, file order kept
  EXPECT_EQ(find(ck.state, "lm_head.weight").dtype(), torch::kFloat32);  // bf16 → fp32 on CPU
  EXPECT_TRUE(torch::equal(find(ck.state, "lm_head.weight"),
                           find(sd, "lm_head.weight").to(torch::kBFloat16).to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(find(ck.state, "transformer.wte.weight"), find(sd, "transformer.wte.weight")));
  EXPECT_TRUE(torch::equal(find(ck.state, "resid_lambdas"), torch::ones({2})));
  EXPECT_TRUE(torch::equal(find(ck.state, "x0_lambdas"), torch::zeros({2})));
  EXPECT_EQ(ck.meta["model_config"]["window_pattern"], "L");
  EXPECT_TRUE(std::isinf(ck.meta["loop_state"]["min_val_bpb"].get<double>()));
  EXPECT_EQ(ck.meta["user_config"]["run"], "d\u00e9j\u00e0 vu");
  // the meta text is what Python's json.dump(indent=2) writes
  std::string text = read_file(dir / "meta_000007.json");
  EXPECT_NE(text.find("\"min_val_bpb\": Infinity"), std::string::npos);
  EXPECT_NE(text.find("d\\u00e9j\\u00e0 vu"), std::string::npos);

  auto o7 = load_optimizer_state("sft", torch::kCPU, 0, "d2", 7);
  ASSERT_TRUE(o7.has_value());
  EXPECT_TRUE(torch::equal(
      o7->toGenericDict().at("state").toGenericDict().at(int64_t(9)).toGenericDict().at("momentum_buffer").toTensor(),
      opt.toGenericDict().at("state").toGenericDict().at(int64_t(9)).toGenericDict().at("momentum_buffer").toTensor()));
  EXPECT_FALSE(load_optimizer_state("sft", torch::kCPU, 0, "d2", 12).has_value());
  EXPECT_FALSE(ck.state.empty() || has(ck.state, "_orig_mod.lm_head.weight"));
}

TEST(CheckpointManager, FindsLargestModelAndLastCommittedStep) {
  fs::path root = temp_dir("ckpt_find");
  for (auto t : {"d2", "d12", "d3x", "foo"}) fs::create_directories(root / t);
  EXPECT_EQ(find_largest_model(root), "d12");
  fs::path other = temp_dir("ckpt_find_nod");
  fs::create_directories(other / "alpha");
  fs::create_directories(other / "beta");
  fs::last_write_time(other / "alpha", fs::file_time_type::clock::now() + std::chrono::hours(1));
  EXPECT_EQ(find_largest_model(other), "alpha");
  EXPECT_THROW(find_largest_model(temp_dir("ckpt_find_empty")), Error);

  fs::path dir = root / "d12";
  auto touch = [&](const std::string& name) { std::ofstream(dir / name) << "x"; };
  EXPECT_THROW(find_last_step(dir), Error);
  touch("model_000003.pt");
  touch("meta_000003.json");
  touch("model_000007.pt");      // no meta: an unfinished save
  touch("model_000009.pt.tmp");  // temp files are never checkpoints
  touch("meta_000009.json.tmp");
  touch("model_000200_backup.pt");
  touch("meta_000200.json");
  EXPECT_EQ(find_last_step(dir), 3);
  touch("meta_000007.json");
  EXPECT_EQ(find_last_step(dir), 7);
  try {
    find_last_step(root / "d2");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no checkpoints found"), std::string::npos);
  }
}

// Saves `step` in a child process that is SIGKILLed once `n` bytes of the save are written, and checks it was.
static void save_killed_after(size_t n, const fs::path& dir, int64_t step, const NamedTensors& sd,
                              const c10::IValue& opt, const Json& meta) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("NANOCHAT_FAULT_SAVE_AFTER_BYTES", std::to_string(n).c_str(), 1);
    fault_injection_reset();
    try {
      save_checkpoint(dir, step, sd, opt, meta, 0);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);  // not killed: the fault point was beyond the save
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
}

// The d2 fixture's state, saved as step 1 into dir, and the same tensors plus one (what a later save writes).
struct SavedStep {
  NamedTensors sd, sd2;
  c10::IValue opt;
  Json meta;
};
static SavedStep save_fixture_step1(const fs::path& dir) {
  SavedStep s{load_state_dict(kD2 / "model_000003.pt"), {}, load_pt(kD2 / "optim_000003_rank0.pt"), load_meta(kD2, 3)};
  save_checkpoint(dir, 1, s.sd, s.opt, s.meta, 0);
  for (auto& [k, t] : s.sd) s.sd2.emplace_back(k, t + 1);
  return s;
}

// Save step 1, then SIGKILL a child process at many byte counts into saving step 2 (model, optimizer, meta):
// step 1 must stay the last step and load intact, and no .tmp file may count as a checkpoint.
TEST(CheckpointManager, CrashDuringSaveKeepsPreviousCheckpoint) {
  fs::path dir = temp_dir("ckpt_crash") / "d2";
  auto [sd, sd2, opt, meta] = save_fixture_step1(dir);
  Json meta2 = meta;
  meta2["step"] = 2;
  size_t model_bytes = pt_bytes(state_dict_ivalue(sd2)).size(), optim_bytes = pt_bytes(opt).size();
  size_t meta_bytes = json_dumps_python(meta2, 2).size(), total = model_bytes + optim_bytes + meta_bytes;
  std::vector<size_t> kill_points = {0,
                                     1,
                                     4096,
                                     model_bytes / 2,
                                     model_bytes - 1,
                                     model_bytes,
                                     model_bytes + 1,
                                     model_bytes + optim_bytes / 2,
                                     model_bytes + optim_bytes,
                                     model_bytes + optim_bytes + 1,
                                     total - 1,
                                     total};
  for (size_t n : kill_points) {
    SCOPED_TRACE("killed after " + std::to_string(n) + " of " + std::to_string(total) + " bytes");
    ASSERT_NO_FATAL_FAILURE(save_killed_after(n, dir, 2, sd2, opt, meta2));
    EXPECT_EQ(find_last_step(dir), 1);
    ModelCheckpoint ck = load_model_state_from_dir(dir, 1, torch::kCPU);
    EXPECT_TRUE(torch::equal(find(ck.state, "lm_head.weight"), find(sd, "lm_head.weight")));
    EXPECT_EQ(ck.meta["step"], 3);
    ASSERT_TRUE(load_optimizer_state_from_dir(dir, 1, 0, torch::kCPU).has_value());
  }
  bool saw_tmp = false;
  for (auto& e : fs::directory_iterator(dir)) saw_tmp |= e.path().extension() == ".tmp";
  EXPECT_TRUE(saw_tmp);  // the crashes did leave partial files behind, and they were ignored
  // A save that runs to completion commits step 2, replacing the stale temp files.
  fault_injection_reset();
  save_checkpoint(dir, 2, sd2, opt, meta2, 0);
  EXPECT_EQ(find_last_step(dir), 2);
  EXPECT_TRUE(torch::equal(find(load_model_state_from_dir(dir, 2, torch::kCPU).state, "lm_head.weight"),
                           find(sd2, "lm_head.weight")));
}

// Overwriting a step (a resumed run saving the step it resumed from) and dying while the new files are written
// keeps the old step: it stays committed and loads as it was. Saves used to un-commit the step before writing.
TEST(CheckpointManager, CrashWhileOverwritingAStepKeepsIt) {
  fs::path dir = temp_dir("ckpt_overwrite") / "d2";
  auto [sd, sd2, opt, meta] = save_fixture_step1(dir);
  Json meta2 = meta;
  meta2["step"] = 1;
  size_t model_bytes = pt_bytes(state_dict_ivalue(sd2)).size(), optim_bytes = pt_bytes(opt).size();
  size_t total = model_bytes + optim_bytes + json_dumps_python(meta2, 2).size();
  for (size_t n : {size_t{0}, model_bytes / 2, model_bytes + optim_bytes / 2, total - 1}) {
    SCOPED_TRACE("killed after " + std::to_string(n) + " of " + std::to_string(total) + " bytes");
    ASSERT_NO_FATAL_FAILURE(save_killed_after(n, dir, 1, sd2, opt, meta2));
    ASSERT_EQ(committed_steps(dir), std::vector<int64_t>{1});
    ModelCheckpoint ck = load_model_state_from_dir(dir, 1, torch::kCPU);
    EXPECT_TRUE(torch::equal(find(ck.state, "lm_head.weight"), find(sd, "lm_head.weight")));
    EXPECT_EQ(ck.meta["step"], 3);
  }
  // Run to completion, the overwrite replaces the step and leaves no .pending file.
  fault_injection_reset();
  save_checkpoint(dir, 1, sd2, opt, meta2, 0);
  ModelCheckpoint ck = load_model_state_from_dir(dir, 1, torch::kCPU);
  EXPECT_TRUE(torch::equal(find(ck.state, "lm_head.weight"), find(sd2, "lm_head.weight")));
  EXPECT_EQ(ck.meta["step"], 1);
  for (auto& e : fs::directory_iterator(dir)) EXPECT_NE(e.path().extension(), ".pending") << e.path();
}

static bool python_torch_available() {
  return std::system((std::string(NANOCHAT_PYTHON) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
}

// Python nanochat's load_checkpoint steps on our files: torch.load (weights_only=True) the model and optimizer,
// json.load the meta; json.dump(meta, indent=2) must reproduce our meta file byte for byte.
TEST(CheckpointManager, PythonLoadsOurCheckpoint) {
  if (!python_torch_available())
    GTEST_SKIP() << NANOCHAT_PYTHON << " cannot import torch (bash scripts/setup.sh installs it into .venv)";
  fs::path dir = temp_dir("ckpt_python") / "d2";
  NamedTensors sd = load_state_dict(kD2 / "model_000003.pt");
  Json meta = load_meta(kD2, 3);
  meta["loop_state"]["min_val_bpb"] = INFINITY;
  meta["val_bpb"] = nullptr;
  meta["user_config"]["run"] = "\u00fcber \U0001F600";
  save_checkpoint(dir, 3, sd, load_pt(kD2 / "optim_000003_rank0.pt"), meta, 0);
  std::ofstream(dir.parent_path() / "check.py") << R"PY(
import json, math, sys, torch
d, ref = sys.argv[1], sys.argv[2]
model = torch.load(d + "/model_000003.pt", map_location="cpu", weights_only=True)
refm = torch.load(ref + "/model_000003.pt", map_location="cpu", weights_only=True)
assert list(model.keys()) == list(refm.keys())
assert all(torch.equal(model[k], refm[k]) and model[k].dtype == refm[k].dtype for k in refm)
optim = torch.load(d + "/optim_000003_rank0.pt", map_location="cpu", weights_only=True)
refo = torch.load(ref + "/optim_000003_rank0.pt", map_location="cpu", weights_only=True)
assert optim["param_groups"] == refo["param_groups"]
assert sorted(optim["state"]) == sorted(refo["state"])
with open(d + "/meta_000003.json", encoding="utf-8") as f:
    text = f.read()
meta = json.loads(text)
assert math.isinf(meta["loop_state"]["min_val_bpb"]) and meta["val_bpb"] is None
assert meta["user_config"]["run"] == "\u00fcber \U0001F600"
assert json.dumps(meta, indent=2) == text, (json.dumps(meta, indent=2), text)
print("python-ok")
)PY";
  std::string cmd = std::string(NANOCHAT_PYTHON) + " " + (dir.parent_path() / "check.py").string() + " " +
                    dir.string() + " " + kD2.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find("python-ok"), std::string::npos) << out;
}
