// tiktoken_file: the .tiktoken rank-file format tiktoken ships its encodings in (cl100k_base.tiktoken, ...):
// one "<base64 token bytes> <rank>" per line.
//   auto ranks = read_tiktoken_file("cl100k_base.tiktoken");   // [(bytes, rank)] in file order
//   std::string text = format_tiktoken_ranks(ranks);
// Not covered: downloading the files (nothing is downloaded; pass a path), tiktoken's special-token tables.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nanochat {

std::vector<std::pair<std::string, int32_t>> parse_tiktoken_ranks(std::string_view text, const std::string& what);
std::vector<std::pair<std::string, int32_t>> read_tiktoken_file(const std::filesystem::path& path);
std::string format_tiktoken_ranks(const std::vector<std::pair<std::string, int32_t>>& ranks);

std::string base64_decode(std::string_view s, bool* ok);
std::string base64_encode(std::string_view bytes);

}  // namespace nanochat
