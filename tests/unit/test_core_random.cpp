// Python random.Random / numpy default_rng permutation / tuple hash compatibility (nanochat/formats/pyrandom.h).
// Expected values: the CPython's Lib/random.py and numpy's documented algorithms vectors (CPython 3.10/3.11), plus
// vectors computed on this machine with CPython 3.11.7 (`random` stdlib, `hash()`) and numpy 1.24.2
// (`np.random.default_rng(seed).permutation(n)`, `SeedSequence(42).generate_state(4, np.uint64)`,
// `bit_generator.random_raw`).
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>

#include "nanochat/formats/pyrandom.h"

using namespace nanochat;

static std::vector<int64_t> range(int64_t a, int64_t b) {
  std::vector<int64_t> v(b - a);
  std::iota(v.begin(), v.end(), a);
  return v;
}

TEST(PyRandom, SpecVectors) {
  PyRandom r42(42);
  EXPECT_EQ(r42.getrandbits(32), 2746317213u);
  EXPECT_EQ(r42.getrandbits(32), 478163327u);
  EXPECT_EQ(r42.getrandbits(32), 107420369u);

  auto v = range(0, 10);
  PyRandom(42).shuffle(v);
  EXPECT_EQ(v, (std::vector<int64_t>{7, 3, 2, 8, 5, 6, 9, 4, 0, 1}));
  v = range(0, 20);
  PyRandom(1337).shuffle(v);
  EXPECT_EQ(v, (std::vector<int64_t>{13, 1, 2, 9, 7, 8, 0, 18, 3, 14, 4, 16, 12, 15, 6, 10, 5, 11, 17, 19}));

  PyRandom r0(0);
  EXPECT_DOUBLE_EQ(r0.random(), 0.8444218515250481);
  EXPECT_DOUBLE_EQ(r0.random(), 0.7579544029403025);

  EXPECT_EQ(PyRandom(1234).sample(range(1, 100), 5), (std::vector<int64_t>{57, 15, 1, 12, 75}));
  EXPECT_EQ(PyRandom(1237).sample(range(0, 50), 10), (std::vector<int64_t>{9, 25, 19, 15, 14, 22, 32, 39, 44, 24}));

  PyRandom r7(7);
  std::string letters = "abcdefghijklmnopqrstuvwxyz", got;
  for (int i = 0; i < 5; i++) got += r7.choice(letters);
  EXPECT_EQ(got, "kemub");
  EXPECT_EQ(r7.random(), 0.07243628666754276);

  EXPECT_EQ(PyRandom((1ull << 40) + 5).getrandbits(32), 2166296868u);
  EXPECT_EQ(PyRandom(10000000).getrandbits(32), 4052144093u);
}

TEST(PyRandom, MoreVectorsFromCPython) {
  PyRandom a(42);
  EXPECT_EQ(a.getrandbits(64), 2053695854357871005ull);
  EXPECT_EQ(a.getrandbits(64), 13679192365072849617ull);
  EXPECT_EQ(a.getrandbits(64), 4517457392071889495ull);
  PyRandom b(42);
  EXPECT_EQ(b.getrandbits(40), 123005401501ull);
  EXPECT_EQ(b.getrandbits(40), 811856239313ull);
  EXPECT_EQ(b.getrandbits(40), 267469214295ull);
  PyRandom c(123);
  EXPECT_EQ(c.random(), 0.052363598850944326);
  EXPECT_EQ(c.random(), 0.08718667752263232);
  EXPECT_EQ(c.random(), 0.4072417636703983);
  PyRandom d(~0ull);  // 2**64 - 1: a two-word key
  EXPECT_EQ(d.getrandbits(32), 93740670u);
  EXPECT_EQ(d.getrandbits(32), 1068495656u);
  PyRandom e(5);
  std::vector<int64_t> ints;
  for (int i = 0; i < 8; i++) ints.push_back(e.randint(-10, 1000));
  EXPECT_EQ(ints, (std::vector<int64_t>{627, 251, 749, 357, 804, 697, 955, 851}));
  PyRandom f(99);
  EXPECT_EQ(f.randrange(0, 1ll << 40), 834958728041);
  EXPECT_EQ(f.randrange(0, 1ll << 40), 503279123773);
  EXPECT_EQ(f.randrange(0, 1ll << 40), 293124780526);

  auto v = range(0, 100);
  PyRandom(11).shuffle(v);
  EXPECT_EQ(v, (std::vector<int64_t>{82, 72, 51, 58, 54, 47, 49, 87, 69, 53, 90, 37, 52, 27, 28, 34, 19, 9,  62, 10,
                                     73, 21, 39, 48, 84, 2,  46, 91, 22, 86, 15, 81, 33, 13, 74, 44, 43, 70, 88, 55,
                                     64, 6,  36, 98, 94, 61, 32, 14, 79, 16, 45, 77, 35, 26, 17, 66, 63, 89, 42, 0,
                                     31, 83, 40, 29, 25, 56, 41, 97, 3,  30, 93, 4,  7,  8,  67, 1,  20, 85, 50, 76,
                                     5,  68, 11, 18, 38, 96, 12, 92, 78, 80, 60, 95, 23, 24, 75, 65, 99, 59, 71, 57}));
  // set method (n=1000 > setsize 277) and pool method (n=30 <= setsize 85)
  EXPECT_EQ(PyRandom(3).sample(range(0, 1000), 30),
            (std::vector<int64_t>{243, 606, 557, 133, 378, 937, 618, 485, 640, 594, 67,  620, 13,  930, 857,
                                  480, 265, 564, 239, 196, 734, 481, 553, 856, 562, 487, 406, 654, 881, 154}));
  EXPECT_EQ(PyRandom(3).sample(range(0, 30), 7), (std::vector<int64_t>{7, 18, 17, 4, 11, 19, 15}));
}

TEST(PyRandom, ErrorsInsteadOfUndefinedBehaviour) {
  PyRandom r(1);
  std::vector<int> empty;
  EXPECT_THROW(r.choice(empty), std::out_of_range);
  EXPECT_THROW(r.randbelow(0), std::invalid_argument);
  EXPECT_THROW(r.sample(std::vector<int>{1, 2}, 3), std::invalid_argument);
}

TEST(NumpyRandom, SeedSequenceAndRawDraws) {
  auto s = numpy_seed_sequence_state(42);
  EXPECT_EQ(s[0], 11465652750463011511ull);
  EXPECT_EQ(s[1], 15382171918060459190ull);
  EXPECT_EQ(s[2], 9018504550953525431ull);
  EXPECT_EQ(s[3], 3703499796004394495ull);
  NumpyPCG64 g(42);
  EXPECT_EQ(g.next64(), 14276969152011380360ull);
  EXPECT_EQ(g.next64(), 8095878257575067585ull);
  EXPECT_EQ(g.next64(), 15838336090824644132ull);
}

TEST(NumpyRandom, Permutation) {
  EXPECT_EQ(numpy_permutation(10, 42), (std::vector<int64_t>{5, 6, 0, 7, 3, 2, 4, 9, 1, 8}));
  EXPECT_EQ(numpy_permutation(20, 42),
            (std::vector<int64_t>{15, 9, 14, 7, 12, 10, 6, 19, 3, 0, 16, 5, 11, 18, 2, 4, 17, 1, 13, 8}));
  EXPECT_EQ(numpy_permutation(15, 0), (std::vector<int64_t>{2, 11, 3, 10, 0, 4, 7, 5, 14, 12, 6, 9, 13, 8, 1}));
  EXPECT_EQ(numpy_permutation(1, 7), (std::vector<int64_t>{0}));
  EXPECT_EQ(numpy_permutation(12, 1234), (std::vector<int64_t>{0, 9, 11, 5, 6, 2, 8, 4, 7, 1, 3, 10}));
  EXPECT_TRUE(numpy_permutation(0, 42).empty());

  auto p = numpy_permutation(100000, 42);
  EXPECT_EQ(std::vector<int64_t>(p.begin(), p.begin() + 5), (std::vector<int64_t>{45262, 49850, 30394, 90177, 95569}));
  EXPECT_EQ(std::vector<int64_t>(p.end() - 5, p.end()), (std::vector<int64_t>{34957, 70338, 5668, 22113, 75400}));
  uint64_t checksum = 0;  // sum(p[i] * i) mod 1e9+7, as numpy computes it in int64 (no overflow at this size)
  for (int64_t i = 0; i < 100000; i++) checksum += uint64_t(p[i]) * uint64_t(i);
  EXPECT_EQ(checksum % 1000000007ull, 32008545u);
  auto big = numpy_permutation(5000000, 42);
  EXPECT_EQ(std::vector<int64_t>(big.begin(), big.begin() + 3), (std::vector<int64_t>{3897261, 4903908, 3474181}));
}

TEST(PythonHash, TupleOfInts) {
  EXPECT_EQ(python_tuple_hash({0, 1, 2}), 2187946392326065592ll);
  EXPECT_EQ(python_tuple_hash({0, 0, 1}), -1882636517035687140ll);
  EXPECT_EQ(uint64_t(python_tuple_hash({0, 0, 1})) & 0x7FFFFFFF, 2028520220u);
  EXPECT_EQ(uint64_t(python_tuple_hash({0, 0, 0})) & 0x7FFFFFFF, 360982090u);
  EXPECT_EQ(uint64_t(python_tuple_hash({5, 123, 1})) & 0x7FFFFFFF, 1899105296u);
  EXPECT_EQ(python_tuple_hash({1, 2}), -3550055125485641917ll);
  EXPECT_EQ(python_tuple_hash({}), 5740354900026072187ll);
  EXPECT_EQ(python_tuple_hash({7}), -6198871656470064846ll);
  EXPECT_EQ(python_tuple_hash({1000000, 3, 5, 9}), 7469932169165875092ll);
  // Large and negative ints hash modulo 2^61 - 1 with their sign (hash(-1) == -2).
  EXPECT_EQ(python_tuple_hash({(1ll << 61) - 1, 1ll << 62, -1, -5, INT64_MIN}), -8466821798605052990ll);
  EXPECT_EQ(python_tuple_hash({-1}), 8078679518589016365ll);
  EXPECT_EQ(python_tuple_hash({INT64_MAX}), -5029647727744300836ll);
}
