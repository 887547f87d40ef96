// checkpoint_manager: save and find and load nanochat checkpoints (nanochat/checkpoint_manager.py), in the same files
// as Python nanochat:
//   <base_dir>/{base_checkpoints,chatsft_checkpoints,chatrl_checkpoints}/<model_tag>/
//     model_<step:06d>.pt          model state dict (rank 0)
//     optim_<step:06d>_rank<r>.pt  optimizer state of rank r (every rank, when given)
//     meta_<step:06d>.json         metadata, json.dump(indent=2) style (rank 0) — written LAST
//
// Crash safety: every file is written to "<name>.pending" (itself through "<name>.pending.tmp", fsynced and
// renamed); only when all are complete on every rank are they renamed into place, meta last. The meta file is the
// commit marker, so find_last_step only counts steps whose meta exists and a half-written checkpoint is never
// picked up; re-saving a step un-commits it only once the new files are complete, so a crash or a full disk while
// they are written keeps the old step. NANOCHAT_FAULT_SAVE_AFTER_BYTES=N kills the process after N bytes of saving
// (pt_file.h), which the tests use to crash mid-save.
//
// This module deals in named tensors and JSON; building a GPT from a checkpoint lives with the model.
//
//   save_checkpoint(dir, 500, model_state, optimizer_state, meta);    // optimizer_state: std::nullopt for none
//   ModelCheckpoint ck = load_model_state("base", torch::kCPU);        // largest model tag, last step
//   auto opt = load_optimizer_state_from_dir(ck.dir, ck.step, /*rank=*/0, torch::kCPU);  // nullopt if missing
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "nanochat/formats/pt_file.h"
#include "nanochat/formats/pyjson.h"

namespace nanochat {

// <base_dir>/base_checkpoints (source "base"), chatsft_checkpoints ("sft"), chatrl_checkpoints ("rl").
std::filesystem::path checkpoints_dir_for(const std::string& source);

// Writes model (rank 0), optimizer (if given, every rank) and meta (rank 0, last). `barrier`, when given, is
// called on every rank between the phases (files written, old step un-committed, files renamed) — pass a
// process-group barrier in distributed runs so meta only appears once every rank's optimizer file is in place. A
// failed write removes this rank's .pending files and rethrows. Refuses (Error) a directory
// whose last checkpoint is of another model (a different model_config).
void save_checkpoint(const std::filesystem::path& checkpoint_dir, int64_t step, const NamedTensors& model_state,
                     const std::optional<c10::IValue>& optimizer_state, const Json& meta, int rank = 0,
                     const std::function<void()>& barrier = {});

// Highest step with both model_<step>.pt and meta_<step>.json; Error when there is none.
int64_t find_last_step(const std::filesystem::path& checkpoint_dir);
// Every committed step (model and meta present), ascending; empty when none or no directory.
std::vector<int64_t> committed_steps(const std::filesystem::path& checkpoint_dir);
// Deletes the model, optimizer and meta files of every step in the directory (metas first), nothing else.
void remove_checkpoints(const std::filesystem::path& checkpoint_dir);
// The subdirectory named d<N> with the largest N; if none is, the most recently modified one; Error when empty.
std::string find_largest_model(const std::filesystem::path& checkpoints_dir);

Json load_meta(const std::filesystem::path& checkpoint_dir, int64_t step);

struct ModelCheckpoint {
  NamedTensors state;  // file order, "_orig_mod." stripped, on `device`
  Json meta;           // model_config patched with window_pattern "L" when missing
  std::filesystem::path dir;
  int64_t step = 0;
};

// model_<step>.pt + meta with build_model's fixes: bf16 → fp32 on CPU, "_orig_mod." prefixes stripped,
// missing window_pattern → "L", missing resid_lambdas → ones(n_layer), x0_lambdas → zeros(n_layer).
ModelCheckpoint load_model_state_from_dir(const std::filesystem::path& checkpoint_dir, int64_t step,
                                          const torch::Device& device);
// source "base" | "sft" | "rl"; model_tag defaults to find_largest_model, step to find_last_step (both logged).
ModelCheckpoint load_model_state(const std::string& source, const torch::Device& device,
                                 const std::optional<std::string>& model_tag = std::nullopt,
                                 const std::optional<int64_t>& step = std::nullopt);

// The rank's optimizer state (tensors on `device`), or nullopt with a log line when its file does not exist.
std::optional<c10::IValue> load_optimizer_state_from_dir(const std::filesystem::path& checkpoint_dir, int64_t step,
                                                         int rank, const torch::Device& device);
std::optional<c10::IValue> load_optimizer_state(const std::string& source, const torch::Device& device, int rank,
                                                const std::optional<std::string>& model_tag = std::nullopt,
                                                const std::optional<int64_t>& step = std::nullopt);

// How many ranks wrote the checkpoint at `step`: the number of optim_<step>_rank<r>.pt files (0 when none).
int checkpoint_world_size(const std::filesystem::path& checkpoint_dir, int64_t step);
// Error unless the checkpoint's optimizer files fit a run of `world_size` ranks: none of a rank beyond it, and this
// rank's own present (on several nodes each node holds only its own ranks' files). Sharded optimizer state only
// resumes with the world size that saved it.
void check_checkpoint_world_size(const std::filesystem::path& checkpoint_dir, int64_t step, int world_size, int rank);

// Every tensor inside an IValue tree moved to `device` (dicts, lists and tuples rebuilt).
c10::IValue ivalue_to_device(const c10::IValue& v, const torch::Device& device);

}  // namespace nanochat
