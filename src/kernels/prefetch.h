// Software prefetch for the decode (matrix-vector) kernels, which stream every weight once per
// token. With the hardware prefetchers alone, 2-thread decode read 64-65% of the bandwidth
// `reprise bench` measures (Q8_0, Q4_K_M, Q4_0) and F16 86%: between the loads of one row the
// kernels spend too long computing to keep enough cache-line fills in flight. Asking for the
// row(s) 4 KiB ahead of the one being multiplied brought all of them to 93-105%
// (docs/performance.md, "Decode: software prefetch"); 1-16 KiB all helped, 2-4 KiB most.
#pragma once

#include <cstdint>

namespace reprise::kernels {

inline constexpr uint64_t kPrefetchBytes = 4096;

// `row` (of rows `stride` bytes apart) is about to be read: fetch the whole row that starts at
// least kPrefetchBytes later. Addresses past the matrix are harmless: prefetches never fault.
inline void prefetch_ahead(const uint8_t* row, uint64_t stride) {
  const uint8_t* ahead = row + ((kPrefetchBytes + stride - 1) / stride) * stride;
  for (uint64_t off = 0; off < stride; off += 64)
    __builtin_prefetch(ahead + off, /*rw=*/0, /*locality=*/3);
}

}  // namespace reprise::kernels
