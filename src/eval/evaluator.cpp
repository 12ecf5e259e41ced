#include "eval/evaluator.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "eval/rng.h"
#include "eval/stats.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

// JSON has no NaN: undefined figures (the stderr of one item) become null.
nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::string first_context(std::span<const Request> requests) {
  if (requests.empty()) return "";
  return std::visit(
      [](const auto& r) -> std::string {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, RollingRequest>)
          return "";
        else
          return r.context;
      },
      requests.front());
}

std::string ids_text(std::span<const int32_t> ids) {
  std::string s;
  for (int32_t t : ids) s += std::to_string(t) + ",";
  return s;
}

}  // namespace

const char* metric_kind_name(MetricKind k) {
  return k == MetricKind::Binary ? "binary" : "continuous";
}

std::string doc_hash(const std::string& task, std::span<const Request> requests,
                     const std::string& gold) {
  // Fields are separated by a byte that does not occur in text, so ("ab","c") != ("a","bc").
  const std::string sep(1, '\x1f');
  uint64_t h = fnv1a64(task + sep);
  for (const auto& req : requests) {
    std::string s;
    if (const auto* r = std::get_if<LoglikelihoodRequest>(&req)) {
      s = "L" + sep + r->context + sep + r->continuation + sep + ids_text(r->context_tokens) + sep +
          ids_text(r->continuation_tokens);
    } else if (const auto* r = std::get_if<RollingRequest>(&req)) {
      s = "R" + sep + r->text + sep + ids_text(r->tokens);
    } else if (const auto* r = std::get_if<GenerateRequest>(&req)) {
      s = "G" + sep + r->context + sep + std::to_string(r->max_tokens) + sep +
          ids_text(r->context_tokens);
      for (const auto& st : r->stop) s += sep + st;
    } else if (const auto* r = std::get_if<CandidateRequest>(&req)) {
      s = "C" + sep + r->context + sep + ids_text(r->context_tokens) + sep +
          ids_text(r->candidate_tokens);
      for (const auto& c : r->candidates) s += sep + c;
    }
    h = fnv1a64(s + sep, h);
  }
  h = fnv1a64("gold" + sep + gold, h);
  return fmt::format("{:016x}", h);
}

std::vector<MetricSummary> summarize(const TaskInfo& info, std::span<const ItemRecord> items) {
  std::vector<MetricSummary> out;
  for (size_t m = 0; m < info.metrics.size(); ++m) {
    std::vector<double> v;
    for (const auto& it : items) v.push_back(it.values[m]);
    out.push_back({info.metrics[m], mean(v), standard_error(v), v.size()});
  }
  return out;
}

TaskResult evaluate(const Task& task, LanguageModel& lm, const EvalOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  TaskResult res;
  res.info = task.info();
  res.n_available = task.size();
  const size_t n = opts.limit > 0 ? std::min(opts.limit, task.size()) : task.size();
  const size_t batch = std::max<size_t>(1, opts.batch_items);
  for (size_t start = 0; start < n; start += batch) {
    const size_t end = std::min(n, start + batch);
    std::vector<Request> requests;
    std::vector<size_t> first(end - start + 1);
    for (size_t i = start; i < end; ++i) {
      first[i - start] = requests.size();
      auto r = task.requests(i);
      requests.insert(requests.end(), std::make_move_iterator(r.begin()),
                      std::make_move_iterator(r.end()));
    }
    first[end - start] = requests.size();
    // The bar moves within a batch: requests are answered out of item order (shared prefixes
    // first), so what is reported is the items' worth of requests answered so far.
    size_t answered = 0, reported = 0;
    if (opts.progress && !requests.empty())
      lm.on_request_done([&] {
        const size_t items = ++answered * (end - start) / requests.size();
        if (items > reported) opts.progress(start + (reported = items));
      });
    struct Unhook {  // the hook refers to this frame: off again even when the model throws
      LanguageModel& lm;
      ~Unhook() { lm.on_request_done(nullptr); }
    } unhook{lm};
    const std::vector<Response> responses = run_requests(lm, requests);
    for (size_t i = start; i < end; ++i) {
      const size_t a = first[i - start], b = first[i - start + 1];
      std::span<const Response> mine(responses.data() + a, b - a);
      std::span<const Request> asked(requests.data() + a, b - a);
      ItemScore s = task.score(i, mine);
      if (s.values.size() != res.info.metrics.size())
        throw Error(fmt::format("task {}: item {} scored {} metrics, expected {}", res.info.name, i,
                                s.values.size(), res.info.metrics.size()));
      ItemRecord rec;
      rec.id = task.item_id(i);
      rec.doc_hash = doc_hash(res.info.name, asked, s.gold);
      rec.values = std::move(s.values);
      rec.prediction = std::move(s.prediction);
      rec.gold = std::move(s.gold);
      rec.prompt = first_context(asked);
      rec.details = std::move(s.details);
      res.items.push_back(std::move(rec));
    }
    if (opts.progress && reported < end - start) opts.progress(end);
  }
  res.metrics = summarize(res.info, res.items);
  std::vector<nlohmann::json> details;
  for (const auto& it : res.items) details.push_back(it.details);
  res.aggregates = task.aggregates(details);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

nlohmann::ordered_json results_json(std::span<const TaskResult> results,
                                    const nlohmann::json& config, bool with_samples) {
  using ojson = nlohmann::ordered_json;
  ojson out;
  out["results"] = ojson::object();
  out["n-samples"] = ojson::object();
  out["higher_is_better"] = ojson::object();
  out["metric_kinds"] = ojson::object();
  out["configs"] = ojson::object();
  if (with_samples) out["samples"] = ojson::object();
  for (const auto& r : results) {
    const std::string& name = r.info.name;
    ojson res = {{"alias", name}};
    for (const auto& m : r.metrics) {
      res[m.info.name + ",none"] = ojson(number_or_null(m.value));
      res[m.info.name + "_stderr,none"] = number_or_null(m.std_error);
      out["higher_is_better"][name][m.info.name] = m.info.higher_is_better;
      out["metric_kinds"][name][m.info.name] = metric_kind_name(m.info.kind);
    }
    for (const auto& [k, v] : r.aggregates) res[k + ",none"] = number_or_null(v);
    res["n"] = r.items.size();
    out["results"][name] = res;
    out["n-samples"][name] = {{"original", r.n_available}, {"effective", r.items.size()}};
    ojson metric_list = ojson::array();
    for (const auto& m : r.info.metrics)
      metric_list.push_back({{"metric", m.name},
                             {"aggregation", "mean"},
                             {"higher_is_better", m.higher_is_better},
                             {"kind", metric_kind_name(m.kind)}});
    out["configs"][name] = {{"task", name},
                            {"output_type", r.info.output_type},
                            {"description", r.info.description},
                            {"metric_list", metric_list},
                            {"seconds", r.seconds}};
    if (with_samples) {
      ojson items = ojson::array();
      for (const auto& it : r.items) {
        ojson m = ojson::object();
        for (size_t k = 0; k < it.values.size(); ++k)
          m[r.info.metrics[k].name] = number_or_null(it.values[k]);
        items.push_back({{"id", it.id},
                         {"doc_hash", it.doc_hash},
                         {"metrics", m},
                         {"prediction", it.prediction},
                         {"gold", it.gold}});
      }
      out["samples"][name] = items;
    }
  }
  out["config"] = config;
  return out;
}

nlohmann::ordered_json sample_json(const TaskResult& task, const ItemRecord& item,
                                   const std::string& path_label) {
  using ojson = nlohmann::ordered_json;
  ojson metrics = ojson::object(), kinds = ojson::object(), better = ojson::object();
  for (size_t k = 0; k < item.values.size(); ++k) {
    const MetricInfo& m = task.info.metrics[k];
    metrics[m.name] = number_or_null(item.values[k]);
    kinds[m.name] = metric_kind_name(m.kind);
    better[m.name] = m.higher_is_better;
  }
  return {{"task", task.info.name},
          {"id", item.id},
          {"doc_hash", item.doc_hash},
          {"metrics", metrics},
          {"metric_kinds", kinds},
          {"higher_is_better", better},
          {"prediction", item.prediction},
          {"gold", item.gold},
          {"path", path_label},
          {"prompt", item.prompt},
          {"details", ojson(item.details)}};
}

std::string summary_table(std::span<const TaskResult> results) {
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"task", "metric", "value", "stderr", "n"});
  for (const auto& r : results) {
    for (const auto& m : r.metrics)
      rows.push_back({r.info.name, m.info.name, fmt::format("{:.4f}", m.value),
                      std::isfinite(m.std_error) ? fmt::format("{:.4f}", m.std_error) : "-",
                      std::to_string(m.n)});
    for (const auto& [k, v] : r.aggregates)
      if (k != "tokens")
        rows.push_back(
            {r.info.name, k, fmt::format("{:.4f}", v), "-", std::to_string(r.items.size())});
  }
  std::array<size_t, 5> w{};
  for (const auto& row : rows)
    for (size_t c = 0; c < 5; ++c) w[c] = std::max(w[c], row[c].size());
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    out += "|";
    for (size_t c = 0; c < 5; ++c)
      out += c >= 2 ? fmt::format(" {:>{}} |", rows[r][c], w[c])
                    : fmt::format(" {:<{}} |", rows[r][c], w[c]);
    out += "\n";
    if (r == 0) {
      out += "|";
      for (size_t c = 0; c < 5; ++c)
        out +=
            c >= 2 ? fmt::format("{:-<{}}:|", "", w[c] + 1) : fmt::format("{:-<{}}|", "", w[c] + 2);
      out += "\n";
    }
  }
  return out;
}

}  // namespace reprise::eval
