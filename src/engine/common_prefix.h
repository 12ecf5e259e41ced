// The longest prefix two token sequences share: how much of a session's KV a new sequence can
// keep (a chat's next turn re-sends the conversation, eval's requests share a few-shot context,
// the prefix cache's base run), so that only the tokens after it are computed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace reprise {

// The number of leading tokens `a` and `b` have in common.
inline size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace reprise
