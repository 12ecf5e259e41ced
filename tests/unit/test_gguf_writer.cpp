// GGUF writer: what it writes reads back exactly (metadata types, tensor bytes, ggml dim order,
// alignment), it reproduces a real file byte for byte, and every failure (existing output,
// missing directory, full disk, a failing producer) leaves no file behind.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstring>
#include <fstream>

#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "support/temp_dir_test.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

class GgufWriterTest : public test::TempDirTest {};

using test::bytes_of;
using test::slurp;

GgufValue int_array(GgufType elem, std::vector<int64_t> v) {
  GgufValue a;
  a.type = GgufType::ARRAY;
  a.elem = elem;
  a.ints = std::move(v);
  return a;
}

TEST_F(GgufWriterTest, EveryMetadataTypeAndTensorReadsBack) {
  GgufWriter w;
  w.set("s", GgufValue::of_string("hello\nworld"));
  w.set("u32", GgufValue::of_u32(7));
  w.set("i32", GgufValue::of_i32(-70000));
  w.set("f32", GgufValue::of_f32(0.1f));
  w.set("b", GgufValue::of_bool(true));
  for (auto [key, type, value] : {std::tuple{"u8", GgufType::U8, int64_t{200}},
                                  {"i8", GgufType::I8, int64_t{-3}},
                                  {"u16", GgufType::U16, int64_t{65535}},
                                  {"i16", GgufType::I16, int64_t{-300}},
                                  {"u64", GgufType::U64, int64_t{1} << 40},
                                  {"i64", GgufType::I64, int64_t{-5}}}) {
    GgufValue v;
    v.type = type;
    v.i = value;
    w.set(key, v);
  }
  GgufValue f64;
  f64.type = GgufType::F64;
  f64.f = 0.1;
  w.set("f64", f64);
  w.set("ints", int_array(GgufType::I32, {1, -2, 3}));
  w.set("bools", int_array(GgufType::BOOL, {1, 0}));
  GgufValue strs;
  strs.type = GgufType::ARRAY;
  strs.elem = GgufType::STRING;
  strs.strings = {"a", "", "bc"};
  w.set("strs", strs);
  GgufValue floats;
  floats.type = GgufType::ARRAY;
  floats.elem = GgufType::F32;
  floats.floats = {1.5, -1.0};
  GgufValue nested;
  nested.type = GgufType::ARRAY;
  nested.elem = GgufType::ARRAY;
  nested.arrays = {floats, floats};
  w.set("nested", nested);
  w.set("u32", GgufValue::of_u32(8));  // replaces in place

  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  w.add_tensor("a", TensorType::F32, {2, 3}, bytes_of(a));  // owned
  const std::vector<std::byte> q8(2 * 34, std::byte{0x11});
  w.add_tensor("q", TensorType::Q8_0, {2, 32}, std::span<const std::byte>(q8));  // view
  w.add_tensor("c", TensorType::F16, {2, 1, 5}, [](std::span<std::byte> out) {
    for (size_t k = 0; k < out.size(); ++k) out[k] = static_cast<std::byte>(k);
  });
  w.add_tensor("v", TensorType::F32, {1}, bytes_of({42}));
  w.write(dir_ / "m.gguf");

  auto g = GgufFile::open(dir_ / "m.gguf");
  EXPECT_EQ(g->version(), 3u);
  const auto& md = g->metadata();
  ASSERT_EQ(md.size(), 16u);
  EXPECT_EQ(md[0].first, "s");
  EXPECT_EQ(md[1].first, "u32");  // kept its position
  EXPECT_EQ(*g->get_string("s"), "hello\nworld");
  EXPECT_EQ(g->find("u32")->type, GgufType::U32);
  EXPECT_EQ(*g->get_int("u32"), 8);
  EXPECT_EQ(*g->get_int("i32"), -70000);
  EXPECT_EQ(*g->get_float("f32"), static_cast<double>(0.1f));
  EXPECT_EQ(*g->get_bool("b"), true);
  EXPECT_EQ(*g->get_int("u8"), 200);
  EXPECT_EQ(*g->get_int("i8"), -3);
  EXPECT_EQ(*g->get_int("u16"), 65535);
  EXPECT_EQ(*g->get_int("i16"), -300);
  EXPECT_EQ(*g->get_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(g->find("u64")->type, GgufType::U64);
  EXPECT_EQ(*g->get_int("i64"), -5);
  EXPECT_EQ(*g->get_float("f64"), 0.1);
  EXPECT_EQ(g->find("ints")->ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(g->find("ints")->elem, GgufType::I32);
  EXPECT_EQ(g->find("bools")->ints, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(g->find("strs")->strings, (std::vector<std::string>{"a", "", "bc"}));
  ASSERT_EQ(g->find("nested")->arrays.size(), 2u);
  EXPECT_EQ(g->find("nested")->arrays[1].floats, (std::vector<double>{1.5, -1.0}));

  ASSERT_EQ(g->tensor_infos().size(), 4u);
  // ggml order: ne[0] is the row (contiguous) dimension.
  EXPECT_EQ(g->tensor_infos()[0].ne, (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(g->tensor_infos()[2].ne, (std::vector<uint64_t>{5, 1, 2}));
  for (const auto& ti : g->tensor_infos()) EXPECT_EQ(ti.offset % 32, 0u) << ti.name;
  EXPECT_EQ(g->data_offset() % 32, 0u);
  const TensorView* ta = g->tensor("a");
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(ta->data.data(), a.data(), 24), 0);
  const TensorView* tq = g->tensor("q");
  EXPECT_EQ(tq->type, TensorType::Q8_0);
  EXPECT_TRUE(std::equal(tq->data.begin(), tq->data.end(), q8.begin(), q8.end()));
  const TensorView* tc = g->tensor("c");
  ASSERT_EQ(tc->data.size(), 20u);
  EXPECT_EQ(tc->data[19], std::byte{19});
  EXPECT_EQ(g->tensor("v")->shape, (std::vector<int64_t>{1}));
  // The data section ends padded to the alignment.
  EXPECT_EQ((g->file_size() - g->data_offset()) % 32, 0u);
  EXPECT_EQ(files(), (std::vector<std::string>{"m.gguf"}));
}

TEST_F(GgufWriterTest, AlignmentKeyFollowsTheLayout) {
  GgufWriter w(64);
  w.set("general.alignment", GgufValue::of_u32(16));  // a stale copied value is corrected
  w.add_tensor("x", TensorType::F32, {3}, bytes_of({1, 2, 3}));
  w.add_tensor("y", TensorType::F32, {3}, bytes_of({4, 5, 6}));
  w.write(dir_ / "a.gguf");
  auto g = GgufFile::open(dir_ / "a.gguf");
  EXPECT_EQ(g->alignment(), 64u);
  EXPECT_EQ(g->data_offset() % 64, 0u);
  EXPECT_EQ(g->tensor_infos()[1].offset, 64u);

  GgufWriter plain(128);  // no key given: the writer adds it
  plain.add_tensor("x", TensorType::F32, {1}, bytes_of({1}));
  plain.write(dir_ / "b.gguf");
  EXPECT_EQ(*GgufFile::open(dir_ / "b.gguf")->get_int("general.alignment"), 128);
  EXPECT_THROW(GgufWriter(48), Error);
}

// Copying a whole file through the writer reproduces it byte for byte: same header encoding,
// tensor order, offsets and padding as the writer that made stories260K.gguf.
TEST_F(GgufWriterTest, RewritesTheDefaultModelByteForByte) {
  auto src = GgufFile::open(test::default_model());
  GgufWriter w(static_cast<uint32_t>(src->alignment()));
  w.copy_metadata(*src);
  for (const auto& t : src->tensors()) w.add_tensor(t.name, t.type, t.shape, t.data);
  w.write(dir_ / "copy.gguf");
  EXPECT_TRUE(slurp(dir_ / "copy.gguf") == slurp(test::default_model()));
}

TEST_F(GgufWriterTest, AliasesShareData) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6, 7, 8};
  GgufWriter w;
  w.add_tensor("a", TensorType::F32, {2, 4}, bytes_of(a));
  w.add_tensor("b", TensorType::F32, {8}, bytes_of(a));
  w.add_alias("a2", "a");
  w.add_alias("a3", "a2");  // alias of an alias resolves to the owner
  EXPECT_EQ(w.data_bytes(), 64u);
  w.write(dir_ / "alias.gguf");
  auto g = GgufFile::open(dir_ / "alias.gguf");
  ASSERT_EQ(g->tensor_infos().size(), 4u);
  EXPECT_EQ(g->tensor_infos()[2].offset, g->tensor_infos()[0].offset);
  EXPECT_EQ(g->tensor_infos()[3].offset, g->tensor_infos()[0].offset);
  EXPECT_EQ(g->tensor("a3")->shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(g->file_size() - g->data_offset(), 64u);
  EXPECT_THROW(w.add_alias("z", "missing"), Error);
}

TEST_F(GgufWriterTest, BadTensorsAreRefusedWithTheirName) {
  GgufWriter w;
  try {
    w.add_tensor("t", TensorType::F32, {2, 3}, bytes_of({1, 2}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "GGUF tensor t: 8 bytes given, shape [2, 3] of F32 needs 24");
  }
  EXPECT_EQ(w.tensor_count(), 0u);
  try {
    w.add_tensor("q", TensorType::Q4_K, {1, 64}, std::vector<std::byte>(36));
    FAIL();
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "rows of 64 elements are not a whole number of Q4_K blocks");
  }
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), TensorType::F32, {1}, bytes_of({1})), Error);
  EXPECT_THROW(w.add_tensor("z", TensorType::F32, {1, 1, 1, 1, 1}, bytes_of({1})), Error);
  w.add_tensor("ok", TensorType::F32, {1}, bytes_of({1}));
  EXPECT_THROW(w.add_tensor("ok", TensorType::F32, {1}, bytes_of({1})), Error);
  GgufValue bad;
  bad.type = GgufType::ARRAY;
  bad.elem = GgufType::STRING;
  bad.ints = {1};
  EXPECT_THROW(w.set("k", bad), Error);
}

TEST_F(GgufWriterTest, ExistingOutputNeedsOverwrite) {
  const fs::path p = dir_ / "out.gguf";
  std::ofstream(p) << "precious";
  GgufWriter w;
  w.add_tensor("x", TensorType::F32, {1}, bytes_of({1}));
  try {
    w.write(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), p.string() + ": already exists (use --force to overwrite)");
  }
  EXPECT_EQ(slurp(p), "precious");
  EXPECT_EQ(files(), (std::vector<std::string>{"out.gguf"}));
  w.write(p, /*overwrite=*/true);
  EXPECT_EQ(GgufFile::open(p)->tensor_infos().size(), 1u);
  EXPECT_EQ(files(), (std::vector<std::string>{"out.gguf"}));
}

TEST_F(GgufWriterTest, MissingDirectoryIsNamed) {
  GgufWriter w;
  const fs::path p = dir_ / "no-such-dir" / "out.gguf";
  try {
    w.write(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), p.string() + ": cannot create a file in " +
                                         (dir_ / "no-such-dir").string() +
                                         ": No such file or directory");
  }
  std::ofstream(dir_ / "plain-file") << "x";
  EXPECT_THROW(w.write(dir_ / "plain-file" / "out.gguf"), Error);
  EXPECT_EQ(files(), (std::vector<std::string>{"plain-file"}));
}

TEST_F(GgufWriterTest, FailingProducerLeavesNothing) {
  GgufWriter w;
  w.add_tensor("x", TensorType::F32, {1},
               [](std::span<std::byte>) { throw Error("conversion failed"); });
  EXPECT_THROW(w.write(dir_ / "out.gguf"), Error);
  EXPECT_TRUE(files().empty());
}

// A full disk, simulated portably: a child process lowers its file-size limit (RLIMIT_FSIZE)
// and ignores SIGXFSZ, so writes past the limit fail with EFBIG, as they would with ENOSPC.
TEST_F(GgufWriterTest, FullDiskLeavesNothing) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const fs::path out = dir_ / "big.gguf";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg = "no error";
    try {
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{100000, 100000};
      if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) throw Error("setrlimit failed");
      GgufWriter w;
      w.set("general.name", GgufValue::of_string("big"));
      // Larger than the 4 MiB write buffer, so both the buffered and the direct path run.
      std::vector<std::byte> data(size_t{5} << 20, std::byte{1});
      w.add_tensor("small", TensorType::F32, {1000}, std::vector<std::byte>(4000));
      w.add_tensor("big", TensorType::F32, {int64_t{5} << 18}, std::span<const std::byte>(data));
      w.write(out);
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
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(msg.rfind(out.string() + ": write failed after ", 0), 0u) << msg;
  EXPECT_CONTAINS(msg, "File too large");
  EXPECT_TRUE(files().empty());
}

}  // namespace
}  // namespace reprise
