// The shared generation loop: greedy output equals `reprise run`, stop sequences are found across
// token boundaries and never released, UTF-8 is released whole, logprobs, cancellation.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/generator.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

const Model& model() {
  static const std::unique_ptr<Model> m = Model::load(test::default_model());
  return *m;
}

SessionOptions small() {
  SessionOptions o;
  o.n_threads = 1;
  o.n_ctx = 256;
  return o;
}

std::vector<int32_t> encode(const std::string& text) {
  return model().tokenizer()->encode(text, EncodeOptions{});
}

GenerateOptions greedy(int n) {
  GenerateOptions g;
  g.max_tokens = n;
  g.sampler.temperature = 0;
  return g;
}

struct Collected {
  std::string text;
  std::vector<GeneratedToken> tokens;
  int chunks = 0;
  ChunkCallback callback() {
    return [this](const GenerationChunk& c) {
      text += c.text;
      tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
      ++chunks;
      return true;
    };
  }
};

GenerationResult run_greedy(const std::string& path, const std::string& prompt, int n,
                            Collected* out = nullptr, GenerateOptions g = greedy(0)) {
  Session s(model(), parse_layer_path(path, 5), small());
  g.max_tokens = n;
  Collected local;
  Collected& c = out ? *out : local;
  return generate(s, model().tokenizer(), encode(prompt), g, c.callback());
}

// What `reprise run` printed after the prompt (it echoes the prompt and ends with a newline).
std::string cli_continuation(const std::string& path, const std::string& prompt, int n) {
  auto r =
      test::run_cli("run -m '" + test::default_model().string() + "' -t 1 -n " + std::to_string(n) +
                    " -p '" + prompt + "'" + (path.empty() ? "" : " --path " + path));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with(prompt)) << r.out;
  std::string cont = r.out.substr(std::min(prompt.size(), r.out.size()));
  if (!cont.empty() && cont.back() == '\n') cont.pop_back();
  return cont;
}

TEST(Generator, GreedyEqualsRepriseRunOnEveryPathKind) {
  const std::string prompt = "Once upon a time";
  for (const std::string path : {"", "repeat:1:4", "skip:2:3", "0,1,2,2,2,3,4"}) {
    Collected c;
    const GenerationResult r = run_greedy(path, prompt, 40, &c);
    EXPECT_EQ(r.text, cli_continuation(path, prompt, 40)) << "path " << path;
    EXPECT_EQ(c.text, r.text);
    EXPECT_EQ(r.prompt_tokens, static_cast<int>(encode(prompt).size()));
  }
}

TEST(Generator, PlainGreedyIsTheKnownStory) {
  const GenerationResult r = run_greedy("", "Once upon a time", 20);
  EXPECT_TRUE(r.text.starts_with(", there was a little girl named Lily. She loved to play"))
      << r.text;
  EXPECT_EQ(r.finish, FinishReason::Length);
  EXPECT_EQ(r.completion_tokens, 20);
}

TEST(Generator, StopSequenceAcrossTokensIsNeverReleased) {
  GenerateOptions g = greedy(0);
  g.stop = {"tle gi"};  // spans " little" | " girl"
  Collected c;
  const GenerationResult r = run_greedy("", "Once upon a time", 40, &c, g);
  EXPECT_EQ(r.finish, FinishReason::Stop);
  EXPECT_EQ(r.stop_sequence, "tle gi");
  EXPECT_EQ(r.text, ", there was a lit");
  EXPECT_EQ(c.text, r.text);
  EXPECT_EQ(c.text.find("tle"), std::string::npos);
}

TEST(Generator, EarliestOfSeveralStopsWins) {
  GenerateOptions g = greedy(0);
  g.stop = {"Lily", " was"};
  const GenerationResult r = run_greedy("", "Once upon a time", 40, nullptr, g);
  EXPECT_EQ(r.text, ", there");
  EXPECT_EQ(r.stop_sequence, " was");
}

TEST(Generator, StopPrefixAtTheEndIsReleasedWhenTheBudgetRunsOut) {
  // ", there was a" ends in " a", a prefix of the stop " a dog": held back, then released.
  GenerateOptions g = greedy(0);
  g.stop = {" a dog"};
  Collected c;
  const GenerationResult r = run_greedy("", "Once upon a time", 4, &c, g);
  EXPECT_EQ(r.finish, FinishReason::Length);
  EXPECT_EQ(r.text, ", there was a");
  EXPECT_EQ(c.text, r.text);
  EXPECT_EQ(c.tokens.size(), 4u);
}

TEST(Generator, TokensComeWithTheirTextAndOffsets) {
  GenerateOptions g = greedy(0);
  g.logprobs = 3;
  Collected c;
  const GenerationResult r = run_greedy("repeat:1:4", "Once upon a time", 12, &c, g);
  ASSERT_EQ(c.tokens.size(), 12u);
  std::string joined;
  for (const GeneratedToken& t : c.tokens) {
    EXPECT_EQ(t.text_offset, joined.size());
    joined += t.piece;
    ASSERT_EQ(t.top.size(), 3u);
    // Greedy picks the most likely token; alternatives are sorted; probabilities are sane.
    EXPECT_EQ(t.top[0].token, t.id);
    EXPECT_FLOAT_EQ(t.top[0].logprob, t.logprob);
    EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
    EXPECT_GE(t.top[1].logprob, t.top[2].logprob);
    EXPECT_LE(t.logprob, 0.0f);
    EXPECT_LE(std::exp(t.top[0].logprob) + std::exp(t.top[1].logprob) + std::exp(t.top[2].logprob),
              1.0001);
  }
  EXPECT_EQ(joined, r.text);
}

TEST(Generator, ZeroBudgetGeneratesNothing) {
  Collected c;
  const GenerationResult r = run_greedy("", "Once upon a time", 0, &c);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.completion_tokens, 0);
  EXPECT_EQ(r.finish, FinishReason::Length);
  EXPECT_EQ(c.chunks, 0);
}

TEST(Generator, EndOfSequenceStops) {
  // llama2.c's stories end with BOS (id 1), not EOS: a copy of the vocabulary that calls id 1
  // end-of-sequence gives sampled stories that end.
  Vocab v = model().tokenizer()->vocab();
  v.eos = 1;
  const std::unique_ptr<Tokenizer> tok = make_tokenizer(v);
  GenerateOptions g;
  g.sampler.temperature = 1.0f;
  g.max_tokens = 900;
  auto run = [&](const GenerateOptions& opts) {
    SessionOptions so = small();
    so.n_ctx = 1024;
    Session s(model(), LayerPath::identity(5), so);
    return generate(s, tok.get(), encode("Once upon a time"), opts, {});
  };
  GenerationResult r;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    g.sampler.seed = seed;
    r = run(g);
    if (r.finish == FinishReason::Stop) break;
  }
  ASSERT_EQ(r.finish, FinishReason::Stop) << "no story of 10 ended within 900 tokens";
  EXPECT_LT(r.completion_tokens, 900);
  EXPECT_TRUE(r.stop_sequence.empty());
  // The same draw with ignore_eos goes past the end-of-sequence token (and counts it).
  g.ignore_eos = true;
  g.max_tokens = r.completion_tokens + 5;
  const GenerationResult all = run(g);
  EXPECT_EQ(all.completion_tokens, r.completion_tokens + 5);
  EXPECT_TRUE(all.text.starts_with(r.text));
}

TEST(Generator, ContextFullEndsWithLength) {
  SessionOptions o = small();
  o.n_ctx = 16;
  Session s(model(), LayerPath::identity(5), o);
  const auto prompt = encode("Once upon a time");  // 5 tokens
  const GenerationResult r = generate(s, model().tokenizer(), prompt, greedy(1000), {});
  EXPECT_EQ(r.finish, FinishReason::Length);
  EXPECT_EQ(r.completion_tokens, 16 - 5 + 1);  // the last one needs no KV position
}

TEST(Generator, CancellationStopsPromptly) {
  Session s(model(), LayerPath::identity(5), small());
  int polls = 0;
  const GenerationResult r = generate(s, model().tokenizer(), encode("Once upon a time"),
                                      greedy(100), {}, [&] { return ++polls > 3; });
  EXPECT_EQ(r.finish, FinishReason::Cancelled);
  EXPECT_LE(r.completion_tokens, 4);
  // A chunk callback returning false cancels too.
  Session s2(model(), LayerPath::identity(5), small());
  const GenerationResult r2 = generate(s2, model().tokenizer(), encode("Once upon a time"),
                                       greedy(100), [](const GenerationChunk&) { return false; });
  EXPECT_EQ(r2.finish, FinishReason::Cancelled);
  EXPECT_EQ(r2.completion_tokens, 1);
}

TEST(Generator, SeededSamplingRepeats) {
  GenerateOptions g;
  g.sampler.temperature = 0.9f;
  g.sampler.seed = 1234;
  const GenerationResult a = run_greedy("", "Once upon a time", 30, nullptr, g);
  const GenerationResult b = run_greedy("", "Once upon a time", 30, nullptr, g);
  EXPECT_EQ(a.text, b.text);
}

TEST(Generator, RejectsBadOptions) {
  Session s(model(), LayerPath::identity(5), small());
  GenerateOptions g = greedy(4);
  g.sampler.top_p = 1.5f;
  EXPECT_THROW(generate(s, model().tokenizer(), encode("hi"), g, {}), Error);
  EXPECT_THROW(generate(s, model().tokenizer(), {}, greedy(4), {}), Error);
  const std::vector<int32_t> bad = {1, 100000};
  EXPECT_THROW(generate(s, model().tokenizer(), bad, greedy(4), {}), Error);
}

// TextReleaser on hand-made pieces.
GeneratedToken piece(int32_t id, std::string bytes) {
  GeneratedToken t;
  t.id = id;
  t.piece = std::move(bytes);
  return t;
}

TEST(TextReleaser, MultiByteCharacterSplitOverTokensIsReleasedWhole) {
  GenerateOptions g;
  std::vector<std::string> texts;
  std::vector<size_t> tokens_per_chunk;
  TextReleaser tr(g, [&](const GenerationChunk& c) {
    texts.emplace_back(c.text);
    tokens_per_chunk.push_back(c.tokens.size());
    return true;
  });
  bool stopped = false;
  EXPECT_TRUE(tr.add(piece(1, "a"), stopped));
  EXPECT_TRUE(tr.add(piece(2, "\xE2"), stopped));  // € = E2 82 AC
  EXPECT_TRUE(tr.add(piece(3, "\x82"), stopped));
  EXPECT_TRUE(tr.add(piece(4, "\xAC!"), stopped));
  EXPECT_TRUE(tr.finish(stopped));
  EXPECT_FALSE(stopped);
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[0], "a");
  EXPECT_EQ(texts[1], "\xE2\x82\xAC!");
  EXPECT_EQ(tokens_per_chunk[1], 3u);  // the three tokens of the character come together
  EXPECT_EQ(tr.text(), "a\xE2\x82\xAC!");
}

TEST(TextReleaser, ReplaceModeNeverReleasesInvalidUtf8) {
  GenerateOptions g;
  g.invalid_utf8 = Utf8Stream::Invalid::Replace;
  TextReleaser tr(g, {});
  bool stopped = false;
  tr.add(piece(1, "x\xFF"), stopped);
  tr.add(piece(2, "\xE2\x82"), stopped);  // cut off by the end of generation
  tr.finish(stopped);
  EXPECT_EQ(find_invalid_utf8(tr.text()), std::string::npos) << tr.text();
  EXPECT_EQ(tr.text(), "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TextReleaser, StopSplitIntoSingleBytes) {
  GenerateOptions g;
  g.stop = {"END"};
  std::string seen;
  TextReleaser tr(g, [&](const GenerationChunk& c) {
    seen += c.text;
    return true;
  });
  bool stopped = false;
  for (char ch : std::string("xxENxEN")) tr.add(piece(0, std::string(1, ch)), stopped);
  EXPECT_FALSE(stopped);
  EXPECT_EQ(seen, "xxENx");  // the trailing "EN" may still become END
  tr.add(piece(0, "D tail"), stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(seen, "xxENx");
  EXPECT_EQ(tr.text(), "xxENx");
  EXPECT_EQ(tr.matched_stop(), "END");
}

TEST(TextReleaser, StopInsideOneToken) {
  GenerateOptions g;
  g.stop = {"\n\n"};
  std::vector<GeneratedToken> got;
  TextReleaser tr(g, [&](const GenerationChunk& c) {
    got.insert(got.end(), c.tokens.begin(), c.tokens.end());
    return true;
  });
  bool stopped = false;
  tr.add(piece(7, "one"), stopped);
  tr.add(piece(8, " two\n\nthree"), stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(tr.text(), "one two");
  ASSERT_EQ(got.size(), 2u);  // the straddling token counts: part of its text was released
  EXPECT_EQ(got[1].id, 8);
  EXPECT_EQ(got[1].text_offset, 3u);
}

}  // namespace
}  // namespace reprise
