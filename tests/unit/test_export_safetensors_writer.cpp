// safetensors writer: files read back with reprise's reader and follow the format's layout rules
// (8-byte aligned data, contiguous offsets, __metadata__), shards split at the limit with a
// correct index, and a failure in a later shard removes the shards already finished.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstring>
#include <fstream>

#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "support/temp_dir_test.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

class SafetensorsWriterTest : public test::TempDirTest {};

using test::bytes_of;
using test::slurp;

TEST_F(SafetensorsWriterTest, WritesWhatTheReaderReads) {
  SafetensorsWriter w;
  w.set_metadata("source", "test");
  w.add_tensor("b.weight", TensorType::F32, {2, 3}, bytes_of({1, 2, 3, 4, 5, 6}));
  const std::vector<std::byte> half(10, std::byte{0x3c});
  w.add_tensor("a.weight", TensorType::F16, {5}, std::span<const std::byte>(half));
  w.add_tensor("c", TensorType::BF16, {1, 1, 3}, [](std::span<std::byte> out) {
    for (size_t k = 0; k < out.size(); ++k) out[k] = std::byte(k);
  });
  EXPECT_EQ(w.data_bytes(), 24u + 10 + 6);
  w.write(dir_ / "m.safetensors");
  EXPECT_EQ(files(), std::vector<std::string>{"m.safetensors"});

  const std::string raw = slurp(dir_ / "m.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  auto header = nlohmann::ordered_json::parse(raw.substr(8, n));
  EXPECT_EQ(header["__metadata__"], (nlohmann::json{{"format", "pt"}, {"source", "test"}}));
  // Header in file order, offsets contiguous from 0 to the end of the file.
  std::vector<std::string> names;
  uint64_t expect_begin = 0;
  for (auto& [k, v] : header.items()) {
    if (k == "__metadata__") continue;
    names.push_back(k);
    EXPECT_EQ(v["data_offsets"][0].get<uint64_t>(), expect_begin) << k;
    expect_begin = v["data_offsets"][1].get<uint64_t>();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"b.weight", "a.weight", "c"}));
  EXPECT_EQ(8 + n + expect_begin, raw.size());

  auto st = SafetensorsModel::open(dir_ / "m.safetensors");
  const TensorView* b = st->tensor("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  float v[6];
  std::memcpy(v, b->data.data(), 24);
  EXPECT_EQ(v[5], 6.0f);
  EXPECT_EQ(st->tensor("a.weight")->type, TensorType::F16);
  EXPECT_EQ(st->tensor("c")->data[5], std::byte{5});
}

TEST_F(SafetensorsWriterTest, RefusesWhatSafetensorsCannotHold) {
  SafetensorsWriter w;
  try {
    w.add_tensor("q", TensorType::Q8_0, {1, 32}, std::vector<std::byte>(34));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "safetensors has no Q8_0 type (use F32, F16 or BF16)");
  }
  EXPECT_THROW(w.add_tensor("x", TensorType::F32, {2}, bytes_of({1})), Error);
  EXPECT_THROW(w.add_tensor("__metadata__", TensorType::F32, {1}, bytes_of({1})), Error);
  w.add_tensor("x", TensorType::F32, {1}, bytes_of({1}));
  EXPECT_THROW(w.add_tensor("x", TensorType::F32, {1}, bytes_of({1})), Error);
  EXPECT_EQ(w.tensor_count(), 1u);
}

TEST_F(SafetensorsWriterTest, ShardsWithAnIndex) {
  SafetensorsWriter w;
  for (int k = 0; k < 5; ++k)
    w.add_tensor("t" + std::to_string(k), TensorType::F32, {100},
                 bytes_of(std::vector<float>(100, static_cast<float>(k))));
  // 400-byte tensors, 900-byte limit: two per shard.
  const auto names = w.write_sharded(dir_, 900);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                       "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  auto index = nlohmann::json::parse(slurp(dir_ / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 2000);
  EXPECT_EQ(index["weight_map"]["t2"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["t4"], "model-00003-of-00003.safetensors");
  auto st = SafetensorsModel::open(dir_);
  ASSERT_NE(st->tensor("t4"), nullptr);
  float v;
  std::memcpy(&v, st->tensor("t4")->data.data(), 4);
  EXPECT_EQ(v, 4.0f);

  // Under the limit: one model.safetensors, no index.
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  EXPECT_EQ(w.write_sharded(dir_, 1 << 20), std::vector<std::string>{"model.safetensors"});
  // An existing shard is not replaced without overwrite, and is left as it was.
  try {
    w.write_sharded(dir_, 1 << 20);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir_ / "model.safetensors").string() +
                                         ": already exists (use --force to overwrite)");
  }
  EXPECT_EQ(files(), std::vector<std::string>{"model.safetensors"});
}

// Shard 1 fits under the file-size limit, shard 2 does not: the call fails and shard 1, already
// renamed into place, is removed again.
TEST_F(SafetensorsWriterTest, FailingLaterShardRemovesEarlierOnes) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg = "no error";
    try {
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{50000, 50000};
      if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) throw Error("setrlimit failed");
      SafetensorsWriter w;
      w.add_tensor("small", TensorType::F32, {1000}, std::vector<std::byte>(4000));
      w.add_tensor("large", TensorType::F32, {100000}, std::vector<std::byte>(400000));
      w.write_sharded(dir_, 10000);
    } catch (const std::exception& e) {
      msg = e.what();
    }
    [[maybe_unused]] auto n = ::write(fds[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, size_t(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(msg.rfind((dir_ / "model-00002-of-00002.safetensors").string() + ": write failed", 0),
            0u)
      << msg;
  EXPECT_TRUE(files().empty());
}

}  // namespace
}  // namespace reprise
