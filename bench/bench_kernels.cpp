// Kernel throughput per ISA and weight type.
//
//   build/bench/bench_kernels --benchmark_filter=Matvec   # decode: bytes of weights per second
//   build/bench/bench_kernels --benchmark_filter=Gemm     # prefill: FLOP/s of one thread
//
// Each benchmark forces its ISA (skipped when the CPU lacks it) and runs on one thread; end-to-end
// figures with threads come from `reprise bench`.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/isa_kernels.h"
#include "kernels/quant.h"

namespace reprise::kernels {
namespace {

const IsaKernels* table(Isa isa) {
  if (!isa_supported(isa)) return nullptr;
  switch (isa) {
    case Isa::Scalar:
      return scalar_kernels();
    case Isa::Avx2:
      return avx2_kernels();
    case Isa::AvxVnni:
      return avxvnni_kernels();
    case Isa::Avx512:
      return avx512_kernels();
    default:
      return nullptr;
  }
}

struct Matrix {
  std::vector<std::byte> data;
  uint64_t stride;
};

Matrix random_matrix(TensorType type, int64_t rows, int64_t cols) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 0.05f);
  Matrix m{{}, row_bytes(type, cols)};
  m.data.resize(m.stride * rows);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& x : row) x = nd(rng);
    quantize_row(type, row.data(), m.data.data() + r * m.stride, cols);
  }
  return m;
}

// Decode: y = W x, one thread, for a [rows, 1024] matrix. "dram": 64 MiB of weights, twice the
// L3 of the machines we measure on, so the kernel streams from memory as in a real model; "l2":
// 128 rows, which stay in L2 and show the kernel's compute ceiling, the pace it must beat to keep
// up with memory.
void BM_Matvec(benchmark::State& state, Isa isa, TensorType type, bool from_dram) {
  const IsaKernels* k = table(isa);
  if (!k) {
    state.SkipWithError("ISA not supported here");
    return;
  }
  const int64_t cols = 1024;
  const int64_t rows =
      from_dram ? (int64_t{64} << 20) / static_cast<int64_t>(row_bytes(type, cols)) : 128;
  Matrix w = random_matrix(type, rows, cols);
  std::vector<float> x(cols, 0.5f), y(rows);
  std::vector<std::byte> act(cols * sizeof(float) + 4096);
  const ActFormat f = k->matvec_act(static_cast<uint32_t>(type));
  for (auto _ : state) {
    k->quantize_act(f, x.data(), cols, act.data());
    k->matvec(static_cast<uint32_t>(type), w.data.data(), w.stride, rows, cols, act.data(),
              y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.data.size()));
}

// Prefill: Y = X W^T over T tokens, one thread; reports FLOP/s.
void BM_Gemm(benchmark::State& state, Isa isa, TensorType type) {
  const IsaKernels* k = table(isa);
  if (!k) {
    state.SkipWithError("ISA not supported here");
    return;
  }
  const int64_t cols = 1024, rows = 512, T = state.range(0);
  Matrix w = random_matrix(type, rows, cols);
  std::vector<float> x(T * cols, 0.25f), y(T * rows);
  std::vector<float> scratch(gemm_scratch_floats(cols));
  const auto id = static_cast<uint32_t>(type);
  // The integer kernels where the ISA has them, as ops::matmul picks them (quantizing included).
  const int64_t ab = k->gemm_rounded ? k->gemm_act_row_bytes(id, cols) : 0;
  std::vector<std::byte> act(ab * T);
  for (auto _ : state) {
    if (ab > 0) {
      for (int64_t t = 0; t < T; ++t) k->gemm_round_act(id, &x[t * cols], cols, &act[t * ab]);
      k->gemm_rounded(id, w.data.data(), w.stride, rows, cols, act.data(), T, y.data(), rows,
                      scratch.data());
    } else {
      k->gemm(id, w.data.data(), w.stride, rows, cols, x.data(), T, y.data(), rows, scratch.data());
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["FLOPS"] =
      benchmark::Counter(2.0 * rows * cols * T * state.iterations(), benchmark::Counter::kIsRate);
}

// Attention of one query head over n cached keys (scores, softmax, values), head dim 64.
void BM_Attention(benchmark::State& state, Isa isa, KvElem elem) {
  const IsaKernels* k = table(isa);
  if (!k) {
    state.SkipWithError("ISA not supported here");
    return;
  }
  const int64_t n = state.range(0), hd = 64, stride = 128;
  std::vector<float> kf(n * stride, 0.1f), q(hd, 0.2f), s(n), out(hd);
  std::vector<uint16_t> kh(n * stride, fp32_to_fp16(0.1f));
  const void* kv = elem == KvElem::F16 ? static_cast<const void*>(kh.data()) : kf.data();
  for (auto _ : state) {
    k->attn_scores(q.data(), kv, elem, stride, n, hd, 0.125f, s.data());
    k->softmax_exp(s.data(), n);
    k->attn_values(s.data(), kv, elem, stride, n, hd, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["FLOPS"] =
      benchmark::Counter(4.0 * n * hd * state.iterations(), benchmark::Counter::kIsRate);
}

const TensorType kTypes[] = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,   TensorType::Q4_0,
    TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::IQ4_NL, TensorType::Q2_K,
    TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,   TensorType::IQ4_XS};

int register_all() {
  for (Isa isa : kAllIsas) {
    const std::string in(isa_name(isa));
    for (TensorType t : kTypes) {
      const std::string tn(info(t).name);
      for (bool dram : {true, false})
        benchmark::RegisterBenchmark(("Matvec/" + in + "/" + tn + (dram ? "/dram" : "/l2")).c_str(),
                                     BM_Matvec, isa, t, dram)
            ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("Gemm/" + in + "/" + tn).c_str(), BM_Gemm, isa, t)
          ->Arg(64)
          ->Arg(512)
          ->Unit(benchmark::kMillisecond);
    }
    for (KvElem e : {KvElem::F32, KvElem::F16})
      benchmark::RegisterBenchmark(
          ("Attention/" + in + (e == KvElem::F16 ? "/f16" : "/f32")).c_str(), BM_Attention, isa, e)
          ->Arg(512)
          ->Arg(4096);
  }
  return 0;
}

const int kRegistered = register_all();

}  // namespace
}  // namespace reprise::kernels

BENCHMARK_MAIN();
