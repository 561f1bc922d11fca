// text: small text helpers that every layer shares (ASCII case folding), so no folder keeps its own
// copy. Depends on nothing else in the project.
#pragma once

#include <string>
#include <string_view>

namespace xqw::text {

// A-Z folded to a-z; every other byte (UTF-8 included) unchanged, whatever the C++ locale.
inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

}  // namespace xqw::text
