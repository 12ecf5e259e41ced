// chat/conversation.h and chat/chat_loop.h: `reprise chat`'s conversation on the bundled model.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chat/chat_loop.h"
#include "chat/conversation.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::chat {
namespace {

const Model& bundled() {
  static const std::unique_ptr<Model> m = Model::load(test::default_model());
  return *m;
}

ConversationOptions options(std::string system = "") {
  ConversationOptions o;
  o.chat_family = "chatml";
  o.system = std::move(system);
  o.session.n_threads = 1;
  return o;
}

GenerateOptions greedy(int n) {
  GenerateOptions g;
  g.max_tokens = n;
  g.sampler.temperature = 0;
  return g;
}

std::vector<int32_t> chat_tokens(const std::vector<ChatMessage>& msgs) {
  EncodeOptions eo;
  eo.parse_special = true;
  return bundled().tokenizer()->encode(format_chat("chatml", msgs, true), eo);
}

// The second turn re-sends the conversation; the session keeps the KV of the prefix it shares
// with the first prompt and runs only the rest.
TEST(ChatConversation, ANewTurnRunsOnlyWhatFollowsTheSharedPrefix) {
  Conversation conv(bundled(), parse_layer_path("all", 5), "", options("Be brief."));
  const Turn first = conv.reply("Hi", greedy(6), [](const GenerationChunk&) { return true; });
  const int64_t run_before = conv.tokens_run();
  const Turn second =
      conv.reply("Tell me a story", greedy(6), [](const GenerationChunk&) { return true; });
  const auto a = chat_tokens({{"system", "Be brief."}, {"user", "Hi"}});
  const auto b = chat_tokens({{"system", "Be brief."},
                              {"user", "Hi"},
                              {"assistant", first.result.text},
                              {"user", "Tell me a story"}});
  size_t shared = 0;
  while (shared < a.size() && a[shared] == b[shared]) ++shared;
  ASSERT_GT(shared, a.size() / 2);  // the test means something only if much is shared
  // After the turn the session holds the prompt and the reply's decoded tokens; all but the
  // shared prefix were run this turn.
  EXPECT_EQ(conv.tokens_run() - run_before, conv.n_past() - static_cast<int64_t>(shared));
  EXPECT_GE(conv.n_past(), static_cast<int>(b.size()));
  ASSERT_EQ(conv.messages().size(), 5u);
  EXPECT_EQ(conv.messages()[4].content, second.result.text);
  conv.reset();
  ASSERT_EQ(conv.messages().size(), 1u);  // the system turn stays
  EXPECT_EQ(conv.messages()[0].role, "system");
}

TEST(ChatConversation, ABadRouterFileKeepsThePath) {
  Conversation conv(bundled(), parse_layer_path("0..2", 5), "", options());
  EXPECT_THROW(conv.set_router("/nonexistent/router.json"), Error);
  EXPECT_EQ(conv.path().canonical(), "0..2");  // the old setting is kept
  EXPECT_EQ(conv.describe().substr(conv.describe().find(", path")), ", path 0..2, template chatml");
}

// The loop's commands and its --jsonl records, written to memory streams.
struct Captured {
  char* out_buf = nullptr;
  size_t out_len = 0;
  char* err_buf = nullptr;
  size_t err_len = 0;
  std::FILE* out = open_memstream(&out_buf, &out_len);
  std::FILE* err = open_memstream(&err_buf, &err_len);
  ~Captured() {
    std::fclose(out);
    std::fclose(err);
    std::free(out_buf);
    std::free(err_buf);
  }
  std::string text() {
    std::fflush(out);
    return std::string(out_buf, out_len);
  }
};

TEST(ChatLoop, CommandsAnswerAndRepliesAreJsonRecords) {
  Conversation conv(bundled(), parse_layer_path("all", 5), "", options());
  Captured io;
  ChatLoopOptions lo;
  lo.generate = greedy(4);
  lo.jsonl = true;
  lo.parse_path = [](const std::string& spec, int n_layer) {
    return parse_layer_path(spec, n_layer);
  };
  lo.out = io.out;
  lo.err = io.err;
  ChatLoop loop(conv, lo);
  EXPECT_TRUE(loop.handle("/path 0..2,1..4"));
  EXPECT_TRUE(loop.handle("Hi"));
  EXPECT_FALSE(loop.handle("/quit"));
  try {
    loop.handle("/frob");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("unknown command /frob; commands: /path SPEC", 0), 0u)
        << e.what();
  }
  EXPECT_THROW(loop.handle("/path 0,9"), Error);
  EXPECT_EQ(conv.path().canonical(), "0..2,1..4");
  std::istringstream lines(io.text());
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(nlohmann::json::parse(line), (nlohmann::json{{"info", "path set to 0..2,1..4"}}));
  ASSERT_TRUE(std::getline(lines, line));
  const auto rec = nlohmann::json::parse(line);
  EXPECT_EQ(rec.at("reply"), conv.messages().back().content);
  EXPECT_EQ(rec.at("tokens"), 4);
  EXPECT_EQ(rec.at("finish_reason"), "length");
  EXPECT_FALSE(rec.contains("route"));  // a fixed path
  EXPECT_FALSE(std::getline(lines, line));
}

}  // namespace
}  // namespace reprise::chat
