#include "engine/generator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/ops.h"
#include "model/tokenizer.h"
#include "util/error.h"
#include "util/stopwatch.h"

namespace reprise {
namespace {

constexpr size_t kUnknown = std::numeric_limits<size_t>::max();

}  // namespace

TextReleaser::TextReleaser(const GenerateOptions& opts, ChunkCallback on_chunk)
    : utf8_(opts.invalid_utf8), on_chunk_(std::move(on_chunk)) {
  for (const std::string& s : opts.stop)
    if (!s.empty()) stops_.push_back(s);
}

bool TextReleaser::add(GeneratedToken tok, bool& stopped) {
  tok.text_offset = produced();
  held_ += utf8_.push(tok.piece);
  pending_.push_back(std::move(tok));
  ends_.push_back(kUnknown);
  if (utf8_.pending() == 0) settle_ends();
  return release(/*final=*/false, stopped);
}

bool TextReleaser::finish(bool& stopped) {
  held_ += utf8_.flush();
  settle_ends();
  return release(/*final=*/true, stopped);
}

// Tokens whose bytes the UTF-8 buffer no longer holds end where the produced text ends now.
void TextReleaser::settle_ends() {
  for (size_t& e : ends_)
    if (e == kUnknown) e = produced();
}

// Earliest complete stop sequence in held_ (npos if none). Released text never holds the start
// of one: stop_prefix_len() kept every possible beginning back.
size_t TextReleaser::find_stop(std::string& which) const {
  size_t best = std::string::npos;
  for (const std::string& s : stops_) {
    const size_t p = held_.find(s);
    if (p != std::string::npos && (best == std::string::npos || p < best)) {
      best = p;
      which = s;
    }
  }
  return best;
}

// Length of the longest suffix of held_ that begins some stop sequence: those bytes may turn
// into a stop once more tokens arrive, so they are not released yet.
size_t TextReleaser::stop_prefix_len() const {
  size_t keep = 0;
  for (const std::string& s : stops_) {
    const size_t max_len = std::min(s.size() - 1, held_.size());
    for (size_t n = max_len; n > keep; --n)
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  }
  return keep;
}

bool TextReleaser::release(bool final, bool& stopped) {
  std::string which;
  const size_t stop_at = find_stop(which);
  size_t n_release;
  if (stop_at != std::string::npos) {
    stopped = true;
    matched_stop_ = which;
    n_release = stop_at;
  } else {
    n_release = final ? held_.size() : held_.size() - stop_prefix_len();
  }
  const size_t start = released_.size();
  released_.append(held_, 0, n_release);
  held_.erase(0, n_release);
  const size_t limit = released_.size();

  // Tokens handed out now: after a stop, every token that put text before it (the one that
  // straddles it included); otherwise those whose text ends within what is released (all of
  // them at the end).
  size_t n_tokens = 0;
  while (n_tokens < pending_.size()) {
    const bool done =
        stopped ? pending_[n_tokens].text_offset < limit : final || ends_[n_tokens] <= limit;
    if (!done) break;
    ++n_tokens;
  }
  bool keep_going = true;
  if ((n_release > 0 || n_tokens > 0) && on_chunk_) {
    const GenerationChunk chunk{std::string_view(released_).substr(start),
                                std::span<const GeneratedToken>(pending_.data(), n_tokens)};
    keep_going = on_chunk_(chunk);
  }
  pending_.erase(pending_.begin(), pending_.begin() + n_tokens);
  ends_.erase(ends_.begin(), ends_.begin() + n_tokens);
  if (stopped) {
    pending_.clear();
    ends_.clear();
  }
  return keep_going;
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Length:
      return "length";
    case FinishReason::Cancelled:
      return "cancelled";
    case FinishReason::Timeout:
      return "timeout";
  }
  return "unknown";
}

float token_logprob(std::span<const float> logits, int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= logits.size()) return 0;
  return static_cast<float>(logits[id] - kernels::log_sum_exp(logits));
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k) {
  const int n = static_cast<int>(logits.size());
  k = std::clamp(k, 0, n);
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  // Ties go to the lower id so that the order is deterministic.
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  const double lse = kernels::log_sum_exp(logits);
  std::vector<TokenLogprob> out(k);
  for (int i = 0; i < k; ++i) out[i] = {ids[i], static_cast<float>(logits[ids[i]] - lse)};
  return out;
}

GenerationResult generate(Session& session, const Tokenizer* tokenizer,
                          std::span<const int32_t> prompt, const GenerateOptions& opts,
                          const ChunkCallback& on_chunk, const CancelCheck& cancelled) {
  if (prompt.empty()) throw Error("the prompt has no tokens");
  if (opts.max_tokens < 0) throw Error("max_tokens must be >= 0");
  Sampler sampler(opts.sampler);
  for (int32_t id : prompt) sampler.accept(id);
  GenerationResult result;
  result.prompt_tokens = static_cast<int>(prompt.size());
  TextReleaser text(opts, on_chunk);
  auto finish = [&](FinishReason reason) {
    result.finish = reason;
    result.text = text.text();
    result.stop_sequence = text.matched_stop();
    return result;
  };
  if (cancelled && cancelled()) return finish(FinishReason::Cancelled);

  Stopwatch clock;
  std::span<const float> logits = session.prefill(prompt);
  result.prefill_seconds = clock.restart();
  auto done = [&](FinishReason reason) {
    result.decode_seconds = clock.seconds();
    return finish(reason);
  };

  const int32_t eos = tokenizer ? tokenizer->vocab().eos : -1;
  const int32_t eot = tokenizer ? tokenizer->vocab().eot : -1;
  bool stopped = false;
  while (result.completion_tokens < opts.max_tokens) {
    GeneratedToken tok;
    tok.id = sampler.sample(logits);
    if (opts.logprobs >= 0) {
      tok.logprob = token_logprob(logits, tok.id);
      if (opts.logprobs > 0) tok.top = top_logprobs(logits, opts.logprobs);
    }
    if (!opts.ignore_eos && (tok.id == eos || tok.id == eot)) {
      result.end_token = std::move(tok);
      if (!text.finish(stopped)) return done(FinishReason::Cancelled);
      return done(FinishReason::Stop);
    }
    if (tokenizer) tok.piece = tokenizer->token_to_piece(tok.id);
    ++result.completion_tokens;
    const int32_t id = tok.id;
    sampler.accept(id);
    if (!text.add(std::move(tok), stopped)) return done(FinishReason::Cancelled);
    if (stopped) return done(FinishReason::Stop);
    // The last sampled token is not fed back: nothing would read its logits.
    if (result.completion_tokens == opts.max_tokens || session.n_past() >= session.n_ctx()) break;
    if (cancelled && cancelled()) return done(FinishReason::Cancelled);
    logits = session.decode(id);
  }
  if (!text.finish(stopped)) return done(FinishReason::Cancelled);
  return done(stopped ? FinishReason::Stop : FinishReason::Length);
}

}  // namespace reprise
