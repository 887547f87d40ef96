// nanochat report [generate|reset] — the training report card (nanochat's `python -m nanochat.report`).
//   nanochat report reset      start a run: delete the old sections, write header.md (git, hardware, software, bloat)
//   nanochat report generate   assemble <base_dir>/report/report.md (+ charts), and copy it to the current directory
// Run it from the source checkout (as runs/*.sh do) so Git Information and Bloat describe it, or pass --source-dir.
// What goes into each section and the summary is described in nanochat/report.h.
#include <torch/version.h>

#include <string>

#include "nanochat/common.h"
#include "nanochat/cli/flags.h"
#include "nanochat/report.h"

int report_main(int argc, char** argv) {
  std::string command = "generate";
  std::string source_dir = ".";
  nanochat::Flags app{"Generate or reset nanochat training reports", "nanochat report"};
  app.add_option("command", command, "operation to perform")->check(CLI::IsMember({"generate", "reset"}));
  app.add_option("--source-dir", source_dir, "source checkout described in the header (git info, bloat)");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;

  nanochat::Report report = nanochat::get_report();
  if (command == "reset") {
    nanochat::SoftwareInfo software;
    software.torch_version = TORCH_VERSION;
    software.source_dir = source_dir;
    report.reset(software);
  } else {
    report.generate();
  }
  return 0;
}
