// tokenizer_pkl: see tokenizer_pkl.h. Reading and writing go through the generic pickle module (pickle.h);
// tests/unit/test_core_tokenizer_files.cpp re-pickles our output with Python, including the 1.3 MB cl100k vocabulary
// and frames that end next to MARK/SETITEMS.
#include "nanochat/tokenizer_pkl.h"

#include <vector>

#include <fmt/format.h>

#include "nanochat/common.h"
#include "nanochat/formats/pickle.h"

namespace nanochat {

TiktokenState parse_tokenizer_pkl(std::string_view bytes, const std::string& what) {
  auto bad = [&](const std::string& why) {
    fail("{} is not a usable tokenizer.pkl ({}); expected a pickled tiktoken Encoding as nanochat saves it", what, why);
  };
  PyValue root;
  try {
    root = pickle_loads(bytes);
  } catch (const Error& e) {
    bad(e.what());
  }
  if (!root.is(PyValue::Kind::Object) || !root.object().is("tiktoken.core", "Encoding"))
    bad(fmt::format("the pickled object is {}", root.repr(80)));
  const PyValue& state = root.object().state;
  if (!state.is(PyValue::Kind::Dict))
    bad("the Encoding's state is not a dict; registered encodings such as cl100k_base are pickled by name only");
  TiktokenState st;
  try {
    const PyDict& d = state.dict();
    st.name = d.at("name").str();
    st.pat_str = d.at("pat_str").str();
    const PyDict& ranks = d.at("mergeable_ranks").dict();
    st.mergeable_ranks.reserve(ranks.size());
    for (const auto& [k, v] : ranks.items) {
      int64_t r = v.as_int();
      if (r < 0 || r > INT32_MAX) bad(fmt::format("rank {} is out of range", r));
      st.mergeable_ranks.emplace_back(k.bytes(), int32_t(r));
    }
    for (const auto& [k, v] : d.at("special_tokens").dict().items) {
      int64_t id = v.as_int();
      if (id < 0 || id > INT32_MAX) bad(fmt::format("special token id {} is out of range", id));
      st.special_tokens.emplace_back(k.str(), int32_t(id));
    }
  } catch (const Error& e) {
    bad(e.what());
  }
  return st;
}

std::string write_tokenizer_pkl(const TiktokenState& st) {
  // pickle.dumps(Encoding, protocol=4): STACK_GLOBAL tiktoken.core Encoding, EMPTY_TUPLE, NEWOBJ, state dict, BUILD.
  PyDict ranks;
  ranks.items.reserve(st.mergeable_ranks.size());
  for (const auto& [token, rank] : st.mergeable_ranks) {
    if (token.size() >= 64 * 1024) fail("cannot pickle a token of {} bytes (64 KiB or more)", token.size());
    ranks.items.emplace_back(PyValue::make_bytes(token), PyValue::make_int(rank));
  }
  PyDict specials;
  for (const auto& [text, id] : st.special_tokens)
    specials.items.emplace_back(PyValue::make_str(text), PyValue::make_int(id));
  PyDict state;
  state.items.emplace_back(PyValue::make_str("name"), PyValue::make_str(st.name));
  state.items.emplace_back(PyValue::make_str("pat_str"), PyValue::make_str(st.pat_str));
  state.items.emplace_back(PyValue::make_str("mergeable_ranks"), PyValue::make_dict(std::move(ranks)));
  state.items.emplace_back(PyValue::make_str("special_tokens"), PyValue::make_dict(std::move(specials)));
  PyValue encoding = PyValue::make_object(PyValue::make_global("tiktoken.core", "Encoding"), PyValue::make_tuple({}),
                                          /*newobj=*/true);
  encoding.object().state = PyValue::make_dict(std::move(state));
  return pickle_dumps(encoding, 4);
}

}  // namespace nanochat
