#include <gtest/gtest.h>

#include "engine/layer_path.h"
#include "util/error.h"

namespace reprise {
namespace {

std::vector<int> L(std::initializer_list<int> v) {
  return v;
}

TEST(LayerPath, ExplicitListsAndRanges) {
  EXPECT_EQ(parse_layer_path("0,1,2,2,2,3", 5).layers, L({0, 1, 2, 2, 2, 3}));
  EXPECT_EQ(parse_layer_path("0..3,1..4", 5).layers, L({0, 1, 2, 3, 1, 2, 3, 4}));
  EXPECT_EQ(parse_layer_path(" 0 .. 1 , 4 ", 5).layers, L({0, 1, 4}));
  EXPECT_EQ(parse_layer_path("3..3", 5).layers, L({3}));
}

TEST(LayerPath, DefaultIsIdentity) {
  EXPECT_EQ(parse_layer_path("", 4).layers, L({0, 1, 2, 3}));
  EXPECT_EQ(parse_layer_path("all", 3).layers, L({0, 1, 2}));
}

TEST(LayerPath, RepeatShorthandIsRys) {
  // RYS (i, j): layers 0..j-1 then i..N-1.
  EXPECT_EQ(parse_layer_path("repeat:1:4", 5).layers, L({0, 1, 2, 3, 1, 2, 3, 4}));
  EXPECT_EQ(parse_layer_path("repeat:2:3:3", 5).layers, L({0, 1, 2, 2, 2, 3, 4}));
  EXPECT_EQ(parse_layer_path("repeat:0:5", 5).layers, L({0, 1, 2, 3, 4, 0, 1, 2, 3, 4}));
  EXPECT_EQ(parse_layer_path("repeat:1:3:1", 4).layers, L({0, 1, 2, 3}));
}

TEST(LayerPath, SkipShorthand) {
  EXPECT_EQ(parse_layer_path("skip:2:3", 5).layers, L({0, 1, 3, 4}));
  EXPECT_EQ(parse_layer_path("skip:0:4", 5).layers, L({4}));
  // The empty path has its own name, so its canonical text reads back as itself, not as "plain".
  const LayerPath none = parse_layer_path("skip:0:5", 5);
  EXPECT_TRUE(none.layers.empty());
  EXPECT_EQ(none.canonical(), "none");
  EXPECT_EQ(parse_layer_path(none.canonical(), 5), none);
}

TEST(LayerPath, CanonicalFormCollapsesRuns) {
  EXPECT_EQ(parse_layer_path("repeat:1:4", 5).canonical(), "0..3,1..4");
  EXPECT_EQ(parse_layer_path("0,1,2,2,2,3", 5).canonical(), "0..2,2,2..3");
  EXPECT_EQ(parse_layer_path("4,3", 5).canonical(), "4,3");
  // The canonical form parses back to the same path.
  auto p = parse_layer_path("repeat:2:4:3", 6);
  EXPECT_EQ(parse_layer_path(p.canonical(), 6), p);
}

void expect_error(const std::string& spec, int n, const std::string& fragment) {
  try {
    parse_layer_path(spec, n);
    FAIL() << "no error for '" << spec << "'";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_NE(msg.find("the model has " + std::to_string(n) + " layers"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(LayerPath, ErrorsNameTheTokenAndLayerCount) {
  expect_error("0,1,7", 5, "layer out of range '7'");
  expect_error("0,,1", 5, "empty entry");
  expect_error("0,x", 5, "not a layer number 'x'");
  expect_error("3..1", 5, "descending range '3..1'");
  expect_error("0..", 5, "malformed range '0..'");
  expect_error("-1", 5, "layer out of range '-1'");
  expect_error("repeat:3:3", 5, "end must satisfy 3 < J <= 5");
  expect_error("repeat:4:2", 5, "end must satisfy");
  expect_error("repeat:0:6", 5, "end must satisfy");
  expect_error("repeat:1", 5, "repeat takes I:J or I:J:K");
  expect_error("repeat:1:3:0", 5, "repeat count must be");
  expect_error("skip:5:6", 5, "start layer out of range '5'");
  expect_error("skip:1:2:3", 5, "skip takes I:J");
  expect_error(",", 5, "empty entry");
}

}  // namespace
}  // namespace reprise
