#include "eval/request_tokens.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "engine/common_prefix.h"
#include "eval/rng.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// A short, one-line rendering of a text for error messages.
std::string snippet(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += c == '\n' ? ' ' : c;
  return s.size() > 40 ? out + "..." : out;
}

}  // namespace

RequestTokenizer::RequestTokenizer(const Tokenizer& tokenizer, PromptFormat format)
    : tok_(tokenizer), format_(std::move(format)) {}

int32_t RequestTokenizer::start_token() const {
  const Vocab& v = tok_.vocab();
  if (v.add_bos && v.bos >= 0) return v.bos;
  return v.eos >= 0 ? v.eos : v.bos;
}

std::vector<int32_t> RequestTokenizer::encode_with_bos(const std::string& text) const {
  const Vocab& v = tok_.vocab();
  EncodeOptions opts;
  opts.add_bos = false;  // BOS by hand: add_bos would also append EOS for add_eos vocabularies
  opts.parse_special = !format_.chat_family.empty();
  std::vector<int32_t> out;
  if (v.add_bos && v.bos >= 0) out.push_back(v.bos);
  auto ids = tok_.encode(text, opts);
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::pair<std::string, std::string> RequestTokenizer::join_parts(
    std::string_view context, std::string_view continuation) const {
  size_t end = context.size();
  while (end > 0 && is_space(context[end - 1])) --end;
  if (format_.chat_family.empty())
    return {std::string(context.substr(0, end)),
            std::string(context.substr(end)) + std::string(continuation)};
  size_t start = 0;
  while (start < continuation.size() && is_space(continuation[start])) ++start;
  std::vector<ChatMessage> msgs;
  if (!format_.chat_system.empty()) msgs.push_back({"system", format_.chat_system});
  msgs.push_back({"user", std::string(context.substr(0, end))});
  std::string wrapped = format_chat(format_.chat_family, msgs, /*add_generation_prompt=*/true);
  return {wrapped, std::string(continuation.substr(start))};
}

std::string RequestTokenizer::format_name() const {
  if (format_.chat_family.empty()) return "plain";
  // A system turn changes what the model reads, so runs with different ones must not pair.
  if (format_.chat_system.empty()) return "chat:" + format_.chat_family;
  return fmt::format("chat:{}+system:{:016x}", format_.chat_family, fnv1a64(format_.chat_system));
}

std::pair<std::string, std::string> RequestTokenizer::rendered(
    std::string_view context, std::string_view continuation) const {
  if (format_.chat_family.empty()) return {std::string(context), std::string(continuation)};
  return join_parts(context, continuation);
}

std::vector<int32_t> RequestTokenizer::context(std::string_view text) const {
  if (format_.chat_family.empty()) return encode_with_bos(std::string(text));
  return encode_with_bos(join_parts(text, "").first);
}

RequestTokenizer::Pair RequestTokenizer::pair(std::string_view context,
                                              std::string_view continuation) const {
  auto [ctx, cont] = join_parts(context, continuation);
  std::vector<int32_t> alone = encode_with_bos(ctx);
  std::vector<int32_t> whole = encode_with_bos(ctx + cont);
  size_t n = common_prefix(alone, whole);
  if (n == whole.size())
    throw Error(fmt::format("continuation '{}' adds no tokens", snippet(continuation)));
  if (n == 0) {  // nothing precedes the continuation: condition it on the start token
    const int32_t s = start_token();
    if (s < 0) throw Error("the vocabulary has no BOS or EOS token to start a sequence with");
    whole.insert(whole.begin(), s);
    n = 1;
  }
  return {std::vector<int32_t>(whole.begin(), whole.begin() + n),
          std::vector<int32_t>(whole.begin() + n, whole.end())};
}

std::vector<int32_t> RequestTokenizer::passage(std::string_view text) const {
  const int32_t s = start_token();
  if (s < 0) throw Error("the vocabulary has no BOS or EOS token to start a passage with");
  EncodeOptions opts;
  opts.add_bos = false;
  std::vector<int32_t> out{s};
  auto ids = tok_.encode(text, opts);
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

RequestTokenizer::Candidates RequestTokenizer::candidates(
    std::string_view context, std::span<const std::string> candidates) const {
  if (candidates.empty()) throw Error("a candidate request needs at least one candidate");
  std::vector<std::vector<int32_t>> enc;
  for (const auto& c : candidates) {
    auto [ctx, cont] = join_parts(context, c);
    enc.push_back(encode_with_bos(ctx + cont));
  }
  // The shared tokens are the context; each candidate must keep at least one token of its own.
  size_t n = enc[0].size();
  if (enc.size() == 1) n = common_prefix(encode_with_bos(join_parts(context, "").first), enc[0]);
  for (const auto& e : enc) n = std::min(n, common_prefix(enc[0], e));
  for (size_t i = 0; i < enc.size(); ++i) {
    if (enc[i].empty())
      throw Error(fmt::format("candidate '{}' has no tokens", snippet(candidates[i])));
    n = std::min(n, enc[i].size() - 1);
  }
  Candidates out;
  for (const auto& e : enc) out.tokens.push_back(e[n]);
  out.context.assign(enc[0].begin(), enc[0].begin() + n);
  if (out.context.empty()) {
    const int32_t s = start_token();
    if (s < 0) throw Error("the vocabulary has no BOS or EOS token to start a sequence with");
    out.context.push_back(s);
  }
  std::set<int32_t> seen;
  for (size_t i = 0; i < out.tokens.size(); ++i)
    if (!seen.insert(out.tokens[i]).second)
      throw Error(fmt::format("candidates '{}' and another start with the same token",
                              snippet(candidates[i])));
  return out;
}

}  // namespace reprise::eval
