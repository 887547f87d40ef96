// flags: see flags.h.
#include "nanochat/cli/flags.h"

#include <charconv>
#include <cmath>
#include <iostream>

namespace nanochat {

namespace flags_detail {

CLI::Validator whole_number(bool is_signed, unsigned bits) {
  return CLI::Validator(
      [is_signed, bits](std::string& text) -> std::string {
        const char* end = text.data() + text.size();
        bool ok;
        if (is_signed) {
          int64_t v = 0;
          auto [p, ec] = std::from_chars(text.data(), end, v);
          ok = ec == std::errc() && p == end &&
               (bits >= 64 || (v >= -(int64_t{1} << (bits - 1)) && v < (int64_t{1} << (bits - 1))));
        } else {
          uint64_t v = 0;
          auto [p, ec] = std::from_chars(text.data(), end, v);
          ok = ec == std::errc() && p == end && (bits >= 64 || v < (uint64_t{1} << bits));
        }
        if (ok) return "";
        return "'" + text + "' is not a whole number" + (is_signed ? "" : " >= 0") + " that fits in " +
               std::to_string(bits) + " bits";
      },
      "", "whole number");
}

CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc() && p == text.data() + text.size() && std::isfinite(v)) return "";
        return "'" + text + "' is not a finite number";
      },
      "", "finite number");
}

}  // namespace flags_detail

Flags::Flags(std::string description, std::string name) : CLI::App(std::move(description), std::move(name)) {
  option_defaults()->always_capture_default();
  get_formatter()->column_width(40);
}

nlohmann::ordered_json Flags::values_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [dest, value] : values_) j[dest] = value();
  return j;
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
