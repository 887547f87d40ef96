// utf8: the few UTF-8 routines the tokenizer needs, with Python's exact semantics.
//   decode_utf8_replace(bytes)  == bytes.decode("utf-8", errors="replace") re-encoded as UTF-8
//   is_valid_utf8(s)            strict validity (no surrogates, no overlongs, <= U+10FFFF)
// Invalid input is replaced per "maximal subpart" (Unicode §3.9, what CPython does): one U+FFFD for each
// longest prefix of a well-formed sequence, or for each single byte that can start none.
// Not covered: UTF-16/32, normalization.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nanochat {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if none starts there.
// When it returns 0, *bad_len (if given) is the number of bytes Python's replace decoder folds into one U+FFFD.
size_t utf8_sequence_length(std::string_view s, size_t i, size_t* bad_len = nullptr);

bool is_valid_utf8(std::string_view s);

// bytes.decode("utf-8", errors="replace"), returned as UTF-8. Fast path: valid input is returned as is.
std::string decode_utf8_replace(std::string_view bytes);

// Number of Unicode code points in valid UTF-8 (Python len(str)).
size_t utf8_length(std::string_view s);

// Appends the UTF-8 encoding of code point cp.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace nanochat
