// chat_cli: talk to a nanochat model in the terminal (scripts/chat_cli.py), streaming each token as it is sampled.
//   nanochat chat_cli                       the latest SFT model, interactive
//   nanochat chat_cli -i base -p "Why is the sky blue?"   one reply, then exit
// Commands at the prompt: quit / exit (or Ctrl-D) end the session, clear starts a new conversation.
// The conversation grows across turns with no truncation, as in nanochat.
#include <algorithm>
#include <cctype>
#include <iostream>
#include <optional>
#include <string>

#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/engine.h"
#include "nanochat/cli/flags.h"
#include "nanochat/cpu/pack_weights.h"
#include "nanochat/load_model.h"
#include "nanochat/cpu/threads.h"

using namespace nanochat;

int chat_cli_main(int argc, char** argv) {
  std::string source = "sft", prompt, device_type, dtype = "float32";
  std::optional<std::string> model_tag;
  std::optional<int64_t> step;
  double temperature = 0.6;
  int64_t top_k = 50;
  Flags app{"Chat with the model in the terminal", "nanochat chat_cli"};
  app.add_option("-i,--source", source, "source of the model: sft|rl|base")
      ->check(CLI::IsMember({"sft", "rl", "base"}));
  app.add_option("-g,--model-tag", model_tag, "model tag to load (default: the largest)");
  app.add_option("-s,--step", step, "step to load (default: the last)")->check(CLI::NonNegativeNumber);
  app.add_option("-p,--prompt", prompt, "prompt the model once, print the reply and exit");
  app.add_option("-t,--temperature", temperature, "sampling temperature")->check(CLI::Range(0.0, 1e9));
  app.add_option("-k,--top-k", top_k, "top-k sampling (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--device-type", device_type, "cuda|cpu (empty = autodetect)")
      ->check(CLI::IsMember({"", "cuda", "cpu"}));
  app.add_option("--dtype", dtype, "weights for decoding: float32 (as loaded), bfloat16 or int8 (CPU)")
      ->check(CLI::IsMember(kWeightDtypes));
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_decode_omp_wait(argc, argv);
  configure_cpu_threads();

  ComputeContext ctx = compute_init(device_type);
  LoadedModel lm = load_model(source, ctx.device, "eval", model_tag, step);
  pack_weights(*lm.model, dtype);
  const Tokenizer& tok = lm.tokenizer;
  Engine engine(lm.model, tok);
  const int32_t bos = tok.get_bos_token_id(), user_start = tok.encode_special("<|user_start|>"),
                user_end = tok.encode_special("<|user_end|>"),
                assistant_start = tok.encode_special("<|assistant_start|>"),
                assistant_end = tok.encode_special("<|assistant_end|>");

  std::cout << "\nNanoChat Interactive Mode\n"
            << std::string(50, '-') << "\n"
            << "Type 'quit' or 'exit' to end the conversation\n"
            << "Type 'clear' to start a new conversation\n"
            << std::string(50, '-') << "\n";

  std::vector<int32_t> conversation = {bos};
  while (true) {
    std::string input;
    if (!prompt.empty()) {
      input = prompt;
    } else {
      std::cout << "\nUser: " << std::flush;
      if (!std::getline(std::cin, input)) {
        std::cout << "\nGoodbye!\n";
        break;
      }
    }
    std::string lower = input;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "quit" || lower == "exit") {
      std::cout << "Goodbye!\n";
      break;
    }
    if (lower == "clear") {
      conversation = {bos};
      std::cout << "Conversation cleared.\n";
      continue;
    }
    if (input.empty()) continue;

    conversation.push_back(user_start);
    for (int32_t t : tok.encode(input)) conversation.push_back(t);
    conversation.push_back(user_end);
    conversation.push_back(assistant_start);

    std::cout << "\nAssistant: " << std::flush;
    std::vector<int32_t> response;
    // Raw bytes go out as they come, so a character split across tokens is completed by the terminal.
    engine.generate(conversation, 1, 256, temperature, top_k, 42,
                    [&](const std::vector<int32_t>& col, const std::vector<int32_t>&) {
                      response.push_back(col[0]);
                      // The end marker closes the turn; it is not text to show.
                      if (col[0] != assistant_end) std::cout << tok.decode_bytes({col[0]}) << std::flush;
                      return col[0] != assistant_end;
                    });
    std::cout << "\n";
    conversation.insert(conversation.end(), response.begin(), response.end());
    if (response.empty() || response.back() != assistant_end) conversation.push_back(assistant_end);
    if (!prompt.empty()) break;
  }
  return 0;
}
