// Tests for nanochat/pickle: reading Python pickles into PyValue trees, writing them back byte for byte as
// CPython's pickler does (fixtures in tests/fixtures/pickle made by make_pickles.py there, and nanochat's
// tokenizer.pkl), and fuzzing the reader with truncated and corrupted input.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "nanochat/common.h"
#include "nanochat/formats/pickle.h"

using namespace nanochat;
using K = PyValue::Kind;

static std::string fixture(const std::string& rel) { return read_file(std::string(NANOCHAT_FIXTURES) + "/" + rel); }

TEST(Pickle, ReadsTokenizerPkl) {
  std::string data = fixture("tokenizer_pkl/tokenizer.pkl");
  PyValue v = pickle_loads(data);
  ASSERT_TRUE(v.is(K::Object));
  const PyObject& enc = v.object();
  EXPECT_TRUE(enc.is("tiktoken.core", "Encoding"));
  EXPECT_TRUE(enc.newobj);
  EXPECT_EQ(enc.args.tuple().size(), 0u);
  const PyDict& st = enc.state.dict();
  EXPECT_EQ(st.at("name").str(), "rustbpe");
  EXPECT_EQ(st.at("pat_str").str().substr(0, 22), "'(?i:[sdmt]|ll|ve|re)|");
  EXPECT_NE(st.at("pat_str").str().find("\\p{N}{1,2}"), std::string::npos);
  const PyDict& ranks = st.at("mergeable_ranks").dict();
  ASSERT_EQ(ranks.size(), 1024u);
  EXPECT_EQ(ranks.items[0].first.bytes(), "!");
  EXPECT_EQ(ranks.items[0].second.as_int(), 0);
  for (size_t i = 0; i < ranks.size(); i++) EXPECT_EQ(ranks.items[i].second.as_int(), (int64_t)i);
  EXPECT_EQ(ranks.at(PyValue::make_bytes(" other")).as_int(), 1023);
  const PyDict& special = st.at("special_tokens").dict();
  ASSERT_EQ(special.size(), 9u);
  EXPECT_EQ(special.items[0].first.str(), "<|bos|>");
  EXPECT_EQ(special.at("<|bos|>").as_int(), 1024);
  EXPECT_EQ(special.at("<|output_end|>").as_int(), 1032);
}

TEST(Pickle, RewritesTokenizerPklByteForByte) {
  std::string data = fixture("tokenizer_pkl/tokenizer.pkl");
  EXPECT_EQ(pickle_dumps(pickle_loads(data), 4), data);
}

// Builds the Encoding from scratch, as the tokenizer does when it saves, and compares with Python's bytes.
TEST(Pickle, BuildsTokenizerPklFromScratch) {
  std::string data = fixture("tokenizer_pkl/tokenizer.pkl");
  PyValue python = pickle_loads(data);
  const PyDict& st = python.object().state.dict();
  PyDict ranks;
  for (auto& [k, r] : st.at("mergeable_ranks").dict().items)
    ranks.set(PyValue::make_bytes(k.bytes()), PyValue::make_int(r.as_int()));
  PyDict special;
  for (auto& [k, r] : st.at("special_tokens").dict().items)
    special.set(PyValue::make_str(k.str()), PyValue::make_int(r.as_int()));
  PyDict state;
  state.set(PyValue::make_str("name"), PyValue::make_str("rustbpe"));
  state.set(PyValue::make_str("pat_str"), PyValue::make_str(st.at("pat_str").str()));
  state.set(PyValue::make_str("mergeable_ranks"), PyValue::make_dict(std::move(ranks)));
  state.set(PyValue::make_str("special_tokens"), PyValue::make_dict(std::move(special)));
  PyValue enc = PyValue::make_object(PyValue::make_global("tiktoken.core", "Encoding"), PyValue::make_tuple(), true);
  enc.object().state = PyValue::make_dict(std::move(state));
  EXPECT_EQ(pickle_dumps(enc, 4), data);
}

TEST(Pickle, RoundTripsPythonFixturesByteForByte) {
  for (const char* name :
       {"pickle/mixed_p2.pkl", "pickle/mixed_p3.pkl", "pickle/mixed_p4.pkl", "pickle/frames_p4.pkl"}) {
    SCOPED_TRACE(name);
    std::string data = fixture(name);
    int proto = (uint8_t)data[1];
    std::string out = pickle_dumps(pickle_loads(data), proto);
    ASSERT_EQ(out.size(), data.size());
    size_t first_diff = 0;
    while (first_diff < out.size() && out[first_diff] == data[first_diff]) first_diff++;
    EXPECT_EQ(first_diff, data.size()) << "first difference at byte " << first_diff;
  }
}

TEST(Pickle, ReadsMixedValues) {
  PyValue v = pickle_loads(fixture("pickle/mixed_p4.pkl"));
  const PyDict& d = v.dict();
  std::vector<int64_t> ints = {0,
                               1,
                               255,
                               256,
                               65535,
                               65536,
                               -1,
                               -256,
                               2147483647LL,
                               -2147483648LL,
                               2147483648LL,
                               -2147483649LL,
                               1LL << 40,
                               -(1LL << 40),
                               INT64_MAX,
                               INT64_MIN,
                               128,
                               -128,
                               32768,
                               -32769,
                               1LL << 55,
                               -(1LL << 55) - 7};
  auto& got = d.at("ints").list();
  ASSERT_EQ(got.size(), ints.size());
  for (size_t i = 0; i < ints.size(); i++) EXPECT_EQ(got[i].as_int(), ints[i]) << i;
  auto& fl = d.at("floats").list();
  EXPECT_EQ(fl[2].as_float(), 0.5);
  EXPECT_EQ(fl[3].as_float(), -1e300);
  EXPECT_TRUE(std::isinf(fl[5].as_float()));
  EXPECT_TRUE(std::signbit(fl[1].as_float()));
  auto& strs = d.at("strs").list();
  EXPECT_EQ(strs[2].str(), "héllo ✓ 日本");
  EXPECT_EQ(strs[5].str().size(), 70000u);
  EXPECT_TRUE(strs[6].same(strs[7]));  // the same str object, fetched from the memo
  auto& lists = d.at("lists").list();
  EXPECT_EQ(lists[4].list().size(), 2000u);
  EXPECT_TRUE(lists[5].same(lists[6]));
  EXPECT_EQ(d.at("tuples").list()[5].tuple()[1].tuple()[1].str(), "b");
  auto& dicts = d.at("dicts").list();
  EXPECT_EQ(dicts[3].dict().size(), 1001u);
  EXPECT_EQ(dicts[4].dict().at(PyValue::make_tuple({PyValue::make_int(1), PyValue::make_int(2)})).kind(), K::None);
  EXPECT_TRUE(dicts[4].dict().at(PyValue::make_float(3.5)).as_bool());
  const PyObject& od = d.at("od").object();
  EXPECT_TRUE(od.is("collections", "OrderedDict"));
  EXPECT_EQ(od.dict_items.size(), 1001u);
  EXPECT_EQ(od.dict_items[7].first.str(), "w7");
  const PyObject& ns = d.at("ns").object();
  EXPECT_EQ(ns.qualname(), "argparse.Namespace");
  EXPECT_EQ(ns.state.dict().at("gamma").str(), "g");
  EXPECT_EQ(d.at("bytes").list()[1].bytes(), std::string("\x00\xff", 2));
  EXPECT_TRUE(d.at("flags").list()[0].is_none());
  EXPECT_TRUE(d.at("flags").list()[1].as_bool());
}

TEST(Pickle, DictKeysFollowPythonEquality) {
  PyDict d;
  d.set(PyValue::make_int(1), PyValue::make_str("int"));
  d.set(PyValue::make_float(1.0), PyValue::make_str("float"));  // 1 == 1.0: replaces, keeps position
  d.set(PyValue::make_bytes("1"), PyValue::make_str("bytes"));
  d.set(PyValue::make_str("1"), PyValue::make_str("str"));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d.at(PyValue::make_bool(true)).str(), "float");
  EXPECT_EQ(d.at(PyValue::make_bytes("1")).str(), "bytes");
  EXPECT_EQ(d.at("1").str(), "str");
  EXPECT_THROW(d.set(PyValue::make_list(), PyValue()), Error);
  EXPECT_THROW(d.at("missing"), Error);
}

TEST(Pickle, HooksResolvePersistentIdsAndReduce) {
  // Protocol 2 bytes of: OrderedDict([('w', persistent_id(('storage', 7)))]) as torch.save lays it out.
  PyValue pid = PyValue::make_tuple({PyValue::make_str("storage"), PyValue::make_int(7)});
  PyValue od = PyValue::make_object(PyValue::make_global("collections", "OrderedDict"), PyValue::make_tuple(), false);
  od.object().dict_items.emplace_back(PyValue::make_str("w"), PyValue::make_persid(pid));
  std::string data = pickle_dumps(od, 2);
  PyValue plain = pickle_loads(data);
  EXPECT_EQ(plain.object().dict_items[0].second.persid().pid.tuple()[1].as_int(), 7);

  UnpickleHooks hooks;
  hooks.persistent_load = [](const PyValue& p) { return PyValue::make_native(p.tuple()[1].as_int() * 10, "storage"); };
  hooks.reduce = [](const PyGlobal& g, const PyValue& args) -> std::optional<PyValue> {
    if (g.module == "collections" && g.name == "OrderedDict") return PyValue::make_dict();
    return std::nullopt;
  };
  PyValue v = pickle_loads(data, hooks);
  ASSERT_TRUE(v.is(K::Dict));
  EXPECT_EQ(std::any_cast<int64_t>(v.dict().at("w").native().value), 70);

  hooks.check_global = [](const PyGlobal& g) { fail("global {}.{} is not allowed", g.module, g.name); };
  EXPECT_THROW(pickle_loads(data, hooks), Error);
}

TEST(Pickle, ErrorsNameTheProblem) {
  auto msg = [](std::string_view data) {
    try {
      pickle_loads(data);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg("").find("truncated"), std::string::npos);
  EXPECT_NE(msg("\x80\x02X\xff\x00\x00\x00ab").find("truncated"), std::string::npos);
  EXPECT_NE(msg("\x80\x02.").find("STOP with 0 values"), std::string::npos);
  EXPECT_NE(msg("\x80\x02h\x05.").find("memo key 5"), std::string::npos);
  EXPECT_NE(msg("\x80\x02I1\n.").find("protocol 0"), std::string::npos);
  EXPECT_NE(msg("\x80\x09N.").find("protocol 9"), std::string::npos);
  EXPECT_NE(msg("\x80\x02N.N").find("after STOP"), std::string::npos);
  EXPECT_NE(msg("\x80\x02K\x01NNs.").find("SETITEM on a int"), std::string::npos);
  EXPECT_NE(msg("\x80\x04\x8c\x02\xc3(.").find("UTF-8"), std::string::npos);
  EXPECT_NE(msg("\x80\x02\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01.").find("64 bits"), std::string::npos);
  std::string deep = "\x80\x02";
  for (int i = 0; i < 1100; i++) deep += "]";
  for (int i = 0; i < 1099; i++) deep += "a";
  deep += ".";
  EXPECT_NE(msg(deep).find("nesting deeper"), std::string::npos);
}

// Truncations, byte flips and random garbage must all end in an Error or a value, never a crash or a hang.
TEST(Pickle, FuzzNeverCrashes) {
  std::vector<std::string> seeds = {fixture("tokenizer_pkl/tokenizer.pkl").substr(0, 4000),
                                    fixture("pickle/mixed_p2.pkl").substr(0, 3000)};
  std::mt19937_64 rng(1234);
  size_t errors = 0, values = 0;
  auto attempt = [&](const std::string& data) {
    try {
      PyValue v = pickle_loads(data);
      v.repr(100);
      pickle_dumps(v, 4);
      values++;
    } catch (const Error&) {
      errors++;
    }
  };
  std::string full = fixture("tokenizer_pkl/tokenizer.pkl");
  for (size_t n = 0; n < full.size(); n += 97) attempt(full.substr(0, n));
  for (auto& seed : seeds) {
    for (int iter = 0; iter < 3000; iter++) {
      std::string d = seed;
      int flips = 1 + rng() % 8;
      for (int f = 0; f < flips; f++) d[rng() % d.size()] = (char)(rng() & 0xff);
      if (rng() % 2) d.resize(rng() % d.size());
      attempt(d);
    }
  }
  const std::string ops = "()]}NK\x88\x89\x85\x86\x87taesuhq\x94\x93\x81Rb0120Q.\x8c\x01zC\x01x";
  for (int iter = 0; iter < 20000; iter++) {
    std::string d = "\x80\x04";
    int n = 1 + rng() % 60;
    for (int i = 0; i < n; i++) d += (rng() % 4) ? ops[rng() % ops.size()] : (char)(rng() & 0xff);
    attempt(d);
  }
  EXPECT_GT(errors, 0u);
  EXPECT_GT(values + errors, 20000u);
}
