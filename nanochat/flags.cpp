// flags: see flags.h.
#include "nanochat/flags.h"

#include <iostream>

namespace nanochat {

Flags::Flags(std::string description, std::string name) : CLI::App(std::move(description), std::move(name)) {
  option_defaults()->always_capture_default();
  get_formatter()->column_width(40);
}

int Flags::parse_or_exit(int argc, char** argv) {
  try {
    parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << " (see " << get_name() << " --help)\n";
    return 2;
  }
  return -1;
}

}  // namespace nanochat
