// checkpoint_manager: see checkpoint_manager.h.
#include "nanochat/checkpoint_manager.h"

#include <algorithm>
#include <regex>

#include "nanochat/common.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

std::string step_str(int64_t step) { return fmt::format("{:06d}", step); }
fs::path model_path(const fs::path& dir, int64_t step) { return dir / ("model_" + step_str(step) + ".pt"); }
fs::path meta_path(const fs::path& dir, int64_t step) { return dir / ("meta_" + step_str(step) + ".json"); }
fs::path optim_path(const fs::path& dir, int64_t step, int rank) {
  return dir / fmt::format("optim_{}_rank{}.pt", step_str(step), rank);
}

fs::path resolve_dir(const std::string& source, const std::optional<std::string>& model_tag,
                     std::optional<int64_t>& step) {
  fs::path root = checkpoints_dir_for(source);
  std::string tag;
  if (model_tag) {
    tag = *model_tag;
  } else {
    tag = find_largest_model(root);
    print0f("No model tag provided, guessing model tag: {}", tag);
  }
  fs::path dir = root / tag;
  if (!step) step = find_last_step(dir);
  return dir;
}

}  // namespace

fs::path checkpoints_dir_for(const std::string& source) {
  const char* sub = source == "base"  ? "base_checkpoints"
                    : source == "sft" ? "chatsft_checkpoints"
                    : source == "rl"  ? "chatrl_checkpoints"
                                      : nullptr;
  if (!sub) fail("unknown checkpoint source '{}' (use base, sft or rl)", source);
  return get_base_dir() / sub;
}

void save_checkpoint(const fs::path& dir, int64_t step, const NamedTensors& model_state,
                     const std::optional<c10::IValue>& optimizer_state, const Json& meta, int rank,
                     const std::function<void()>& barrier) {
  if (step < 0) fail("checkpoint step must be >= 0, got {}", step);
  // One directory, one model: a step of another model beside these would be loaded as if it continued them.
  if (const std::vector<int64_t> steps = committed_steps(dir); !steps.empty() && meta.contains("model_config")) {
    const Json last = load_meta(dir, steps.back());
    if (last.is_object() && last.contains("model_config") && last["model_config"] != meta["model_config"])
      fail(
          "refusing to save step {} into {}: it holds checkpoints of another model (step {} has model_config {}, "
          "this one {}); save under another --model-tag",
          step, dir.string(), steps.back(), last["model_config"].dump(), meta["model_config"].dump());
  }
  fs::create_directories(dir);
  // Every file is first written under a .pending name, and only once all of them are complete on every rank is the
  // step swapped in: un-commit it (its meta), rename the files over it, commit the new meta. A disk that fills up
  // while the files are written therefore leaves the directory as it was: overwriting a step (a resumed run that
  // saves the step it resumed from) used to un-commit the old step first and lose it. Renames need no space.
  auto pending = [](const fs::path& p) { return fs::path(p.string() + ".pending"); };
  std::vector<fs::path> mine;  // this rank's files
  if (rank == 0) mine.push_back(model_path(dir, step));
  if (optimizer_state) mine.push_back(optim_path(dir, step, rank));
  try {
    if (rank == 0) save_state_dict(pending(model_path(dir, step)), model_state);
    if (optimizer_state) save_pt(pending(optim_path(dir, step, rank)), *optimizer_state);
    if (rank == 0) write_file_atomic(pending(meta_path(dir, step)), json_dumps_python(meta, 2));
  } catch (...) {
    std::error_code ec;
    for (const auto& p : mine) fs::remove(pending(p), ec);
    fs::remove(pending(meta_path(dir, step)), ec);
    throw;
  }
  if (barrier) barrier();
  if (rank == 0) {
    // Un-commit first, so a crash among the renames cannot pair the old meta with a mix of old and new tensors.
    std::error_code ec;
    if (fs::remove(meta_path(dir, step), ec)) fsync_dir(dir);
  }
  if (barrier) barrier();
  for (const auto& p : mine) fs::rename(pending(p), p);
  fsync_dir(dir);
  if (barrier) barrier();
  if (rank == 0) {
    print0f("Saved model parameters to: {}", model_path(dir, step).string());
    if (optimizer_state) print0f("Saved optimizer state to: {}", optim_path(dir, step, rank).string());
    fs::rename(pending(meta_path(dir, step)), meta_path(dir, step));
    fsync_dir(dir);
    print0f("Saved metadata to: {}", meta_path(dir, step).string());
  }
}

// Steps with a model file, committed (meta present) or not, sorted.
static std::pair<std::vector<int64_t>, size_t> scan_steps(const fs::path& dir) {
  std::vector<int64_t> committed;
  size_t uncommitted = 0;
  if (!fs::is_directory(dir)) return {committed, 0};
  static const std::regex re(R"(model_(\d+)\.pt)");
  for (auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, re) || m[1].length() > 18) continue;
    int64_t step = std::stoll(m[1].str());
    if (fs::exists(meta_path(dir, step)))
      committed.push_back(step);
    else
      uncommitted++;  // no commit marker: a save that did not finish
  }
  std::sort(committed.begin(), committed.end());
  return {committed, uncommitted};
}

std::vector<int64_t> committed_steps(const fs::path& dir) { return scan_steps(dir).first; }

void remove_checkpoints(const fs::path& dir) {
  if (!fs::is_directory(dir)) return;
  static const std::regex re(R"((model_\d+\.pt|optim_\d+_rank\d+\.pt|meta_\d+\.json)(\.pending)?(\.tmp)?)");
  std::vector<fs::path> metas, rest;
  for (auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, re)) (name.rfind("meta_", 0) == 0 ? metas : rest).push_back(entry.path());
  }
  for (auto& p : metas) fs::remove(p);  // un-commit first: a crash in between leaves no loadable half
  fsync_dir(dir);
  for (auto& p : rest) fs::remove(p);
  fsync_dir(dir);
}

int64_t find_last_step(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail("no checkpoints found in {} (the directory does not exist)", dir.string());
  auto [committed, uncommitted] = scan_steps(dir);
  if (committed.empty())
    fail("no checkpoints found in {}{}", dir.string(),
         uncommitted ? fmt::format(" ({} model files without their meta_*.json: unfinished saves)", uncommitted) : "");
  return committed.back();
}

std::string find_largest_model(const fs::path& root) {
  if (!fs::is_directory(root)) fail("no checkpoints found in {} (the directory does not exist)", root.string());
  std::vector<fs::path> tags;
  for (auto& entry : fs::directory_iterator(root))
    if (entry.is_directory()) tags.push_back(entry.path());
  if (tags.empty()) fail("no checkpoints found in {}", root.string());
  static const std::regex re(R"(d(\d+).*)");
  int64_t best_depth = -1;
  std::string best;
  std::sort(tags.begin(), tags.end());
  for (auto& t : tags) {
    std::string name = t.filename().string();
    std::smatch m;
    if (std::regex_match(name, m, re) && m[1].length() <= 18 && std::stoll(m[1].str()) > best_depth) {
      best_depth = std::stoll(m[1].str());
      best = name;
    }
  }
  if (best_depth >= 0) return best;
  auto newest = std::max_element(tags.begin(), tags.end(), [](const fs::path& a, const fs::path& b) {
    return fs::last_write_time(a) < fs::last_write_time(b);
  });
  return newest->filename().string();
}

Json load_meta(const fs::path& dir, int64_t step) {
  fs::path p = meta_path(dir, step);
  if (!fs::exists(p)) fail("checkpoint metadata {} does not exist", p.string());
  try {
    return json_loads_python(read_file(p));
  } catch (const Error& e) {
    fail("{}: {}", p.string(), e.what());
  }
}

ModelCheckpoint load_model_state_from_dir(const fs::path& dir, int64_t step, const torch::Device& device) {
  ModelCheckpoint ck;
  ck.dir = dir;
  ck.step = step;
  ck.meta = load_meta(dir, step);
  NamedTensors raw = load_state_dict(model_path(dir, step));
  bool cpu_like = device.is_cpu() || device.type() == c10::DeviceType::MPS;
  for (auto& [name, t] : raw) {
    std::string key = name.rfind("_orig_mod.", 0) == 0 ? name.substr(10) : name;
    torch::Tensor v = t.to(device);
    if (cpu_like && v.scalar_type() == torch::kBFloat16) v = v.to(torch::kFloat32);
    ck.state.emplace_back(std::move(key), std::move(v));
  }
  if (!ck.meta.contains("model_config") || !ck.meta["model_config"].is_object())
    fail("{} has no model_config object", meta_path(dir, step).string());
  Json& cfg = ck.meta["model_config"];
  if (!cfg.contains("window_pattern")) {
    cfg["window_pattern"] = "L";  // old models were trained with full context
    print0("Patching missing window_pattern in model config to 'L'");
  }
  auto has = [&](const std::string& k) {
    for (auto& [name, t] : ck.state)
      if (name == k) return true;
    return false;
  };
  if (!has("resid_lambdas") || !has("x0_lambdas")) {
    if (!cfg.contains("n_layer") || !cfg["n_layer"].is_number_integer())
      fail("{}: model_config.n_layer is missing", meta_path(dir, step).string());
    int64_t n_layer = cfg["n_layer"].get<int64_t>();
    auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
    if (!has("resid_lambdas")) {
      ck.state.emplace_back("resid_lambdas", torch::ones({n_layer}, opts));
      print0("Patching missing resid_lambdas in model data to 1.0");
    }
    if (!has("x0_lambdas")) {
      ck.state.emplace_back("x0_lambdas", torch::zeros({n_layer}, opts));
      print0("Patching missing x0_lambdas in model data to 0.0");
    }
  }
  return ck;
}

ModelCheckpoint load_model_state(const std::string& source, const torch::Device& device,
                                 const std::optional<std::string>& model_tag, const std::optional<int64_t>& step) {
  std::optional<int64_t> s = step;
  fs::path dir = resolve_dir(source, model_tag, s);
  print0f("Loading model from {} with step {}", dir.string(), *s);
  return load_model_state_from_dir(dir, *s, device);
}

c10::IValue ivalue_to_device(const c10::IValue& v, const torch::Device& device) {
  if (v.isTensor()) return v.toTensor().to(device);
  if (v.isGenericDict()) {
    auto src = v.toGenericDict();
    c10::impl::GenericDict d(src.keyType(), src.valueType());
    for (auto& e : src) d.insert_or_assign(e.key(), ivalue_to_device(e.value(), device));
    return d;
  }
  if (v.isList()) {
    auto src = v.toList();
    c10::impl::GenericList l(src.elementType());
    for (const auto& x : src) l.push_back(ivalue_to_device(c10::IValue(x), device));
    return l;
  }
  if (v.isTuple()) {
    std::vector<c10::IValue> items;
    for (auto& x : v.toTuple()->elements()) items.push_back(ivalue_to_device(x, device));
    return c10::ivalue::Tuple::create(std::move(items));
  }
  return v;
}

int checkpoint_world_size(const fs::path& dir, int64_t step) {
  int n = 0;
  while (fs::exists(optim_path(dir, step, n))) ++n;
  return n;
}

void check_checkpoint_world_size(const fs::path& dir, int64_t step, int world_size, int rank) {
  // On one node the directory holds every rank's file; on several, each node only its own ranks' (rank 0's meta
  // does not say how many saved). So: no file of a rank beyond this run, and this rank's own file present.
  const std::regex re(fmt::format(R"(optim_{:06d}_rank(\d+)\.pt)", step));
  int highest = -1;
  for (auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, re) && m[1].length() < 9) highest = std::max(highest, std::stoi(m[1].str()));
  }
  if (highest < 0) return;  // saved without optimizer state
  const int saved = highest + 1;
  if (saved > world_size || !fs::exists(optim_path(dir, step, rank)))
    fail(
        "cannot resume from step {}: its optimizer state was saved by {}{} rank{} and this run has {}; resume with "
        "the same number of processes (nanochat launch --nproc-per-node {})",
        step, saved > world_size ? "" : "at least ", saved, saved == 1 ? "" : "s", world_size, saved);
}

std::optional<c10::IValue> load_optimizer_state_from_dir(const fs::path& dir, int64_t step, int rank,
                                                         const torch::Device& device) {
  fs::path p = optim_path(dir, step, rank);
  if (!fs::exists(p)) {
    print0f("Optimizer checkpoint not found: {}", p.string());
    return std::nullopt;
  }
  print0f("Loading optimizer state from {}", p.string());
  c10::IValue v = load_pt(p);
  return device.is_cpu() ? v : ivalue_to_device(v, device);
}

std::optional<c10::IValue> load_optimizer_state(const std::string& source, const torch::Device& device, int rank,
                                                const std::optional<std::string>& model_tag,
                                                const std::optional<int64_t>& step) {
  std::optional<int64_t> s = step;
  fs::path dir = resolve_dir(source, model_tag, s);
  return load_optimizer_state_from_dir(dir, *s, rank, device);
}

}  // namespace nanochat
