// pyjson: JSON text exactly as Python's json module writes and reads it, for files Python nanochat shares with us
// (meta_XXXXXX.json, report sections, eval outputs).
//
// json_dumps_python(j, 2) equals json.dumps(obj, indent=2) (and json.dump(obj, f, indent=2)) for the same
// values: insertion-ordered keys, ensure_ascii (non-ASCII as \uXXXX, astral characters as surrogate pairs),
// floats as Python's repr (0.1, 1e-10, 1e+16, 3.0), NaN / Infinity / -Infinity as bare tokens, "{}" / "[]" for
// empty containers. json_loads_python also accepts those bare tokens, as json.loads does.
//
//   Json meta = {{"step", 3}, {"val_bpb", 3.25}};
//   write_file_atomic(path, json_dumps_python(meta, 2));
//   Json back = json_loads_python(read_file(path));
//
// Not covered: json.dumps options other than indent (sort_keys, separators, ensure_ascii=False).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace nanochat {

// Key order matters for byte-identical files, so ordered_json everywhere.
using Json = nlohmann::ordered_json;

// indent < 0: one line with Python's default separators ", " and ": "; indent >= 0: newlines and that many spaces.
std::string json_dumps_python(const Json& j, int indent = -1);
// Parse JSON text (plus NaN, Infinity, -Infinity); bad text → nanochat::Error naming the position.
Json json_loads_python(std::string_view text);
// A float as Python's json module writes it: repr() digits, NaN / Infinity / -Infinity for the specials.
std::string json_float_repr(double x);

}  // namespace nanochat
