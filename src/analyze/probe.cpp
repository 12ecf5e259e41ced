#include "analyze/probe.h"

#include <fmt/format.h>

#include <variant>

#include "eval/request_tokens.h"
#include "util/error.h"

namespace reprise::analyze {
namespace {

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The index of the gold choice of a multiple-choice item. Tasks do not expose it directly, but
// scoring a response in which only choice m is likely gives accuracy 1 exactly for the gold m.
size_t gold_choice(const eval::Task& task, size_t item, size_t n_choices) {
  for (size_t m = 0; m < n_choices; ++m) {
    std::vector<eval::Response> rs;
    for (size_t k = 0; k < n_choices; ++k) {
      eval::LoglikelihoodResult r;
      r.logprob = k == m ? -1.0 : -1000.0;
      r.n_tokens = 1;
      r.is_greedy = k == m;
      rs.emplace_back(r);
    }
    try {
      auto s = task.score(item, rs);
      if (!s.values.empty() && s.values[0] > 0.5) return m;
    } catch (const std::exception&) {
      return 0;  // a task that cannot score fabricated responses: fall back to the first choice
    }
  }
  return 0;
}

std::vector<int32_t> request_tokens(const eval::RequestTokenizer& rt, const eval::Request& req) {
  if (const auto* r = std::get_if<eval::RollingRequest>(&req))
    return r->tokens.empty() ? rt.passage(r->text) : r->tokens;
  if (const auto* r = std::get_if<eval::LoglikelihoodRequest>(&req)) {
    if (!r->continuation_tokens.empty()) return concat(r->context_tokens, r->continuation_tokens);
    auto p = rt.pair(r->context, r->continuation);
    return concat(std::move(p.context), p.continuation);
  }
  if (const auto* r = std::get_if<eval::GenerateRequest>(&req))
    return r->context_tokens.empty() ? rt.context(r->context) : r->context_tokens;
  const auto& r = std::get<eval::CandidateRequest>(req);
  return r.candidate_tokens.empty() ? rt.context(r.context) : r.context_tokens;
}

}  // namespace

std::vector<ProbeItem> probe_items(const Model& model, const ProbeOptions& opts) {
  if (!model.tokenizer())
    throw Error(
        fmt::format("{}: analyze needs a vocabulary to tokenize the probe texts", model.path()));
  if (opts.max_tokens < 2) throw Error("--max-tokens must be at least 2");
  eval::RequestTokenizer rt(*model.tokenizer());
  std::vector<ProbeItem> items;
  for (const auto& name : eval::resolve_task_names(opts.tasks)) {
    auto task = eval::make_task(name, opts.task_options);
    const size_t n = opts.limit ? std::min(opts.limit, task->size()) : task->size();
    for (size_t i = 0; i < n; ++i) {
      auto reqs = task->requests(i);
      if (reqs.empty()) continue;
      size_t pick = 0;
      const bool choices =
          reqs.size() > 1 && std::holds_alternative<eval::LoglikelihoodRequest>(reqs[0]);
      if (choices) pick = gold_choice(*task, i, reqs.size());
      ProbeItem it;
      it.id = task->item_id(i);
      it.tokens = request_tokens(rt, reqs[pick]);
      if (it.tokens.size() > static_cast<size_t>(opts.max_tokens))
        it.tokens.resize(opts.max_tokens);
      if (it.tokens.size() >= 2) items.push_back(std::move(it));
    }
  }
  if (items.empty()) throw Error(fmt::format("--task {}: no probe items", opts.tasks));
  return items;
}

}  // namespace reprise::analyze
