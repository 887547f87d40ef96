// load_model: see load_model.h.
#include "nanochat/load_model.h"

#include "nanochat/checkpoint_manager.h"
#include "nanochat/common.h"
#include "nanochat/pt_file.h"

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
    fail("tokenizer not found: {} does not exist (train one with `nanochat tok_train`)", (dir / "tokenizer.pkl").string());
  return Tokenizer::from_directory(dir);
}

torch::Tensor load_token_bytes(const torch::Device& device) {
  fs::path p = get_base_dir() / "tokenizer" / "token_bytes.pt";
  if (!fs::exists(p)) fail("{} does not exist (`nanochat tok_train` writes it beside tokenizer.pkl)", p.string());
  c10::IValue v = load_pt(p);
  if (!v.isTensor()) fail("{} does not hold a tensor", p.string());
  return v.toTensor().to(device, torch::kInt32);
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
  print0f("Building model with config: {}", ck.meta["model_config"].dump());
  // Built and initialized (the rotary tables are computed there), then every parameter is replaced.
  GPT model(config, device);
  model->init_weights();
  model->load_state_dict(ck.state, /*strict=*/true);
  model->train(phase == "train");
  Tokenizer tokenizer = load_tokenizer();
  if (tokenizer.get_vocab_size() != config.vocab_size)
    fail("the tokenizer in {} has {} tokens but the model in {} was trained with vocab_size {}; use the tokenizer it "
         "was trained with",
         (get_base_dir() / "tokenizer").string(), tokenizer.get_vocab_size(), dir.string(), config.vocab_size);
  return LoadedModel{model, std::move(tokenizer), std::move(ck.meta), dir, step};
}

LoadedModel load_model(const std::string& source, const torch::Device& device, const std::string& phase,
                       const std::optional<std::string>& model_tag, const std::optional<int64_t>& step) {
  std::string cmd = command_for_source(source);
  fs::path root = checkpoints_dir_for(source);
  if (!fs::is_directory(root)) fail("no {} checkpoints: {} does not exist (train one with `{}`)", source, root.string(), cmd);
  std::string tag;
  if (model_tag) {
    tag = *model_tag;
    if (!fs::is_directory(root / tag))
      fail("no {} checkpoints tagged '{}': {} does not exist (train one with `{}`)", source, tag,
           (root / tag).string(), cmd);
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
