#include "kernels/packed.h"

#include <cstdlib>
#include <new>
#include <vector>

#include "kernels/isa_kernels.h"

namespace reprise::kernels {

namespace {

// One panel's bytes and height under the active ISA, or 0 bytes when w has no packed form.
int64_t panel_layout(const TensorView& w, int64_t* panel_rows) {
  const IsaKernels& k = active_kernels();
  if (!k.gemm_panel_bytes || !k.gemm_pack_panels || !k.gemm_packed || !gemm_int8_enabled())
    return 0;
  if (w.data.empty() || w.shape.size() != 2 || w.rows() == 0) return 0;
  // The packed kernel reads activations in gemm_rounded's encoding: only where it takes the type.
  const auto type = static_cast<uint32_t>(w.type);
  if (!k.gemm_act_row_bytes || k.gemm_act_row_bytes(type, w.cols()) == 0) return 0;
  return k.gemm_panel_bytes(type, w.cols(), panel_rows);
}

}  // namespace

void PackedMatrix::Free::operator()(std::byte* p) const {
  std::free(p);
}

uint64_t PackedMatrix::packed_bytes(const TensorView& w) {
  int64_t panel_rows = 0;
  const int64_t pb = panel_layout(w, &panel_rows);
  if (pb == 0) return 0;
  const int64_t n_panels = (w.rows() + panel_rows - 1) / panel_rows;
  return static_cast<uint64_t>(n_panels * pb);
}

PackedMatrix PackedMatrix::pack(const TensorView& w, ThreadPool& pool) {
  PackedMatrix m;
  int64_t panel_rows = 0;
  const int64_t pb = panel_layout(w, &panel_rows);
  if (pb == 0) return m;
  m.isa_ = active_isa();
  m.source_ = w.data.data();
  m.type_ = w.type;
  m.rows_ = w.rows();
  m.cols_ = w.cols();
  m.panel_rows_ = panel_rows;
  m.n_panels_ = (m.rows_ + panel_rows - 1) / panel_rows;
  m.bytes_ = static_cast<uint64_t>(m.n_panels_ * pb);
  // pb is a multiple of 64, so bytes_ is a valid aligned_alloc size.
  auto* p = static_cast<std::byte*>(std::aligned_alloc(64, m.bytes_));
  if (!p) throw std::bad_alloc();
  m.data_.reset(p);
  const IsaKernels& k = active_kernels();
  const auto type = static_cast<uint32_t>(w.type);
  const int64_t cols = m.cols_, rows = m.rows_;
  const uint64_t stride = w.row_stride();
  pool.parallel_for(m.n_panels_, [&](int64_t p0, int64_t p1) {
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(gemm_scratch_floats(cols)));
    k.gemm_pack_panels(type, w.data.data(), stride, rows, cols, p0, p1, p, scratch.data());
  });
  return m;
}

bool PackedMatrix::usable_for(const TensorView& w) const {
  return data_ && source_ == w.data.data() && type_ == w.type && rows_ == w.rows() &&
         cols_ == w.cols() && isa_ == active_isa() && gemm_int8_enabled();
}

}  // namespace reprise::kernels
