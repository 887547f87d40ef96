// Declarations of every subcommand's entry point (see scripts/commands.def).
#pragma once

#define NANOCHAT_COMMAND(name, help) int name##_main(int argc, char** argv);
#include "scripts/commands.def"
#undef NANOCHAT_COMMAND
