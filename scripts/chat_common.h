// chat_common: what chat_sft, chat_rl and chat_eval share — a model + tokenizer from a checkpoint (nanochat's
// checkpoint_manager.load_model), token_bytes, bits per byte over SFT batches, and meta's model_config.
// Header-only; the chat scripts include it.
//
//   ChatModel cm = load_chat_model("sft", device, "eval");            // largest tag, last step
//   double bpb = chat_bpb(cm.model, [&] { auto b = loader.next(); return std::pair{b.inputs, b.targets}; }, 10, tb);
//
// Not covered: optimizer state (checkpoint_manager's load_optimizer_state), distributed reduction.
#pragma once

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "nanochat/checkpoint_manager.h"
#include "nanochat/common.h"
#include "nanochat/gpt.h"
#include "nanochat/pt_file.h"
#include "nanochat/pyjson.h"
#include "nanochat/tokenizer.h"

namespace nanochat {

struct ChatModel {
  GPT model{nullptr};
  Tokenizer tokenizer;
  Json meta;
  std::string model_tag;
  int64_t step = 0;
};

inline std::string chat_command_for_source(const std::string& source) {
  if (source == "base") return "nanochat base_train";
  if (source == "sft") return "nanochat chat_sft";
  if (source == "rl") return "nanochat chat_rl";
  fail("unknown model source '{}' (use base, sft or rl)", source);
}

inline Tokenizer load_chat_tokenizer() {
  std::filesystem::path pkl = get_base_dir() / "tokenizer" / "tokenizer.pkl";
  if (!std::filesystem::exists(pkl)) fail("tokenizer not found: {} does not exist (train one with `nanochat tok_train`)", pkl.string());
  return Tokenizer::from_directory(pkl.parent_path());
}

inline torch::Tensor load_chat_token_bytes(const torch::Device& device) {
  std::filesystem::path p = get_base_dir() / "tokenizer" / "token_bytes.pt";
  if (!std::filesystem::exists(p)) fail("{} does not exist (`nanochat tok_train` writes it beside tokenizer.pkl)", p.string());
  c10::IValue v = load_pt(p);
  if (!v.isTensor()) fail("{} does not hold a tensor", p.string());
  return v.toTensor().to(device, torch::kInt64);
}

// source "base" | "sft" | "rl"; phase "train" | "eval". Tag defaults to the largest d<N>, step to the last one.
inline ChatModel load_chat_model(const std::string& source, const torch::Device& device, const std::string& phase,
                                 const std::optional<std::string>& model_tag = std::nullopt,
                                 const std::optional<int64_t>& step = std::nullopt) {
  std::string cmd = chat_command_for_source(source);
  std::filesystem::path root = checkpoints_dir_for(source);
  if (!std::filesystem::is_directory(root))
    fail("no {} checkpoints: {} does not exist (train one with `{}`)", source, root.string(), cmd);
  std::string tag = model_tag ? *model_tag : find_largest_model(root);
  if (!model_tag) print0f("No model tag provided, guessing model tag: {}", tag);
  std::filesystem::path dir = root / tag;
  if (!std::filesystem::is_directory(dir))
    fail("no {} checkpoints tagged '{}': {} does not exist (train one with `{}`)", source, tag, dir.string(), cmd);
  int64_t s = step ? *step : find_last_step(dir);
  if (!step) print0f("No model step provided, guessing step: {}", s);
  if (!std::filesystem::exists(dir / fmt::format("model_{:06d}.pt", s)))
    fail("no checkpoint at step {} in {}", s, dir.string());
  print0f("Loading model from {} with step {}", dir.string(), s);
  ModelCheckpoint ck = load_model_state_from_dir(dir, s, device);
  GPTConfig config = config_from_json(ck.meta["model_config"]);
  GPT model(config, device);
  model->init_weights();  // computes the rotary tables; every parameter is replaced next
  model->load_state_dict(ck.state, /*strict=*/true);
  model->train(phase == "train");
  Tokenizer tok = load_chat_tokenizer();
  if (tok.get_vocab_size() != config.vocab_size)
    fail("the tokenizer has {} tokens but the model in {} was trained with vocab_size {}; use its tokenizer",
         tok.get_vocab_size(), dir.string(), config.vocab_size);
  return ChatModel{model, std::move(tok), std::move(ck.meta), tag, s};
}

// meta.json's model_config in Python's field order.
inline Json chat_model_config_json(const GPTConfig& c) {
  Json j;
  j["sequence_len"] = c.sequence_len;
  j["vocab_size"] = c.vocab_size;
  j["n_layer"] = c.n_layer;
  j["n_head"] = c.n_head;
  j["n_kv_head"] = c.n_kv_head;
  j["n_embd"] = c.n_embd;
  j["window_pattern"] = c.window_pattern;
  return j;
}

// Bits per byte (SPEC §12) over `steps` (inputs, targets) batches; ignored targets (-1) and special tokens count
// nothing; +inf when no byte was scored.
inline double chat_bpb(GPT& model, const std::function<std::pair<torch::Tensor, torch::Tensor>()>& next_batch,
                       int64_t steps, const torch::Tensor& token_bytes) {
  torch::NoGradGuard no_grad;
  double total_nats = 0;
  int64_t total_bytes = 0;
  for (int64_t i = 0; i < steps; i++) {
    auto [x, y] = next_batch();
    auto loss = model->forward(x.to(torch::kInt64), y, nullptr, "none").to(torch::kFloat32).view(-1);
    auto yf = y.reshape(-1);
    auto valid = yf >= 0;
    auto nb = torch::where(valid, token_bytes.index({yf.clamp_min(0)}), torch::zeros_like(yf));
    total_nats += (loss * (nb > 0).to(torch::kFloat32)).sum().item<double>();
    total_bytes += nb.sum().item<int64_t>();
  }
  if (total_bytes == 0) return std::numeric_limits<double>::infinity();
  return total_nats / (std::log(2.0) * double(total_bytes));
}

// Peak resident memory of this process in MiB (CPU), for the end-of-run summary.
inline double chat_peak_memory_mib() {
  std::string status;
  try {
    status = read_file("/proc/self/status");
  } catch (const Error&) {
    return 0;
  }
  auto pos = status.find("VmHWM:");
  if (pos == std::string::npos) return 0;
  return std::strtod(status.c_str() + pos + 6, nullptr) / 1024.0;
}

}  // namespace nanochat
