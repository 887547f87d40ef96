// flags: the one way every subcommand parses its command line (CLI11), so all of them behave alike:
// `--flag=value` and `--flag value`, `--help` listing every flag with its default, unknown flags as errors.
//
//   nanochat::Flags app{"Train the BPE tokenizer", "nanochat tok_train"};
//   app.add_option("--vocab-size", opt.vocab_size, "vocabulary size incl. special tokens");
//   if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
#pragma once

#include <CLI/CLI.hpp>

namespace nanochat {

struct Flags : CLI::App {
  Flags(std::string description, std::string name);
  // Parses argv (argv[0] is the subcommand name). Returns -1 when the program should go on, or the exit code
  // to return now (0 after --help, 2 after a bad flag, with a one-line message on stderr).
  int parse_or_exit(int argc, char** argv);
};

}  // namespace nanochat
