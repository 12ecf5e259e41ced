#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "scan/store.h"
#include "support/test_support.h"
#include "util/error.h"
#include "util/sha256.h"

namespace reprise::scan {
namespace {

std::filesystem::path temp_store(const std::string& name) {
  auto dir = test::scratch("store");
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  std::filesystem::remove(p);
  return p;
}

TEST(ScanStore, SavesAndResumes) {
  auto p = temp_store("a.db");
  {
    Store s(p);
    s.bind_identity({{"model_sha256", "abc"}, {"tasks", "t1"}});
    EXPECT_FALSE(s.is_done("repeat:1:2", "search"));
    s.save_config({"repeat:1:2", "0..1,1..3", "search", 10, 20, 0.5},
                  {{"t1", "0", "acc", 1.0}, {"t1", "1", "acc", 0.0}});
  }
  Store s(p);
  s.bind_identity({{"model_sha256", "abc"}, {"tasks", "t1"}});
  EXPECT_TRUE(s.is_done("repeat:1:2", "search"));
  EXPECT_FALSE(s.is_done("repeat:1:2", "validate"));
  auto scores = s.scores("repeat:1:2", "search");
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_EQ(scores[0].item, "0");
  EXPECT_EQ(scores[0].value, 1.0);
  auto configs = s.configs();
  ASSERT_EQ(configs.size(), 1u);
  EXPECT_EQ(configs[0].layer_evals, 10);
  EXPECT_EQ(configs[0].layer_evals_full, 20);
}

TEST(ScanStore, RefusesAnotherModel) {
  auto p = temp_store("b.db");
  Store(p).bind_identity({{"model_sha256", "abc"}});
  try {
    Store(p).bind_identity({{"model_sha256", "def"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("this store was made with model_sha256 = 'abc', not 'def'"),
        std::string::npos)
        << e.what();
  }
}

TEST(ScanStore, UnwritablePathIsAClearError) {
  try {
    Store s("/nonexistent-dir/x/scan.db");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x/scan.db: cannot open the scan store"),
              std::string::npos)
        << e.what();
  }
}

TEST(ScanStore, NotADatabaseIsRefused) {
  auto p = temp_store("c.db");
  {
    FILE* f = fopen(p.c_str(), "w");
    fputs("this is not sqlite, just text that is long enough to have a header..........", f);
    fclose(f);
  }
  EXPECT_THROW(Store s(p), Error);
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// A file is read in 1 MiB chunks and fed in pieces: the digest must not depend on where they
// split (expected value: coreutils' sha256sum of the bundled model).
TEST(Sha256, FilesAndPiecesHashAsAWhole) {
  EXPECT_EQ(sha256_file(test::default_model()),
            "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
  Sha256 pieces;
  const std::string text(3000, 'x');
  for (size_t at = 0; at < text.size(); at += 7)
    pieces.update(std::string_view(text).substr(at, 7));
  EXPECT_EQ(pieces.hex_digest(), sha256_hex(text));
  try {
    sha256_file("/nonexistent/model.gguf");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/model.gguf: cannot read");
  }
}

}  // namespace
}  // namespace reprise::scan
