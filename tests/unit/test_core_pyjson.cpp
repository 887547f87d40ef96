// Tests for nanochat/pyjson: output identical to Python's json.dumps (expected strings produced by CPython 3.11),
// and reading Python's non-finite tokens back.
#include <gtest/gtest.h>

#include <cmath>

#include "nanochat/common.h"
#include "nanochat/formats/pyjson.h"

using namespace nanochat;

TEST(PyJson, FloatReprMatchesPython) {
  // json.dumps([0.1, 1e-10, 1e16, 1e15, 3.0, -0.0, 0.0001, 0.00001, 123456789012345678.0, 1.5e300, 2.5e-300,
  //             1/3, 100.0, 1234.5678, inf, -inf, nan, -1.25e-7, 5e-324])
  Json a = Json::array({0.1, 1e-10, 1e16, 1e15, 3.0, -0.0, 0.0001, 0.00001, 123456789012345678.0, 1.5e300, 2.5e-300,
                        1.0 / 3, 100.0, 1234.5678, INFINITY, -INFINITY, NAN, -1.25e-7, 5e-324});
  EXPECT_EQ(json_dumps_python(a),
            "[0.1, 1e-10, 1e+16, 1000000000000000.0, 3.0, -0.0, 0.0001, 1e-05, 1.2345678901234568e+17, 1.5e+300, "
            "2.5e-300, 0.3333333333333333, 100.0, 1234.5678, Infinity, -Infinity, NaN, -1.25e-07, 5e-324]");
}

static Json sample() {
  Json obj;
  obj["step"] = 3;
  obj["val_bpb"] = nullptr;
  obj["text"] = "h\u00e9llo \u2713 \U0001F600 \"q\" \\ \n\t\x01\x7f/";
  obj["empty_d"] = Json::object();
  obj["empty_l"] = Json::array();
  obj["nested"]["a"] = Json::array({1, 2.5, true, false, nullptr});
  obj["nested"]["b"]["c"] = INFINITY;
  obj["big"] = INT64_MAX;
  obj["neg"] = -42;
  return obj;
}

TEST(PyJson, DumpsLikePythonIndent2AndCompact) {
  EXPECT_EQ(
      json_dumps_python(sample(), 2),
      "{\n  \"step\": 3,\n  \"val_bpb\": null,\n  \"text\": \"h\\u00e9llo \\u2713 \\ud83d\\ude00 \\\"q\\\" \\\\ "
      "\\n\\t\\u0001\\u007f/\",\n  \"empty_d\": {},\n  \"empty_l\": [],\n  \"nested\": {\n    \"a\": [\n      1,\n"
      "      2.5,\n      true,\n      false,\n      null\n    ],\n    \"b\": {\n      \"c\": Infinity\n    }\n  },\n"
      "  \"big\": 9223372036854775807,\n  \"neg\": -42\n}");
  EXPECT_EQ(
      json_dumps_python(sample()),
      "{\"step\": 3, \"val_bpb\": null, \"text\": \"h\\u00e9llo \\u2713 \\ud83d\\ude00 \\\"q\\\" \\\\ "
      "\\n\\t\\u0001\\u007f/\", \"empty_d\": {}, \"empty_l\": [], \"nested\": {\"a\": [1, 2.5, true, false, null], "
      "\"b\": {\"c\": Infinity}}, \"big\": 9223372036854775807, \"neg\": -42}");
}

TEST(PyJson, LoadsPythonTokensAndRoundTrips) {
  std::string text = json_dumps_python(sample(), 2);
  Json back = json_loads_python(text);
  EXPECT_TRUE(std::isinf(back["nested"]["b"]["c"].get<double>()));
  EXPECT_EQ(back["text"], sample()["text"]);
  EXPECT_EQ(json_dumps_python(back, 2), text);
  Json j = json_loads_python(R"({"a": NaN, "b": -Infinity, "s": "NaN Infinity", "l": [Infinity]})");
  EXPECT_TRUE(std::isnan(j["a"].get<double>()));
  EXPECT_EQ(j["b"].get<double>(), -INFINITY);
  EXPECT_EQ(j["s"], "NaN Infinity");
  EXPECT_EQ(j["l"][0].get<double>(), INFINITY);
  EXPECT_EQ(std::vector<std::string>({"a", "b", "s", "l"}), [&] {
    std::vector<std::string> keys;
    for (auto& [k, v] : j.items()) keys.push_back(k);
    return keys;
  }());
  EXPECT_THROW(json_loads_python("{\"a\": }"), Error);
  EXPECT_THROW(json_loads_python(""), Error);
}
