// A weight matrix unpacked once into the integer prefill's panels, for matrices that many prefills
// multiply (a scan or an eval runs thousands of ~64-token prefills over the same weights; the
// integer prefill otherwise unpacks every weight again in every matmul call).
//
// The packed form is exactly the panels the active ISA's gemm_rounded builds per call (8-bit
// quants four columns to a lane, a float scale per row and block, a float offset for Q4_K/Q5_K:
// src/kernels/README.md, "Packed weights"), so kernels::matmul gives the same bits with or without
// it. Size: per weight 1 byte of quant plus 4 / bk bytes of scale (bk = 32, Q6_K 16) and as much
// again of offset for Q4_K and Q5_K: 1.125 B (Q8_0, Q4_0), 1.25 B (Q4_K, Q5_K, Q6_K), rows
// rounded up to the panel height.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "format/tensor_view.h"
#include "kernels/dispatch.h"
#include "util/thread_pool.h"

namespace reprise::kernels {

class PackedMatrix {
 public:
  PackedMatrix() = default;  // empty: holds nothing, matmul ignores it

  // Packs w for the active ISA's integer prefill, the panels spread over the pool's threads.
  // Empty when that ISA has no packed form for w's type (float and the other quantized types,
  // the scalar ISA) or the integer prefill is off (REPRISE_PREFILL=f32).
  static PackedMatrix pack(const TensorView& w, ThreadPool& pool);
  // The bytes pack(w) would allocate now (0: it would be empty).
  static uint64_t packed_bytes(const TensorView& w);

  bool empty() const { return !data_; }
  // Bytes held (the panels; the object itself is a few dozen more).
  uint64_t bytes() const { return bytes_; }
  // The ISA whose kernel table (isa_kernels.h) packed it: its panel height and layout are that
  // table's, so matmul uses it only while that ISA is active (after set_isa() to another one,
  // the unpacked path runs).
  Isa isa() const { return isa_; }

  // Whether matmul may use this for w now: packed from w's bytes (the same address, type and
  // shape), under the active ISA, with the integer prefill on. The matrix is matched by the
  // address of its bytes and never reads them again after packing; still, it must not outlive
  // the TensorView's mapping (another mapping at the same address would pass for the same
  // matrix). The engine's owner (engine/packed_weights.h) lives no longer than its Model.
  bool usable_for(const TensorView& w) const;

  // For kernels::matmul: the first panel, rows per panel, panel count.
  const std::byte* panels() const { return data_.get(); }
  int64_t panel_rows() const { return panel_rows_; }
  int64_t n_panels() const { return n_panels_; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte[], Free> data_;  // 64-byte aligned
  uint64_t bytes_ = 0;
  Isa isa_ = Isa::Scalar;
  const std::byte* source_ = nullptr;  // the TensorView's bytes it was packed from (not read)
  TensorType type_ = TensorType::F32;
  int64_t rows_ = 0, cols_ = 0, panel_rows_ = 0, n_panels_ = 0;
};

}  // namespace reprise::kernels
