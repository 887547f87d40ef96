// calculator: see calculator.h. A tokenizer and a recursive-descent evaluator over Python values (int of any size,
// float, str, bool). Every Python exception (syntax, zero division, overflow, type, name, attribute) becomes
// nullopt, as use_calculator's eval-under-try does.
#include "nanochat/calculator.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace nanochat {

namespace {

struct CalcError {};  // any Python exception: the caller turns it into None

// ---------------------------------------------------------------------------------------------------------------------
// Arbitrary-precision integers: sign + little-endian base-2^32 magnitude without leading zero words.

using Mag = std::vector<uint32_t>;

void trim(Mag& a) {
  while (!a.empty() && a.back() == 0) a.pop_back();
}

int mag_cmp(const Mag& a, const Mag& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = a.size(); i-- > 0;)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

Mag mag_add(const Mag& a, const Mag& b) {
  Mag r(std::max(a.size(), b.size()) + 1, 0);
  uint64_t carry = 0;
  for (size_t i = 0; i < r.size(); i++) {
    uint64_t s = carry + (i < a.size() ? a[i] : 0) + (i < b.size() ? b[i] : 0);
    r[i] = uint32_t(s);
    carry = s >> 32;
  }
  trim(r);
  return r;
}

Mag mag_sub(const Mag& a, const Mag& b) {  // requires a >= b
  Mag r(a.size(), 0);
  int64_t borrow = 0;
  for (size_t i = 0; i < a.size(); i++) {
    int64_t d = int64_t(a[i]) - (i < b.size() ? b[i] : 0) - borrow;
    borrow = d < 0;
    r[i] = uint32_t(d + (borrow ? (int64_t(1) << 32) : 0));
  }
  trim(r);
  return r;
}

Mag mag_mul(const Mag& a, const Mag& b) {
  if (a.empty() || b.empty()) return {};
  Mag r(a.size() + b.size(), 0);
  for (size_t i = 0; i < a.size(); i++) {
    uint64_t carry = 0;
    for (size_t j = 0; j < b.size(); j++) {
      uint64_t t = uint64_t(a[i]) * b[j] + r[i + j] + carry;
      r[i + j] = uint32_t(t);
      carry = t >> 32;
    }
    r[i + b.size()] = uint32_t(carry);
  }
  trim(r);
  return r;
}

size_t mag_bits(const Mag& a) { return a.empty() ? 0 : 32 * (a.size() - 1) + std::bit_width(a.back()); }

Mag mag_shl(const Mag& a, size_t bits) {
  if (a.empty()) return {};
  size_t words = bits / 32, rem = bits % 32;
  Mag r(a.size() + words + 1, 0);
  for (size_t i = 0; i < a.size(); i++) {
    uint64_t v = uint64_t(a[i]) << rem;
    r[i + words] |= uint32_t(v);
    r[i + words + 1] |= uint32_t(v >> 32);
  }
  trim(r);
  return r;
}

// Truncating division of magnitudes; b must be non-zero.
void mag_divmod(const Mag& a, const Mag& b, Mag& q, Mag& r) {
  if (b.size() == 1) {  // one-word divisor: plain schoolbook, the common case
    q.assign(a.size(), 0);
    uint64_t rem = 0;
    for (size_t i = a.size(); i-- > 0;) {
      uint64_t cur = (rem << 32) | a[i];
      q[i] = uint32_t(cur / b[0]);
      rem = cur % b[0];
    }
    trim(q);
    r = rem ? Mag{uint32_t(rem)} : Mag{};
    return;
  }
  // Bit-by-bit long division: operands are bounded by kMaxCalculatorChars, so this stays in microseconds.
  q.assign(a.size(), 0);
  r.clear();
  for (size_t bit = mag_bits(a); bit-- > 0;) {
    r = mag_shl(r, 1);
    if ((a[bit / 32] >> (bit % 32)) & 1u) {
      if (r.empty()) r.push_back(0);
      r[0] |= 1u;
    }
    if (mag_cmp(r, b) >= 0) {
      r = mag_sub(r, b);
      q[bit / 32] |= 1u << (bit % 32);
    }
  }
  trim(q);
}

struct BigInt {
  bool neg = false;
  Mag mag;
  bool zero() const { return mag.empty(); }
};

BigInt normalized(BigInt x) {
  trim(x.mag);
  if (x.mag.empty()) x.neg = false;
  return x;
}

BigInt big_neg(BigInt a) {
  a.neg = !a.neg;
  return normalized(a);
}

BigInt big_add(const BigInt& a, const BigInt& b) {
  if (a.neg == b.neg) return normalized({a.neg, mag_add(a.mag, b.mag)});
  int c = mag_cmp(a.mag, b.mag);
  if (c >= 0) return normalized({a.neg, mag_sub(a.mag, b.mag)});
  return normalized({b.neg, mag_sub(b.mag, a.mag)});
}

BigInt big_sub(const BigInt& a, const BigInt& b) { return big_add(a, big_neg(b)); }

BigInt big_mul(const BigInt& a, const BigInt& b) { return normalized({a.neg != b.neg, mag_mul(a.mag, b.mag)}); }

BigInt big_floordiv(const BigInt& a, const BigInt& b) {
  if (b.zero()) throw CalcError{};  // ZeroDivisionError
  Mag q, r;
  mag_divmod(a.mag, b.mag, q, r);
  if (a.neg != b.neg && !r.empty()) q = mag_add(q, Mag{1});  // a negative quotient floors toward -inf
  return normalized({a.neg != b.neg, q});
}

BigInt big_from_decimal(std::string_view digits) {
  Mag m;
  for (char c : digits) {
    uint64_t carry = uint64_t(c - '0');
    for (auto& w : m) {
      uint64_t t = uint64_t(w) * 10 + carry;
      w = uint32_t(t);
      carry = t >> 32;
    }
    if (carry) m.push_back(uint32_t(carry));
  }
  return normalized({false, m});
}

std::string big_to_decimal(const BigInt& a) {
  if (a.zero()) return "0";
  std::string out;
  Mag cur = a.mag, q, r;
  const Mag billion = {1000000000u};
  while (!cur.empty()) {
    mag_divmod(cur, billion, q, r);
    uint32_t chunk = r.empty() ? 0 : r[0];
    for (int i = 0; i < 9; i++) {
      out.push_back(char('0' + chunk % 10));
      chunk /= 10;
    }
    cur = q;
  }
  while (out.size() > 1 && out.back() == '0') out.pop_back();
  if (a.neg) out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

// a / b correctly rounded to the nearest double (ties to even), as Python's int true division; OverflowError
// when the result does not fit a double. Also int -> float conversion with b = 1.
double big_truediv(const BigInt& a, const BigInt& b) {
  if (b.zero()) throw CalcError{};  // ZeroDivisionError
  bool negate = a.neg != b.neg;
  if (a.zero()) return negate ? -0.0 : 0.0;
  long na = long(mag_bits(a.mag)), nb = long(mag_bits(b.mag));
  if (na <= 53 && nb <= 53) {  // both exact in a double: IEEE division is already correctly rounded
    auto to_d = [](const Mag& m) { return double(m[0]) + (m.size() > 1 ? double(m[1]) * 4294967296.0 : 0.0); };
    double r = to_d(a.mag) / to_d(b.mag);
    return negate ? -r : r;
  }
  if (na - nb > 1025) throw CalcError{};            // OverflowError
  if (na - nb < -1080) return negate ? -0.0 : 0.0;  // far below the smallest subnormal
  // q = floor(a * 2^s / b) with 56 or 57 significant bits; value = q * 2^-s, remainder kept as a sticky bit.
  long s = 56 - (na - nb);
  Mag n = s >= 0 ? mag_shl(a.mag, size_t(s)) : a.mag;
  Mag d = s >= 0 ? b.mag : mag_shl(b.mag, size_t(-s));
  Mag q, r;
  mag_divmod(n, d, q, r);
  bool sticky = !r.empty();
  uint64_t qq = uint64_t(q[0]) | (q.size() > 1 ? uint64_t(q[1]) << 32 : 0);
  int qbits = std::bit_width(qq);
  long e = qbits - 1 - s;                       // value in [2^e, 2^(e+1))
  long p = e >= -1022 ? 53 : 53 - (-1022 - e);  // precision available at this exponent (subnormals lose bits)
  long drop = qbits - p;
  double result;
  if (drop >= 64) {
    result = 0.0;
  } else {
    uint64_t keep = qq >> drop;
    if (drop > 0) {
      uint64_t rem = qq & ((uint64_t(1) << drop) - 1), half = uint64_t(1) << (drop - 1);
      if (rem > half || (rem == half && (sticky || (keep & 1)))) keep++;
    }
    result = std::ldexp(double(keep), int(drop - s));
  }
  if (std::isinf(result)) throw CalcError{};  // OverflowError
  return negate ? -result : result;
}

double big_to_double(const BigInt& a) { return big_truediv(a, BigInt{false, {1}}); }

// ---------------------------------------------------------------------------------------------------------------------
// Values and Python's float operations

struct Value {
  enum Kind { Int, Float, Str, Bool } kind = Int;
  BigInt i;
  double f = 0.0;
  std::string s;
  bool b = false;
};

Value make_int(BigInt x) {
  Value v;
  v.kind = Value::Int;
  v.i = std::move(x);
  return v;
}
Value make_float(double x) {
  Value v;
  v.kind = Value::Float;
  v.f = x;
  return v;
}
Value make_str(std::string x) {
  Value v;
  v.kind = Value::Str;
  v.s = std::move(x);
  return v;
}
Value make_bool(bool x) {
  Value v;
  v.kind = Value::Bool;
  v.b = x;
  return v;
}
Value make_small_int(int64_t x) {
  uint64_t m = x < 0 ? uint64_t(0) - uint64_t(x) : uint64_t(x);
  return make_int(normalized({x < 0, {uint32_t(m), uint32_t(m >> 32)}}));
}

double as_float(const Value& v) {
  if (v.kind == Value::Float) return v.f;
  if (v.kind == Value::Int) return big_to_double(v.i);
  throw CalcError{};  // TypeError
}

bool numeric(const Value& v) { return v.kind == Value::Int || v.kind == Value::Float; }

// CPython's float floor division (fmod-based, snapped to the nearest integral value).
double float_floordiv(double vx, double wx) {
  if (wx == 0.0) throw CalcError{};  // ZeroDivisionError
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0) {
    if ((wx < 0) != (mod < 0)) div -= 1.0;
  }
  double floordiv;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
  return floordiv;
}

Value binary(char op, const Value& a, const Value& b) {
  if (!numeric(a) || !numeric(b)) throw CalcError{};  // TypeError (strings never meet operators here)
  if (op == '/') {
    if (a.kind == Value::Int && b.kind == Value::Int) return make_float(big_truediv(a.i, b.i));
    double x = as_float(a), y = as_float(b);
    if (y == 0.0) throw CalcError{};  // ZeroDivisionError
    return make_float(x / y);
  }
  if (a.kind == Value::Int && b.kind == Value::Int) {
    switch (op) {
      case '+':
        return make_int(big_add(a.i, b.i));
      case '-':
        return make_int(big_sub(a.i, b.i));
      case '*':
        return make_int(big_mul(a.i, b.i));
      case 'f':
        return make_int(big_floordiv(a.i, b.i));
    }
  }
  double x = as_float(a), y = as_float(b);
  switch (op) {
    case '+':
      return make_float(x + y);
    case '-':
      return make_float(x - y);
    case '*':
      return make_float(x * y);
    case 'f':
      return make_float(float_floordiv(x, y));
  }
  throw CalcError{};
}

// ---------------------------------------------------------------------------------------------------------------------
// str methods (the strings can only hold [A-Za-z0-9._() ] and quotes, so ASCII rules are Python's rules)

size_t py_count(const std::string& s, const std::string& sub) {
  if (sub.empty()) return s.size() + 1;
  size_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) n++;
  return n;
}

bool is_lower_c(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper_c(char c) { return c >= 'A' && c <= 'Z'; }
bool is_alpha_c(char c) { return is_lower_c(c) || is_upper_c(c); }
bool is_digit_c(char c) { return c >= '0' && c <= '9'; }
char to_lower_c(char c) { return is_upper_c(c) ? char(c - 'A' + 'a') : c; }
char to_upper_c(char c) { return is_lower_c(c) ? char(c - 'a' + 'A') : c; }

template <typename Pred>
bool all_nonempty(const std::string& s, Pred p) {
  return !s.empty() && std::all_of(s.begin(), s.end(), p);
}

// islower/isupper: at least one cased character and no character of the other case.
bool cased_check(const std::string& s, bool want_lower) {
  bool any = false;
  for (char c : s) {
    if (want_lower ? is_upper_c(c) : is_lower_c(c)) return false;
    if (is_alpha_c(c)) any = true;
  }
  return any;
}

std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t a = 0, b = s.size();
  if (left)
    while (a < b && chars.find(s[a]) != std::string::npos) a++;
  if (right)
    while (b > a && chars.find(s[b - 1]) != std::string::npos) b--;
  return s.substr(a, b - a);
}

Value call_str_method(const std::string& s, const std::string& name, const std::vector<Value>& args) {
  auto arg_str = [&](size_t i) -> const std::string& {
    if (args[i].kind != Value::Str) throw CalcError{};  // TypeError: must be str
    return args[i].s;
  };
  auto nargs = [&](size_t lo, size_t hi) {
    if (args.size() < lo || args.size() > hi) throw CalcError{};  // TypeError: wrong number of arguments
  };
  if (name == "count") {
    nargs(1, 1);
    return make_small_int(int64_t(py_count(s, arg_str(0))));
  }
  if (name == "find" || name == "index") {
    nargs(1, 1);
    size_t p = s.find(arg_str(0));
    if (p == std::string::npos) {
      if (name == "index") throw CalcError{};  // ValueError: substring not found
      return make_small_int(-1);
    }
    return make_small_int(int64_t(p));
  }
  if (name == "rfind" || name == "rindex") {
    nargs(1, 1);
    size_t p = s.rfind(arg_str(0));
    if (p == std::string::npos) {
      if (name == "rindex") throw CalcError{};
      return make_small_int(-1);
    }
    return make_small_int(int64_t(p));
  }
  if (name == "startswith") {
    nargs(1, 1);
    return make_bool(s.rfind(arg_str(0), 0) == 0);
  }
  if (name == "endswith") {
    nargs(1, 1);
    const std::string& t = arg_str(0);
    return make_bool(t.size() <= s.size() && s.compare(s.size() - t.size(), t.size(), t) == 0);
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    nargs(0, 1);
    std::string chars = args.empty() ? std::string(" ") : arg_str(0);  // only ' ' whitespace can occur
    return make_str(strip_chars(s, chars, name != "rstrip", name != "lstrip"));
  }
  nargs(0, 0);
  std::string t = s;
  if (name == "lower") {
    std::transform(t.begin(), t.end(), t.begin(), to_lower_c);
    return make_str(t);
  }
  if (name == "upper") {
    std::transform(t.begin(), t.end(), t.begin(), to_upper_c);
    return make_str(t);
  }
  if (name == "swapcase") {
    for (char& c : t) c = is_upper_c(c) ? to_lower_c(c) : to_upper_c(c);
    return make_str(t);
  }
  if (name == "capitalize") {
    std::transform(t.begin(), t.end(), t.begin(), to_lower_c);
    if (!t.empty()) t[0] = to_upper_c(t[0]);
    return make_str(t);
  }
  if (name == "isalpha") return make_bool(all_nonempty(s, is_alpha_c));
  if (name == "isdigit") return make_bool(all_nonempty(s, is_digit_c));
  if (name == "isalnum") return make_bool(all_nonempty(s, [](char c) { return is_alpha_c(c) || is_digit_c(c); }));
  if (name == "isspace") return make_bool(all_nonempty(s, [](char c) { return c == ' '; }));
  if (name == "islower") return make_bool(cased_check(s, true));
  if (name == "isupper") return make_bool(cased_check(s, false));
  throw CalcError{};  // a str method we do not model (or AttributeError): None
}

// ---------------------------------------------------------------------------------------------------------------------
// Tokenizer + recursive-descent evaluator for the subset of Python expressions the filters let through.

struct Token {
  enum Kind { Num, Str, Name, Op, End } kind;
  std::string text;  // Num: literal text; Str: contents; Name: identifier; Op: + - * / // ( ) .
  bool is_float = false;
};

bool ident_char(char c) { return is_alpha_c(c) || is_digit_c(c) || c == '_'; }

std::vector<Token> tokenize(std::string_view e) {
  std::vector<Token> out;
  size_t i = 0, n = e.size();
  int depth = 0;
  while (i < n) {
    char c = e[i];
    if (c == ' ') {
      i++;
      continue;
    }
    if (is_digit_c(c) || (c == '.' && i + 1 < n && is_digit_c(e[i + 1]))) {
      size_t st = i;
      while (i < n && is_digit_c(e[i])) i++;
      bool is_float = false;
      if (i < n && e[i] == '.') {
        is_float = true;
        i++;
        while (i < n && is_digit_c(e[i])) i++;
      }
      if (i < n && ident_char(e[i])) throw CalcError{};  // "1abc", "1e5", "1_0": not modelled / invalid literal
      std::string lit(e.substr(st, i - st));
      // Python forbids leading zeros in non-zero decimal int literals ("012"), but allows "00" and "012.5".
      if (!is_float && lit.size() > 1 && lit[0] == '0' && lit.find_first_not_of('0') != std::string::npos)
        throw CalcError{};
      out.push_back({Token::Num, lit, is_float});
      continue;
    }
    if (is_alpha_c(c) || c == '_') {
      size_t st = i;
      while (i < n && ident_char(e[i])) i++;
      std::string name(e.substr(st, i - st));
      if (i < n && (e[i] == '\'' || e[i] == '"')) {  // a string prefix: r/u/f (same text here) or bytes
        std::string p = name;
        std::transform(p.begin(), p.end(), p.begin(), to_lower_c);
        if (!(p == "r" || p == "u" || p == "f" || p == "rf" || p == "fr")) throw CalcError{};
        continue;  // the quote is read as a plain string next
      }
      out.push_back({Token::Name, name});
      continue;
    }
    if (c == '\'' || c == '"') {
      size_t close = e.find(c, i + 1);
      if (close == std::string_view::npos) throw CalcError{};  // unterminated string literal
      out.push_back({Token::Str, std::string(e.substr(i + 1, close - i - 1))});
      i = close + 1;
      continue;
    }
    if (c == '/' && i + 1 < n && e[i + 1] == '/') {
      out.push_back({Token::Op, "//"});
      i += 2;
      continue;
    }
    if (c == '(') {
      if (++depth > 200) throw CalcError{};  // SyntaxError: too many nested parentheses
    } else if (c == ')') {
      depth--;
    } else if (c != '+' && c != '-' && c != '*' && c != '/' && c != '.') {
      throw CalcError{};
    }
    out.push_back({Token::Op, std::string(1, c)});
    i++;
  }
  out.push_back({Token::End, ""});
  return out;
}

class Evaluator {
 public:
  explicit Evaluator(std::vector<Token> toks) : t_(std::move(toks)) {}

  Value run() {
    Value v = expr();
    if (t_[pos_].kind != Token::End) throw CalcError{};  // trailing tokens: SyntaxError
    return v;
  }

 private:
  bool is_op(const char* op) const { return t_[pos_].kind == Token::Op && t_[pos_].text == op; }
  void expect(const char* op) {
    if (!is_op(op)) throw CalcError{};
    pos_++;
  }

  Value expr() {
    Value v = term();
    while (is_op("+") || is_op("-")) {
      char op = t_[pos_++].text[0];
      v = binary(op, v, term());
    }
    return v;
  }

  Value term() {
    Value v = factor();
    while (is_op("*") || is_op("/") || is_op("//")) {
      char op = t_[pos_].text == "//" ? 'f' : t_[pos_].text[0];
      pos_++;
      v = binary(op, v, factor());
    }
    return v;
  }

  Value factor() {
    if (is_op("-") || is_op("+")) {
      bool minus = t_[pos_++].text == "-";
      Value v = factor();
      if (!numeric(v)) throw CalcError{};  // TypeError: bad operand type for unary -
      if (minus) {
        if (v.kind == Value::Int)
          v.i = big_neg(v.i);
        else
          v.f = -v.f;
      }
      return v;
    }
    return postfix();
  }

  Value postfix() {
    Value v = atom();
    while (is_op(".")) {
      pos_++;
      if (t_[pos_].kind != Token::Name) throw CalcError{};
      std::string name = t_[pos_++].text;
      if (!is_op("(")) throw CalcError{};  // bound method objects / other attributes: not modelled
      pos_++;
      std::vector<Value> args;
      if (!is_op(")")) args.push_back(expr());
      expect(")");
      if (v.kind != Value::Str) throw CalcError{};  // int/bool attributes are not modelled
      v = call_str_method(v.s, name, args);
    }
    if (is_op("(")) throw CalcError{};  // calling a non-callable value: TypeError
    return v;
  }

  Value atom() {
    const Token& tk = t_[pos_];
    if (tk.kind == Token::Num) {
      pos_++;
      if (!tk.is_float) return make_int(big_from_decimal(tk.text));
      return make_float(std::strtod(tk.text.c_str(), nullptr));  // correctly rounded, overflow gives inf
    }
    if (tk.kind == Token::Str) {
      std::string s;
      while (t_[pos_].kind == Token::Str) s += t_[pos_++].text;  // adjacent literals concatenate
      return make_str(s);
    }
    if (is_op("(")) {
      pos_++;
      if (is_op(")")) throw CalcError{};  // the empty tuple: not modelled
      Value v = expr();
      expect(")");
      return v;
    }
    throw CalcError{};  // names (NameError with no builtins), keywords, stray operators: None
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
};

std::string value_str(const Value& v) {
  switch (v.kind) {
    case Value::Int:
      return big_to_decimal(v.i);
    case Value::Float:
      return python_float_str(v.f);
    case Value::Str:
      return v.s;
    case Value::Bool:
      return v.b ? "True" : "False";
  }
  return {};
}

}  // namespace

std::optional<std::string> use_calculator(std::string_view expr_in) {
  std::string expr;
  expr.reserve(expr_in.size());
  for (char c : expr_in)
    if (c != ',') expr.push_back(c);
  if (expr.size() > kMaxCalculatorChars) return std::nullopt;

  const std::string_view arith = "0123456789*+-/.() ";
  bool pure = std::all_of(expr.begin(), expr.end(), [&](char c) { return arith.find(c) != std::string_view::npos; });
  if (pure) {
    if (expr.find("**") != std::string::npos) return std::nullopt;  // power is refused: it can be very expensive
  } else {
    auto allowed = [](char c) {
      return is_alpha_c(c) || is_digit_c(c) || c == '\'' || c == '"' || c == '(' || c == ')' || c == '.' || c == '_' ||
             c == ' ';
    };
    if (!std::all_of(expr.begin(), expr.end(), allowed)) return std::nullopt;
    std::string lower = expr;
    std::transform(lower.begin(), lower.end(), lower.begin(), to_lower_c);
    static const char* blocked[] = {"__",   "import",  "exec",      "eval",    "compile", "open",
                                    "file", "input",   "raw_input", "globals", "locals",  "vars",
                                    "dir",  "getattr", "setattr",   "delattr", "hasattr"};
    for (const char* b : blocked)
      if (lower.find(b) != std::string::npos) return std::nullopt;
    if (expr.find(".count(") == std::string::npos) return std::nullopt;
  }
  try {
    return value_str(Evaluator(tokenize(expr)).run());
  } catch (const CalcError&) {
    return std::nullopt;
  }
}

}  // namespace nanochat
