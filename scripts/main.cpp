// nanochat: one program, nanochat's scripts as subcommands.
//   nanochat --help                 list the subcommands
//   nanochat --version              libtorch version, CUDA architectures compiled in, the device a run would use
//   nanochat <subcommand> --help    list a subcommand's flags and defaults
//   nanochat base_train --depth=12  (kebab-case aliases work too: nanochat base-train ...)
// Each subcommand lives in scripts/<name>.cpp and exposes `int <name>_main(int argc, char** argv)`.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "scripts/commands.h"

namespace {

struct Command {
  const char* name;
  int (*main)(int, char**);
  const char* help;
};

// Keep in pipeline order; this list is what `nanochat --help` prints.
const std::vector<Command> kCommands = {
#define NANOCHAT_COMMAND(name, help) {#name, name##_main, help},
#include "scripts/commands.def"
#undef NANOCHAT_COMMAND
};

void print_usage(FILE* out) {
  std::fprintf(out,
               "usage: nanochat <subcommand> [flags]   (nanochat <subcommand> --help for its flags;\n"
               "       nanochat --version for libtorch, CUDA and the device)\n\nsubcommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-14s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage(stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::fputs(nanochat::version_report().c_str(), stdout);
    return 0;
  }
  std::string name = argv[1];
  std::replace(name.begin(), name.end(), '-', '_');
  auto it = std::find_if(kCommands.begin(), kCommands.end(), [&](const Command& c) { return name == c.name; });
  if (it == kCommands.end()) {
    std::fprintf(stderr, "error: unknown subcommand '%s' (see nanochat --help)\n", argv[1]);
    return 2;
  }
  try {
    return it->main(argc - 1, argv + 1);
  } catch (const nanochat::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (const std::exception& e) {
    // Anything else is our bug or an environment problem; still one line, never a stack trace.
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    std::fprintf(stderr, "error: %s\n", msg.c_str());
  }
  return 1;
}
