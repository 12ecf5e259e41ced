// The merge loop of the BPE and SentencePiece tokenizers: a text starts as one symbol per
// character, and the adjacent pair whose merge is best (BPE: lowest merge rank; SentencePiece:
// highest piece score; ties: the leftmost pair) merges, again and again, until no pair can.
// A priority queue holds the candidate pairs; an entry whose symbols have changed since it was
// queued is stale and skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

namespace reprise {

// char_len(pos): the bytes of the character at byte `pos` of `text` (>= 1).
// pair_key(start, left_len, right_len): the key of merging the adjacent symbols
//   text[start, start + left_len) and the right_len bytes after it; nullopt when they cannot merge.
// better(a, b): key a merges before key b.
// emit(piece): called with each final symbol, left to right.
template <typename Key, typename CharLen, typename PairKey, typename Better, typename Emit>
void merge_symbols(std::string_view text, CharLen char_len, PairKey pair_key, Better better,
                   Emit emit) {
  struct Symbol {
    uint32_t start, len;  // byte range in `text`; len 0 once merged into its left
    int32_t prev, next;
  };
  struct Candidate {
    Key key;
    int32_t left, right;
    uint32_t len;  // joined length when queued; a different sum later means the entry is stale
  };
  // The priority queue's order: true when `a` comes out after `b`.
  auto after = [&](const Candidate& a, const Candidate& b) {
    if (better(b.key, a.key)) return true;
    if (better(a.key, b.key)) return false;
    return a.left > b.left;
  };

  std::vector<Symbol> syms;
  syms.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = char_len(pos);
    const auto i = static_cast<int32_t>(syms.size());
    syms.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(len), i - 1, i + 1});
    pos += len;
  }
  if (syms.empty()) return;
  syms.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, decltype(after)> queue(after);
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = syms[left];
    const Symbol& r = syms[right];
    if (const std::optional<Key> key = pair_key(l.start, l.len, r.len))
      queue.push({*key, left, right, l.len + r.len});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) consider(i - 1, i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = syms[c.left];
    Symbol& r = syms[c.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != c.len) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = syms[i].next) emit(text.substr(syms[i].start, syms[i].len));
}

}  // namespace reprise
