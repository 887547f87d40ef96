// calculator: the engine's calculator tool (nanochat's use_calculator) without Python.
//   auto r = nanochat::use_calculator("12/60");   // r == "0.2"; std::nullopt plays Python's None
// What it does (nanochat/engine.py use_calculator): removes every ",", then accepts either pure arithmetic (digits, + -
// * / // ( ) . and spaces; "**" rejected) evaluated with Python's numeric semantics — arbitrary-precision ints, "/"
// always a correctly rounded float, "//" floor division, float repr as str() prints it — or a string expression made of
// [A-Za-z0-9'"()._ ] that contains ".count(" and none of the blocked words, evaluated over str literals and
// common str methods (count, find, rfind, index, rindex, startswith, endswith, lower, upper, swapcase,
// capitalize, strip, lstrip, rstrip, isalpha, isdigit, isalnum, islower, isupper, isspace).
// Not covered (returns nullopt where Python would print something): expressions longer than
// kMaxCalculatorChars, tuples such as "()", keywords (if/else/and/or/not/in/is, True/None), bytes literals,
// attributes of ints and bools, str methods outside the list above, unbound method objects.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "nanochat/common.h"

namespace nanochat {

// Longer expressions are refused at once (Python would evaluate them; the model never needs that).
inline constexpr size_t kMaxCalculatorChars = 1000;

// str(eval(expr)) as nanochat's use_calculator would produce it, or nullopt where it returns None.
std::optional<std::string> use_calculator(std::string_view expr);

// (python_float_str, Python's str() of a float, is in common.h.)

}  // namespace nanochat
