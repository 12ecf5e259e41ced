// Engine behaviour on the bundled default model: paths share weights, KV slots per position,
// prefill and decode agree.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/session.h"
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

TEST(Session, EmptyOrOutOfRangePathIsRejected) {
  auto m = Model::load(test::default_model());
  EXPECT_THROW(Session(*m, LayerPath{}, small()), Error);
  EXPECT_THROW(Session(*m, LayerPath{{0, 5}}, small()), Error);
}

}  // namespace
}  // namespace reprise
