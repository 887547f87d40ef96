// pyrandom: Python-compatible random numbers, so data order and synthetic prompts match Python nanochat bit for bit.
//   PyRandom        = CPython's random.Random(int seed): MT19937 seeded by init_by_array, random(), getrandbits,
//                     randrange/randint/choice/shuffle/sample exactly as CPython 3.10+ implements them.
//   numpy_permutation(n, seed) = numpy.random.default_rng(seed).permutation(n) (PCG64 + SeedSequence), which is
//                     what HF datasets' .shuffle(seed) uses to order the task datasets.
//   python_tuple_hash = hash() of a tuple of ints (64-bit CPython), used for RL sampling seeds.
// Usage: PyRandom rng(42); rng.shuffle(v); auto p = numpy_permutation(1000, 42);
// Not covered: seeding from str/bytes/float/None, Python's gauss/choices/etc., numpy distributions other than
// the bounded integers a permutation needs.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace nanochat {

class PyRandom {
 public:
  // random.Random(seed) for an int seed; Python uses abs(seed), so pass the magnitude.
  explicit PyRandom(uint64_t seed);

  uint32_t genrand_uint32();
  // getrandbits(k) for 0 <= k <= 64 (words are drawn least significant first, as CPython does).
  uint64_t getrandbits(int k);
  // random() in [0, 1) with 53 bits.
  double random();
  // _randbelow(n) for n >= 1: k = bit_length(n), redraw getrandbits(k) until below n.
  uint64_t randbelow(uint64_t n);
  // randrange(start, stop) with step 1 and randint(a, b) = randrange(a, b + 1).
  int64_t randrange(int64_t start, int64_t stop);
  int64_t randint(int64_t a, int64_t b) { return randrange(a, b + 1); }

  template <typename Seq>
  const auto& choice(const Seq& seq) {
    if (seq.empty()) throw std::out_of_range("PyRandom::choice: cannot choose from an empty sequence");
    return seq[randbelow(seq.size())];
  }

  template <typename T>
  void shuffle(std::vector<T>& x) {
    for (size_t i = x.size(); i-- > 1;) {
      size_t j = randbelow(i + 1);
      std::swap(x[i], x[j]);
    }
  }

  // sample(population, k): the pool method for small populations, the set method otherwise, as CPython picks.
  template <typename T>
  std::vector<T> sample(const std::vector<T>& population, size_t k) {
    size_t n = population.size();
    if (k > n) throw std::invalid_argument("PyRandom::sample: sample larger than population");
    std::vector<T> result;
    result.reserve(k);
    size_t setsize = 21;
    if (k > 5) setsize += static_cast<size_t>(std::pow(4.0, std::ceil(std::log(double(k * 3)) / std::log(4.0))));
    if (n <= setsize) {
      std::vector<T> pool = population;
      for (size_t i = 0; i < k; i++) {
        size_t j = randbelow(n - i);
        result.push_back(pool[j]);
        pool[j] = pool[n - i - 1];
      }
    } else {
      std::unordered_set<size_t> selected;
      for (size_t i = 0; i < k; i++) {
        size_t j = randbelow(n);
        while (selected.count(j)) j = randbelow(n);
        selected.insert(j);
        result.push_back(population[j]);
      }
    }
    return result;
  }

 private:
  void init_genrand(uint32_t s);
  void init_by_array(const std::vector<uint32_t>& key);
  std::array<uint32_t, 624> mt_{};
  int mti_ = 625;
};

// numpy.random.default_rng(seed).permutation(n) for a non-negative int seed below 2^32.
std::vector<int64_t> numpy_permutation(int64_t n, uint32_t seed);

// The 4 uint64 words numpy's SeedSequence(seed).generate_state(4, uint64) returns (exposed for tests).
std::array<uint64_t, 4> numpy_seed_sequence_state(uint32_t seed);

// numpy's PCG64 bit generator (XSL-RR 128/64) as default_rng seeds it; next32 buffers half of a 64-bit draw.
class NumpyPCG64 {
 public:
  explicit NumpyPCG64(uint32_t seed);
  uint64_t next64();
  uint32_t next32();
  // random_interval(max): uniform in [0, max] by masked rejection, as numpy's Fisher-Yates shuffle draws.
  uint64_t random_interval(uint64_t max);

 private:
  void step();
  unsigned __int128 state_ = 0, inc_ = 0;
  bool has_uint32_ = false;
  uint32_t uinteger_ = 0;
};

// CPython 64-bit hash() of an int, and of a tuple of ints (the xxHash-style tuple hash).
int64_t python_int_hash(int64_t x);
int64_t python_tuple_hash(const std::vector<int64_t>& items);

}  // namespace nanochat
