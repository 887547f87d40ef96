// token_bytes.pt both ways: our token_bytes for the Python-written tokenizer.pkl equal the tensor in Python's
// token_bytes.pt (read with torch::pickle_load), and the file we write the same way loads back identically.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nanochat/common.h"
#include "nanochat/tokenizer.h"

using namespace nanochat;

TEST(TokenizerTorch, TokenBytesEqualPythonTokenBytesPt) {
  std::string dir = std::string(NANOCHAT_FIXTURES) + "/python_basedir/tokenizer";
  std::string raw = read_file(dir + "/token_bytes.pt");
  at::Tensor expected = torch::pickle_load(std::vector<char>(raw.begin(), raw.end())).toTensor();
  ASSERT_EQ(expected.scalar_type(), torch::kInt32);
  std::vector<int32_t> ours = Tokenizer::from_directory(dir).token_bytes();
  at::Tensor got = torch::tensor(ours, torch::kInt32);
  EXPECT_TRUE(torch::equal(got, expected));
  // What tok_train writes reads back as the same tensor.
  std::vector<char> written = torch::pickle_save(got);
  EXPECT_TRUE(torch::equal(torch::pickle_load(written).toTensor(), expected));
}
