// load_model: see load_model.h.
#include "nanochat/load_model.h"

#include "nanochat/checkpoint_manager.h"
#include "nanochat/common.h"
#include "nanochat/formats/pt_file.h"

namespace nanochat {

namespace fs = std::filesystem;

std::string command_for_source(const std::string& source) {
  if (source == "base") return "nanochat base_train";
  if (source == "sft") return "nanochat chat_sft";
  if (source == "rl") return "nanochat chat_rl";
  fail("unknown model source '{}' (use base, sft or rl)", source);
}

Tokenizer load_tokenizer() {
  fs::path dir = get_base_dir() / "tokenizer";
  if (!fs::exists(dir / "tokenizer.pkl"))
    fail("tokenizer not found: {} does not exist (train one with `nanochat tok_train`)",
         (dir / "tokenizer.pkl").string());
  return Tokenizer::from_directory(dir);
}

torch::Tensor load_token_bytes(const torch::Device& device, int64_t vocab_size) {
  fs::path p = get_base_dir() / "tokenizer" / "token_bytes.pt";
  if (!fs::exists(p)) fail("{} does not exist (`nanochat tok_train` writes it beside tokenizer.pkl)", p.string());
  c10::IValue v = load_pt(p);
  if (!v.isTensor()) fail("{} does not hold a tensor", p.string());
  torch::Tensor t = v.toTensor();
  const std::string fix = "rerun `nanochat tok_train` to write it again";
  if (t.dim() != 1 || !at::isIntegralType(t.scalar_type(), /*includeBool=*/false))
    fail("{} holds a {}-D {} tensor, not the 1-D integer byte counts of each token; {}", p.string(), t.dim(),
         std::string(c10::toString(t.scalar_type())), fix);
  if (t.size(0) != vocab_size)
    fail("{} has {} entries but the tokenizer has {} tokens; {}", p.string(), t.size(0), vocab_size, fix);
  if (t.min().item<int64_t>() < 0) fail("{} holds negative byte counts; {}", p.string(), fix);
  if (t.max().item<int64_t>() == 0) fail("{} is all zeros (no token has any bytes); {}", p.string(), fix);
  return t.to(device, torch::kInt32);
}

// The sizes meta claims against the tensors the checkpoint holds, before a model of meta's sizes is built:
// a damaged or hand-edited meta (n_layer 1000000) would otherwise allocate for minutes before load_state_dict
// noticed. Shapes are checked in full by load_state_dict; this catches the sizes that drive allocation.
static void check_config_matches_state(const GPTConfig& c, const NamedTensors& state, const fs::path& file) {
  int64_t n_blocks = 0;
  const torch::Tensor* wte = nullptr;
  for (const auto& [name, t] : state) {
    if (name == "transformer.wte.weight") wte = &t;
    const std::string prefix = "transformer.h.";
    if (name.rfind(prefix, 0) == 0) n_blocks = std::max<int64_t>(n_blocks, std::stoll(name.substr(prefix.size())) + 1);
  }
  if (!wte || wte->dim() != 2) fail("{} has no 2-D transformer.wte.weight; it is not a nanochat model", file.string());
  if (n_blocks != c.n_layer || wte->size(1) != c.n_embd || wte->size(0) != padded_vocab_size(c))
    fail(
        "meta's model_config (n_layer={}, n_embd={}, vocab_size={}) does not match {} ({} blocks, wte {}x{}); "
        "the meta file belongs to another model",
        c.n_layer, c.n_embd, c.vocab_size, file.string(), n_blocks, wte->size(0), wte->size(1));
}

LoadedModel build_model(const fs::path& dir, int64_t step, const torch::Device& device, const std::string& phase) {
  if (phase != "eval" && phase != "train") fail("phase must be eval or train, got '{}'", phase);
  if (!fs::is_directory(dir)) fail("checkpoint directory {} does not exist", dir.string());
  fs::path model_file = dir / fmt::format("model_{:06d}.pt", step);
  if (!fs::exists(model_file) || !fs::exists(dir / fmt::format("meta_{:06d}.json", step)))
    fail("no checkpoint at step {} in {} (model_{:06d}.pt and meta_{:06d}.json are needed)", step, dir.string(), step,
         step);
  ModelCheckpoint ck = load_model_state_from_dir(dir, step, device);
  GPTConfig config = config_from_json(ck.meta["model_config"]);
  check_config_matches_state(config, ck.state, model_file);
  print0f("Building model with config: {}", ck.meta["model_config"].dump());
  // Built and initialized (the rotary tables are computed there), then every parameter is replaced.
  GPT model(config, device);
  model->init_weights();
  model->load_state_dict(ck.state, /*strict=*/true);
  model->train(phase == "train");
  Tokenizer tokenizer = load_tokenizer();
  if (tokenizer.get_vocab_size() != config.vocab_size)
    fail(
        "the tokenizer in {} has {} tokens but the model in {} was trained with vocab_size {}; use the tokenizer it "
        "was trained with",
        (get_base_dir() / "tokenizer").string(), tokenizer.get_vocab_size(), dir.string(), config.vocab_size);
  return LoadedModel{model, std::move(tokenizer), std::move(ck.meta), dir, step};
}

LoadedModel load_model(const std::string& source, const torch::Device& device, const std::string& phase,
                       const std::optional<std::string>& model_tag, const std::optional<int64_t>& step) {
  std::string cmd = command_for_source(source);
  fs::path root = checkpoints_dir_for(source);
  if (!fs::is_directory(root))
    fail("no {} checkpoints: {} does not exist (train one with `{}`)", source, root.string(), cmd);
  std::string tag;
  if (model_tag) {
    tag = *model_tag;
    if (!fs::is_directory(root / tag))
      fail("no {} checkpoints tagged '{}': {} does not exist (train one with `{}`)", source, tag, (root / tag).string(),
           cmd);
  } else {
    tag = find_largest_model(root);
    print0f("No model tag provided, guessing model tag: {}", tag);
  }
  fs::path dir = root / tag;
  int64_t s;
  if (step) {
    s = *step;
  } else {
    s = find_last_step(dir);
    print0f("No model step provided, guessing step: {}", s);
  }
  print0f("Loading model from {} with step {}", dir.string(), s);
  return build_model(dir, s, device, phase);
}

}  // namespace nanochat
