// pyrandom: see pyrandom.h. The algorithms follow CPython's _randommodule.c / random.py and numpy's
// SeedSequence, PCG64 and random_interval, written from their documented behaviour (CPython's Lib/random.py and numpy's
// documented algorithms).
#include "nanochat/formats/pyrandom.h"

#include <bit>
#include <numeric>

namespace nanochat {

// ---------------------------------------------------------------------------------------------------------------------
// MT19937 (reference mt19937ar constants)

void PyRandom::init_genrand(uint32_t s) {
  mt_[0] = s;
  for (int i = 1; i < 624; i++) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + uint32_t(i);
  mti_ = 624;
}

void PyRandom::init_by_array(const std::vector<uint32_t>& key) {
  init_genrand(19650218u);
  size_t i = 1, j = 0, n = key.size();
  for (size_t k = std::max<size_t>(624, n); k; k--) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + uint32_t(j);
    i++, j++;
    if (i >= 624) {
      mt_[0] = mt_[623];
      i = 1;
    }
    if (j >= n) j = 0;
  }
  for (size_t k = 623; k; k--) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - uint32_t(i);
    i++;
    if (i >= 624) {
      mt_[0] = mt_[623];
      i = 1;
    }
  }
  mt_[0] = 0x80000000u;  // MSB is 1, assuring a non-zero initial array
}

PyRandom::PyRandom(uint64_t seed) {
  // Python splits |seed| into little-endian 32-bit words; zero still gives one word.
  std::vector<uint32_t> key;
  do {
    key.push_back(uint32_t(seed & 0xffffffffu));
    seed >>= 32;
  } while (seed);
  init_by_array(key);
}

uint32_t PyRandom::genrand_uint32() {
  static constexpr uint32_t mag01[2] = {0x0u, 0x9908b0dfu};
  if (mti_ >= 624) {
    int kk = 0;
    for (; kk < 624 - 397; kk++) {
      uint32_t y = (mt_[kk] & 0x80000000u) | (mt_[kk + 1] & 0x7fffffffu);
      mt_[kk] = mt_[kk + 397] ^ (y >> 1) ^ mag01[y & 1u];
    }
    for (; kk < 623; kk++) {
      uint32_t y = (mt_[kk] & 0x80000000u) | (mt_[kk + 1] & 0x7fffffffu);
      mt_[kk] = mt_[kk + (397 - 624)] ^ (y >> 1) ^ mag01[y & 1u];
    }
    uint32_t y = (mt_[623] & 0x80000000u) | (mt_[0] & 0x7fffffffu);
    mt_[623] = mt_[396] ^ (y >> 1) ^ mag01[y & 1u];
    mti_ = 0;
  }
  uint32_t y = mt_[mti_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

uint64_t PyRandom::getrandbits(int k) {
  if (k < 0 || k > 64) throw std::invalid_argument("PyRandom::getrandbits: k must be in [0, 64]");
  if (k == 0) return 0;
  if (k <= 32) return genrand_uint32() >> (32 - k);
  // CPython fills 32-bit words from the least significant end; the last word is cut to the remaining bits.
  uint64_t lo = genrand_uint32();
  uint64_t hi = genrand_uint32() >> (64 - k);
  return lo | (hi << 32);
}

double PyRandom::random() {
  uint32_t a = genrand_uint32() >> 5, b = genrand_uint32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

uint64_t PyRandom::randbelow(uint64_t n) {
  if (n == 0) throw std::invalid_argument("PyRandom::randbelow: n must be positive");
  int k = std::bit_width(n);  // bit_length(n), not of n-1: a power of two wastes half the draws, as in CPython
  uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

int64_t PyRandom::randrange(int64_t start, int64_t stop) {
  if (stop <= start) throw std::invalid_argument("PyRandom::randrange: empty range");
  return start + int64_t(randbelow(uint64_t(stop - start)));
}

// ---------------------------------------------------------------------------------------------------------------------
// numpy SeedSequence (pool size 4) and PCG64

namespace {
constexpr uint32_t INIT_A = 0x43b0d7e5u, MULT_A = 0x931e8875u, INIT_B = 0x8b51f9ddu, MULT_B = 0x58f38dedu;
constexpr uint32_t MIX_MULT_L = 0xca01f9ddu, MIX_MULT_R = 0x4973f715u, XSHIFT = 16;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= MULT_A;
  value *= hash_const;
  value ^= value >> XSHIFT;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t result = MIX_MULT_L * x - MIX_MULT_R * y;
  result ^= result >> XSHIFT;
  return result;
}
}  // namespace

std::array<uint64_t, 4> numpy_seed_sequence_state(uint32_t seed) {
  // An int entropy below 2^32 is one uint32 word; the pool is mixed from it and three zero words.
  const std::vector<uint32_t> entropy = {seed};
  std::array<uint32_t, 4> pool{};
  uint32_t hash_const = INIT_A;
  for (size_t i = 0; i < pool.size(); i++) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0u, hash_const);
  for (size_t src = 0; src < pool.size(); src++)
    for (size_t dst = 0; dst < pool.size(); dst++)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], hash_const));
  // generate_state(4, uint64): 8 uint32 words from the cycled pool, paired little-endian into uint64s.
  std::array<uint32_t, 8> words{};
  uint32_t hc = INIT_B;
  for (size_t i = 0; i < words.size(); i++) {
    uint32_t v = pool[i % pool.size()];
    v ^= hc;
    hc *= MULT_B;
    v *= hc;
    v ^= v >> XSHIFT;
    words[i] = v;
  }
  std::array<uint64_t, 4> out{};
  for (size_t i = 0; i < 4; i++) out[i] = uint64_t(words[2 * i]) | (uint64_t(words[2 * i + 1]) << 32);
  return out;
}

namespace {
constexpr unsigned __int128 PCG_MULT =
    (static_cast<unsigned __int128>(2549297995355413924ull) << 64) | 4865540595714422341ull;
}

NumpyPCG64::NumpyPCG64(uint32_t seed) {
  auto s = numpy_seed_sequence_state(seed);
  unsigned __int128 initstate = (static_cast<unsigned __int128>(s[0]) << 64) | s[1];
  unsigned __int128 initseq = (static_cast<unsigned __int128>(s[2]) << 64) | s[3];
  state_ = 0;
  inc_ = (initseq << 1) | 1;
  step();
  state_ += initstate;
  step();
}

void NumpyPCG64::step() { state_ = state_ * PCG_MULT + inc_; }

uint64_t NumpyPCG64::next64() {
  step();
  uint64_t hi = uint64_t(state_ >> 64), lo = uint64_t(state_);
  unsigned rot = unsigned(state_ >> 122);
  return std::rotr(hi ^ lo, int(rot));
}

uint32_t NumpyPCG64::next32() {
  if (has_uint32_) {
    has_uint32_ = false;
    return uinteger_;
  }
  uint64_t v = next64();
  has_uint32_ = true;
  uinteger_ = uint32_t(v >> 32);
  return uint32_t(v & 0xffffffffu);
}

uint64_t NumpyPCG64::random_interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t value;
  if (max <= 0xffffffffu) {
    while ((value = (next32() & mask)) > max) {}
  } else {
    while ((value = (next64() & mask)) > max) {}
  }
  return value;
}

std::vector<int64_t> numpy_permutation(int64_t n, uint32_t seed) {
  if (n < 0) throw std::invalid_argument("numpy_permutation: n must be non-negative");
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), int64_t(0));
  NumpyPCG64 rng(seed);
  for (int64_t i = n - 1; i >= 1; i--) {
    int64_t j = int64_t(rng.random_interval(uint64_t(i)));
    std::swap(p[i], p[j]);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------------------
// CPython tuple hash (xxHash-style, 64-bit)

int64_t python_int_hash(int64_t x) {
  constexpr uint64_t MODULUS = (uint64_t(1) << 61) - 1;  // ints hash to their value modulo 2^61 - 1, keeping the sign
  uint64_t mag = x < 0 ? uint64_t(0) - uint64_t(x) : uint64_t(x);
  int64_t h = int64_t(mag % MODULUS);
  if (x < 0) h = -h;
  return h == -1 ? -2 : h;  // -1 is reserved for errors in CPython
}

int64_t python_tuple_hash(const std::vector<int64_t>& items) {
  constexpr uint64_t P1 = 11400714785074694791ull, P2 = 14029467366897019727ull, P5 = 2870177450012600261ull;
  uint64_t acc = P5;
  for (int64_t item : items) {
    acc += uint64_t(python_int_hash(item)) * P2;
    acc = std::rotl(acc, 31);
    acc *= P1;
  }
  acc += uint64_t(items.size()) ^ (P5 ^ 3527539ull);
  if (acc == ~uint64_t(0)) return 1546275796;
  return static_cast<int64_t>(acc);
}

}  // namespace nanochat
