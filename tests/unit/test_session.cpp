// Engine behaviour on the bundled default model: paths share weights, KV slots per position,
// prefill and decode agree.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/prefix_cache.h"
#include "engine/session.h"
#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

SessionOptions small() {
  SessionOptions o;
  o.n_threads = 2;
  o.n_ctx = 64;
  return o;
}

TEST(Session, RepeatedPathAllocatesOnlyKvSlots) {
  auto m = Model::load(test::default_model());
  const uint64_t mapped = m->mapped_bytes();
  Session plain(*m, LayerPath::identity(5), small());
  Session repeated(*m, parse_layer_path("repeat:1:4", 5), small());  // 3 extra positions
  EXPECT_EQ(m->mapped_bytes(), mapped);
  const uint64_t kv_slot_bytes = 2ull * 64 * m->hparams().kv_dim() * sizeof(float);
  EXPECT_EQ(repeated.state_bytes() - plain.state_bytes(), 3 * kv_slot_bytes);
  // Both visits of layer 1 read the very same mapped bytes.
  const auto& blocks = m->weights().blocks;
  EXPECT_EQ(blocks[repeated.path().layers[1]].wq.data.data(),
            blocks[repeated.path().layers[4]].wq.data.data());
}

// The forward pass's two ends as public steps, on a model with an embedding scale and a logit
// soft-cap (Gemma 2): embed() then the blocks give prefill's logits, and the output step applied
// to the stream after the last block gives them too, bit for bit.
TEST(Session, EmbedAndLogitsFromResidualAreTheForwardPassEnds) {
  auto m = Model::load(test::source_dir() / "tests/data/fixtures/gemma2-tiny-f32.gguf");
  const HParams& hp = m->hparams();
  ASSERT_NE(hp.embd_scale, 1.0f);
  ASSERT_GT(hp.final_softcap, 0.0f);
  const std::vector<int32_t> tokens = {2, 5, 9, 14, 3, 7};
  const int64_t T = static_cast<int64_t>(tokens.size());
  Session s(*m, LayerPath::identity(hp.n_layer));
  auto ref = s.prefill(tokens, /*all_logits=*/true);
  const std::vector<float> want(ref.begin(), ref.end());

  struct Last : ForwardObserver {
    int slot = 0;
    std::vector<float> x;
    void block_out(int s, int, const float* p, int64_t t, int64_t d) override {
      if (s == slot) x.assign(p, p + t * d);
    }
  } last;
  last.slot = hp.n_layer - 1;
  std::vector<float> x(T * hp.n_embd);
  s.embed(tokens, x.data());
  s.reset();
  s.set_observer(&last);
  auto from_embed = s.prefill_from_residual(0, x, /*all_logits=*/true);
  EXPECT_EQ(std::vector<float>(from_embed.begin(), from_embed.end()), want);
  std::vector<float> logits(T * hp.n_vocab);
  s.logits_from_residual(last.x, logits);
  EXPECT_EQ(logits, want);
  EXPECT_THROW(s.logits_from_residual(last.x, std::span<float>(logits).first(3)), Error);
  EXPECT_THROW(s.embed(std::vector<int32_t>{hp.n_vocab}, x.data()), Error);
}

TEST(Session, DecodeMatchesPrefill) {
  auto m = Model::load(test::default_model());
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 270};
  Session a(*m, parse_layer_path("repeat:1:3", 5), small());
  auto all = a.prefill(ids, true);
  std::vector<float> last(all.end() - m->hparams().n_vocab, all.end());
  Session b(*m, parse_layer_path("repeat:1:3", 5), small());
  b.prefill(std::span(ids).first(3));
  std::span<const float> l;
  for (size_t k = 3; k < ids.size(); ++k) l = b.decode(ids[k]);
  float diff = 0;
  for (size_t i = 0; i < last.size(); ++i) diff = std::max(diff, std::fabs(last[i] - l[i]));
  EXPECT_LE(diff, 1e-4f);
}

TEST(Session, ChunkedPrefillMatchesOneBatch) {
  auto m = Model::load(test::default_model());
  std::vector<int32_t> ids;
  for (int k = 0; k < 40; ++k) ids.push_back(1 + (k * 37) % 500);
  SessionOptions o = small();
  Session a(*m, LayerPath::identity(5), o);
  auto la = a.prefill(ids);
  std::vector<float> one(la.begin(), la.end());
  o.n_batch = 7;
  Session b(*m, LayerPath::identity(5), o);
  auto lb = b.prefill(ids);
  for (size_t i = 0; i < one.size(); ++i) ASSERT_NEAR(one[i], lb[i], 1e-4f);
}

// Keeps the whole residual stream entering each path position.
class BoundaryCapture : public ForwardObserver {
 public:
  std::vector<std::vector<float>> after;  // after[slot] = stream leaving that slot, [T, d]
  void block_out(int slot, int, const float* x, int64_t T, int64_t d) override {
    if (static_cast<int>(after.size()) <= slot) after.resize(slot + 1);
    after[slot].assign(x, x + T * d);
  }
};

TEST(Session, ResumingFromACachedBoundaryIsExact) {
  // RYS config (i, j) = (1, 3) shares its first 3 positions with the plain path.
  auto m = Model::load(test::default_model());
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 270, 293};
  Session plain(*m, LayerPath::identity(5), small());
  BoundaryCapture cap;
  plain.set_observer(&cap);
  plain.prefill(ids, true);
  Session full(*m, LayerPath::repeat(5, 1, 3), small());
  auto want = full.prefill(ids, true);
  std::vector<float> expected(want.begin(), want.end());
  Session resumed(*m, LayerPath::repeat(5, 1, 3), small());
  auto got = resumed.prefill_from_residual(3, cap.after[2], true);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expected[i]) << i;
}

TEST(Session, PrefixCacheIsBitExactAndKeepsDecodingRight) {
  auto m = Model::load(test::default_model());
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 270, 293};
  PrefixCache cache(*m, LayerPath::identity(5), small());
  for (const char* spec : {"repeat:1:4", "skip:2:4", "repeat:0:5", "0..4", "3,4"}) {
    LayerPath path = parse_layer_path(spec, 5);
    Session fresh(*m, path, small());
    auto full = fresh.prefill(ids, true);
    std::vector<float> want(full.begin(), full.end());
    Session reused(*m, path, small());
    reused.set_prefix_cache(&cache);
    auto got = reused.prefill(ids, true);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << spec << " at " << i;
    // The copied KV slots make later tokens exact too.
    auto a = fresh.decode(300);
    std::vector<float> da(a.begin(), a.end());
    auto b = reused.decode(300);
    for (size_t i = 0; i < da.size(); ++i) ASSERT_EQ(da[i], b[i]) << spec << " decode " << i;
    // A decode continues from the cache only on the base path itself (the cache then runs it,
    // once); a path that departs computes it whole unless the baseline has run it already.
    const int shared = cache.shared_positions(path);
    const int64_t decode = shared == path.size() ? 0 : path.size();
    EXPECT_EQ(reused.layer_evals(), int64_t{7} * (path.size() - shared) + decode) << spec;
  }
  EXPECT_EQ(cache.baseline_evals(), 8 * 5);  // the baseline ran once for this sequence
}

// With batch-invariant prefill, a prompt's logits do not depend on how it was split into
// prefills: a continuation of 1..3 tokens after a cached context (what `reprise eval` runs)
// gives bit for bit the rows of the whole prompt prefilled at once (what serve's echo runs).
// Without it a prefill of fewer than kGemmMinTokens tokens runs the matrix-vector kernels,
// which round differently. F32 weights (the default model) and Q4_1 (a fixture), every ISA.
TEST(Session, BatchInvariantPrefillGivesTheSameRowsHoweverSplit) {
  const std::filesystem::path files[] = {
      test::default_model(), test::source_dir() / "tests/data/fixtures/llama-tiny-q4_1.gguf"};
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 270, 293, 263, 414};
  const std::vector<std::vector<size_t>> splits = {{6, 3}, {8, 1}, {7, 2}, {2, 2, 5}, {5, 1, 1, 2}};
  const kernels::Isa active = kernels::active_isa();
  for (const auto& file : files) {
    auto m = Model::load(file);
    const size_t V = static_cast<size_t>(m->hparams().n_vocab);
    const LayerPath path = LayerPath::repeat(m->hparams().n_layer, 0, 2);
    for (kernels::Isa isa : kernels::supported_isas()) {
      kernels::set_isa(isa);
      const std::string what = file.filename().string() + " " + std::string(kernels::isa_name(isa));
      Session whole(*m, path, small());
      whole.set_batch_invariant(true);
      auto w = whole.prefill(ids, true);
      const std::vector<float> want(w.begin(), w.end());
      for (const auto& split : splits) {
        Session parts(*m, path, small());
        parts.set_batch_invariant(true);
        size_t at = 0;
        for (size_t n : split) {
          auto got = parts.prefill(std::span(ids).subspan(at, n), true);
          ASSERT_EQ(got.size(), n * V);
          for (size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], want[at * V + i]) << what << ", rows " << at << ".." << at + n;
          at += n;
        }
      }
    }
  }
  kernels::set_isa(active);
}

TEST(Session, TruncateReusesASharedPrefix) {
  auto m = Model::load(test::default_model());
  const std::vector<int32_t> prefix = {1, 403, 407, 261}, a = {378, 270}, b = {293, 263, 414};
  Session s(*m, LayerPath::identity(5), small());
  s.prefill(prefix);
  auto la = s.prefill(a);
  std::vector<float> got_a(la.begin(), la.end());
  s.truncate(4);
  auto lb = s.prefill(b);
  std::vector<float> got_b(lb.begin(), lb.end());
  for (auto [cont, got] : {std::pair{a, got_a}, std::pair{b, got_b}}) {
    Session fresh(*m, LayerPath::identity(5), small());
    std::vector<int32_t> all = prefix;
    all.insert(all.end(), cont.begin(), cont.end());
    auto want = fresh.prefill(all);
    // The continuations run the matrix-vector kernels, the fresh prompt the GEMM ones: their
    // float roundings differ by ~1e-5 on logits near 1 (1.03e-5 once attention's rounding moved).
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f);
  }
  EXPECT_THROW(s.truncate(99), Error);
}

TEST(Session, BadTokensAndFullContextAreErrors) {
  auto m = Model::load(test::default_model());
  Session s(*m, LayerPath::identity(5), small());
  std::vector<int32_t> bad = {1, 512};
  EXPECT_THROW(s.prefill(bad), Error);
  std::vector<int32_t> many(65, 1);
  try {
    s.prefill(many);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context full"), std::string::npos);
  }
}

TEST(Session, KvCacheBeyondTheMemoryLimitIsRefusedNamingCtx) {
  auto m = Model::load(test::default_model());
  const int kv_dim = m->hparams().kv_dim();
  SessionOptions o = small();
  o.max_kv_bytes = 1 << 20;
  o.n_ctx = 4096;  // 5 positions x 4096 x kv_dim x 4 bytes x 2 = 5 MiB at kv_dim 32
  ASSERT_EQ(kv_dim, 32);
  try {
    Session s(*m, LayerPath::identity(5), o);
    FAIL() << "a 5 MiB KV cache passed a 1 MiB limit";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "--ctx 4096: the KV cache would need 5 MiB");
    EXPECT_CONTAINS(e.what(), "more than the 1 MiB limit; at most --ctx 819 fits");
  }
  o.n_ctx = 819;
  EXPECT_NO_THROW(Session(*m, LayerPath::identity(5), o));
  // Switching to a longer path re-checks: 10 positions at --ctx 819 no longer fit.
  Session s(*m, LayerPath::identity(5), o);
  EXPECT_THROW(s.set_path(parse_layer_path("repeat:0:5", 5)), Error);
  // The default limit (3/4 of physical memory) stops the largest context with the longest path
  // before anything is allocated: 4096 positions x 2^20 x 32 x 4 x 2 bytes = 1 TiB.
  SessionOptions huge = small();
  huge.n_ctx = 1 << 20;
  EXPECT_THROW(Session(*m, LayerPath{std::vector<int>(4096, 0)}, huge), Error);
}

TEST(Session, EmptyOrOutOfRangePathIsRejected) {
  auto m = Model::load(test::default_model());
  EXPECT_THROW(Session(*m, LayerPath{}, small()), Error);
  EXPECT_THROW(Session(*m, LayerPath{{0, 5}}, small()), Error);
}

// Packed weights (engine/packed_weights.h) change no bit of a forward pass: sessions of a model
// that packs its weights against sessions of a second load of the same file that does not.
TEST(Session, PackedWeightsGiveTheSameLogitsBitForBit) {
  if (!pack_budget_bytes()) GTEST_SKIP() << "REPRISE_PACK=0";
  const auto file = test::source_dir() / "tests/data/fixtures/mistral-tiny-q8_0.gguf";
  auto a = Model::load(file), b = Model::load(file);
  const int n = a->hparams().n_layer;
  SessionOptions pack = small();
  pack.pack_weights = true;
  Session packed(*a, parse_layer_path(fmt::format("repeat:0:{}", n), n), pack);
  Session plain(*b, parse_layer_path(fmt::format("repeat:0:{}", n), n), small());
  ASSERT_NE(packed.packed_weights(), nullptr);
  EXPECT_FALSE(packed.packed_weights()->packed());  // lazily, at the first GEMM prefill
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 270, 5, 9, 11};
  auto same_bits = [](std::span<const float> x, std::span<const float> y) {
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
  };
  for (bool invariant : {false, true}) {
    SCOPED_TRACE(invariant ? "batch-invariant" : "plain");
    packed.reset();
    plain.reset();
    packed.set_batch_invariant(invariant);
    plain.set_batch_invariant(invariant);
    EXPECT_TRUE(same_bits(packed.prefill(ids, true), plain.prefill(ids, true)));
    EXPECT_TRUE(
        same_bits(packed.prefill({ids.data(), 2}, true), plain.prefill({ids.data(), 2}, true)));
    EXPECT_TRUE(same_bits(packed.decode(7), plain.decode(7)));
  }
  const PackedWeights& pw = *packed.packed_weights();
  ASSERT_TRUE(pw.packed());
  // Every dense matrix the active ISA has a packed form for, and nothing else.
  int want = 0;
  uint64_t want_bytes = 0;
  const Weights& w = a->weights();
  for (const BlockWeights& blk : w.blocks)
    for (const TensorView* m :
         {&blk.wq, &blk.wk, &blk.wv, &blk.wo, &blk.w_gate, &blk.w_up, &blk.w_down}) {
      const uint64_t bytes = kernels::PackedMatrix::packed_bytes(*m);
      want += bytes > 0;
      want_bytes += bytes;
      EXPECT_EQ(pw.find(*m) != nullptr, bytes > 0) << m->name;
    }
  const uint64_t head = kernels::PackedMatrix::packed_bytes(w.output);  // once, even if tied
  want += head > 0;
  want_bytes += head;
  EXPECT_EQ(pw.matrices(), want);
  EXPECT_EQ(pw.bytes(), want_bytes);
  EXPECT_EQ(pw.skipped_for_budget(), 0);
  if (kernels::active_isa() != kernels::Isa::Scalar) {
    EXPECT_GT(want, 0);
    EXPECT_NE(pw.describe().find("packed weights"), std::string::npos);
  }
  // The other load packed nothing; a second session of the first model shares its packing.
  EXPECT_FALSE(plain.packed_weights()->packed());
  Session other(*a, LayerPath::identity(n), small());
  EXPECT_EQ(other.packed_weights(), packed.packed_weights());
}

TEST(Session, PackBudgetSetting) {
  EXPECT_EQ(parse_pack_budget("", 7), 7u);
  EXPECT_EQ(parse_pack_budget("on", 7), 7u);
  EXPECT_EQ(parse_pack_budget("1", 7), 7u);
  EXPECT_EQ(parse_pack_budget("0", 7), std::nullopt);
  EXPECT_EQ(parse_pack_budget("off", 7), std::nullopt);
  EXPECT_EQ(parse_pack_budget("512", 7), uint64_t{512} << 20);
  EXPECT_THROW(parse_pack_budget("lots", 7), Error);
  EXPECT_THROW(parse_pack_budget("-5", 7), Error);
}

}  // namespace
}  // namespace reprise
