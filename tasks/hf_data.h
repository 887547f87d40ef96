// tasks/hf_data: the HuggingFace dataset splits the chat tasks read (ARC, MMLU, GSM8K, HumanEval, SmolTalk), as
// parquet files under <base_dir>/hf_datasets/<owner>/<name>/<subset>/<split>/ (read in file-name order).
//   ShuffledRows rows = load_hf_split("allenai/ai2_arc", "ARC-Easy", "test");   // in .shuffle(seed=42) order
// A missing split is downloaded first: the HF API lists the split's parquet files
// (https://huggingface.co/api/datasets/<repo>/parquet/<subset>/<split>), each is fetched with retries into a temp
// file and renamed. $HF_ENDPOINT replaces https://huggingface.co (a mirror), as in HF's own tools. Offline, put the
// files there yourself. Not covered: HF's arrow cache, streaming, private repos.
#pragma once

#include <filesystem>
#include <string>

#include "tasks/common.h"

namespace nanochat {

// $HF_ENDPOINT or https://huggingface.co, without a trailing slash.
std::string hf_endpoint();

std::filesystem::path hf_split_dir(const std::string& repo, const std::string& subset, const std::string& split);

// All rows of the split (every column), downloading it first when its directory has no parquet files.
ShuffledRows load_hf_split(const std::string& repo, const std::string& subset, const std::string& split);

}  // namespace nanochat
