// flags: the one way every subcommand parses its command line (CLI11), so all of them behave alike:
// `--flag=value` and `--flag value`, `--help` listing every flag with its default, unknown flags as errors,
// a flag given twice takes the last value (as argparse does), and numbers are checked whole: no "2.5" or
// "99999999999999999999" for an integer, no nan/inf for a float (a NaN learning rate would train a NaN model).
//
//   nanochat::Flags app{"Train the BPE tokenizer", "nanochat tok_train"};
//   app.add_option("--vocab-size", opt.vocab_size, "vocabulary size incl. special tokens");
//   if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace nanochat {

namespace flags_detail {
template <typename T>
struct Scalar {
  using type = T;
};
template <typename T>
struct Scalar<std::optional<T>> {
  using type = T;
};
template <typename T>
inline constexpr bool is_optional = false;
template <typename T>
inline constexpr bool is_optional<std::optional<T>> = true;
template <typename T>
inline constexpr bool is_vector = false;
template <typename T>
inline constexpr bool is_vector<std::vector<T>> = true;
// Validators on the flag's text, before CLI11 converts it (its integer conversion saturates on overflow).
CLI::Validator whole_number(bool is_signed, unsigned bits);
CLI::Validator finite_number();
}  // namespace flags_detail

struct Flags : CLI::App {
  Flags(std::string description, std::string name);

  // CLI::App::add_option plus the checks above, chosen by the variable's type.
  template <typename T>
  CLI::Option* add_option(std::string name, T& variable, std::string description = "") {
    CLI::Option* opt = CLI::App::add_option(std::move(name), variable, std::move(description));
    using V = typename flags_detail::Scalar<T>::type;
    if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool>) {
      opt->check(flags_detail::whole_number(std::is_signed_v<V>, 8 * sizeof(V)));
    } else if constexpr (std::is_floating_point_v<V>) {
      opt->check(flags_detail::finite_number());
    }
    if constexpr (!flags_detail::is_vector<T>) opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    remember(opt, variable);
    return opt;
  }
  template <typename T>
  CLI::Option* add_flag(std::string name, T& variable, std::string description = "") {
    CLI::Option* opt = CLI::App::add_flag(std::move(name), variable, std::move(description));
    remember(opt, variable);
    return opt;
  }

  // Every option's current value by argparse's dest name (the first long name, '-' as '_'; unset optionals as
  // null), in the order they were added: what Python nanochat records as user_config.
  nlohmann::ordered_json values_json() const;

  // Parses argv (argv[0] is the subcommand name). Returns -1 when the program should go on, or the exit code
  // to return now (0 after --help, 2 after a bad flag, with a one-line message on stderr).
  int parse_or_exit(int argc, char** argv);

 private:
  template <typename T>
  void remember(CLI::Option* opt, const T& variable) {
    std::string dest = opt->get_single_name();
    for (char& c : dest)
      if (c == '-') c = '_';
    values_.emplace_back(std::move(dest), [&variable]() -> nlohmann::ordered_json {
      if constexpr (flags_detail::is_optional<T>) {
        return variable ? nlohmann::ordered_json(*variable) : nlohmann::ordered_json(nullptr);
      } else {
        return variable;
      }
    });
  }
  std::vector<std::pair<std::string, std::function<nlohmann::ordered_json()>>> values_;
};

}  // namespace nanochat
