#include "eval/evaluator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <ostream>

#include "eval/registry.h"
#include "eval/rng.h"
#include "eval/stats.h"
#include "util/error.h"
#include "util/sha256.h"
#include "util/stopwatch.h"
#include "util/version.h"

namespace reprise::eval {
namespace {

// JSON has no NaN: undefined figures (the stderr of one item) become null.
nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// Python's str() of a float, as lm-eval's logs write numbers: shortest round trip, with ".0" on
// whole numbers.
std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

// lm-eval's logged arguments of one request, the texts as the model read them.
nlohmann::json request_args(const Request& req, const LanguageModel& lm) {
  using J = nlohmann::json;
  if (const auto* r = std::get_if<LoglikelihoodRequest>(&req)) {
    auto [c, k] = lm.rendered(r->context, r->continuation);
    return J::array({c, k});
  }
  if (const auto* r = std::get_if<RollingRequest>(&req)) return J::array({r->text});
  if (const auto* r = std::get_if<GenerateRequest>(&req)) {
    return J::array({lm.rendered(r->context, "").first,
                     {{"until", r->stop},
                      {"max_gen_toks", r->max_tokens},
                      {"do_sample", false},
                      {"temperature", 0.0}}});
  }
  const auto& r = std::get<CandidateRequest>(req);
  return J::array({lm.rendered(r.context, "").first, r.candidates});
}

// One response as lm-eval logs it (numbers as Python's str() of them).
nlohmann::json response_json(const Response& resp) {
  using J = nlohmann::json;
  if (const auto* r = std::get_if<LoglikelihoodResult>(&resp))
    return J::array({py_float(r->logprob), r->is_greedy ? "True" : "False"});
  if (const auto* r = std::get_if<RollingResult>(&resp)) return py_float(r->logprob);
  if (const auto* r = std::get_if<GenerateResult>(&resp)) return r->text;
  J probs = J::array();
  for (double p : std::get<CandidateResult>(resp).probs) probs.push_back(py_float(p));
  return probs;
}

std::string ids_text(std::span<const int32_t> ids) {
  std::string s;
  for (int32_t t : ids) s += std::to_string(t) + ",";
  return s;
}

// lm-eval's row for a group: each metric's mean over all the subtasks' items (its
// weight_by_size aggregation) and the pooled standard error, sqrt(sum((n_i - 1) n_i se_i^2) /
// (N - k) / N) over k subtasks of n_i items, N in all; "N/A" when a subtask's is undefined.
void add_group_rows(nlohmann::ordered_json& out, const TaskGroup& g,
                    std::span<const TaskResult> results) {
  using ojson = nlohmann::ordered_json;
  auto in_group = [&](const TaskResult& r) {
    return std::find(g.tasks.begin(), g.tasks.end(), r.info.name) != g.tasks.end();
  };
  ojson row = {{"alias", g.name}}, members = ojson::array();
  for (const auto& r : results)
    if (in_group(r)) members.push_back(r.info.name);
  if (members.empty()) return;
  for (const auto& id : g.metrics) {
    double sum = 0, pooled = 0, n_all = 0, k = 0;
    bool defined = true;
    const MetricInfo* info = nullptr;
    for (const auto& r : results) {
      if (!in_group(r)) continue;
      for (const auto& m : r.metrics) {
        if (m.info.id() != id) continue;
        info = &m.info;
        const double n = static_cast<double>(m.n);
        sum += m.value * n;
        pooled += (n - 1) * n * m.std_error * m.std_error;
        defined = defined && std::isfinite(m.std_error);
        n_all += n;
        k += 1;
      }
    }
    if (!info || n_all == 0) continue;
    const std::string f = "," + info->filter;
    row[info->name + f] = sum / n_all;
    row[info->name + "_stderr" + f] =
        defined && n_all > k ? ojson(std::sqrt(pooled / (n_all - k) / n_all)) : ojson("N/A");
    out["higher_is_better"][g.name][info->name] = info->higher_is_better;
  }
  out["results"][g.name] = row;
  if (!out.contains("groups")) out["groups"] = ojson::object();
  out["groups"][g.name] = row;
  out["group_subtasks"][g.name] = members;
  out["versions"][g.name] = g.version;
}

}  // namespace

const char* metric_kind_name(MetricKind k) {
  return k == MetricKind::Binary ? "binary" : "continuous";
}

std::string doc_hash(const std::string& task, std::span<const Request> requests,
                     const std::string& gold, std::string_view prompt_format) {
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
  if (prompt_format != "plain") h = fnv1a64("format" + sep + std::string(prompt_format), h);
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
  const Stopwatch clock;
  TaskResult res;
  res.info = task.info();
  res.prompt_format = lm.prompt_format();
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
      rec.doc_hash = doc_hash(res.info.name, asked, s.gold, res.prompt_format);
      rec.values = std::move(s.values);
      rec.prediction = std::move(s.prediction);
      rec.gold = std::move(s.gold);
      rec.arguments = nlohmann::json::object();
      rec.resps = nlohmann::json::array();
      for (size_t k = 0; k < asked.size(); ++k) {
        const nlohmann::json args = request_args(asked[k], lm);
        if (k == 0 && args[0].is_string()) rec.prompt = args[0].get<std::string>();
        nlohmann::json& named = rec.arguments[fmt::format("gen_args_{}", k)];
        for (size_t j = 0; j < args.size(); ++j) named[fmt::format("arg_{}", j)] = args[j];
        rec.resps.push_back(nlohmann::json::array({response_json(mine[k])}));
      }
      rec.details = std::move(s.details);
      res.items.push_back(std::move(rec));
    }
    if (opts.progress && reported < end - start) opts.progress(end);
  }
  res.metrics = summarize(res.info, res.items);
  std::vector<nlohmann::json> details;
  for (const auto& it : res.items) details.push_back(it.details);
  res.aggregates = task.aggregates(details);
  res.seconds = clock.seconds();
  return res;
}

RunInfo run_info(const RunSettings& s, double start_unix, double seconds) {
  const std::time_t now = std::time(nullptr);
  char iso[32];
  std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  RunInfo run;
  run.config = {{"model", "reprise"},
                {"model_args", fmt::format("model={},path={}", s.model_path, s.path_label)},
                {"batch_size", s.batch_items},
                {"batch_sizes", nlohmann::json::array()},
                {"device", "cpu"},
                {"use_cache", nullptr},
                {"limit", s.limit > 0 ? nlohmann::json(s.limit) : nlohmann::json()},
                {"bootstrap_iters", 0},
                {"gen_kwargs", nullptr},
                {"random_seed", s.seed},
                {"model_path", s.model_path},
                {"path", s.path_label},
                {"path_layers", s.path_layers},
                {"tasks", s.tasks},
                {"seed", s.seed},
                {"n_ctx", s.n_ctx},
                {"prompt_format", s.prompt_format},
                {"chat_system", s.chat_system},
                {"reprise_version", version()},
                {"date_iso", iso}};
  run.model_name = s.model_name;
  run.date = start_unix;
  run.seconds = seconds;
  run.chat_template = s.chat_family;
  run.groups = lm_eval_groups(s.task_spec);
  return run;
}

nlohmann::ordered_json results_json(std::span<const TaskResult> results, const RunInfo& run,
                                    bool with_samples) {
  using ojson = nlohmann::ordered_json;
  ojson out;
  for (const char* key : {"results", "group_subtasks", "configs", "versions", "n-shot",
                          "higher_is_better", "n-samples", "metric_kinds"})
    out[key] = ojson::object();
  if (with_samples) out["samples"] = ojson::object();
  for (const auto& r : results) {
    const std::string& name = r.info.name;
    ojson res = {{"alias", name}};
    for (const auto& m : r.metrics) {
      const std::string f = "," + m.info.filter;
      res[m.info.name + f] = number_or_null(m.value);
      // lm-eval writes "N/A" where a stderr is undefined; its table printer expects that.
      res[m.info.name + "_stderr" + f] =
          std::isfinite(m.std_error) ? ojson(m.std_error) : ojson("N/A");
      out["higher_is_better"][name][m.info.name] = m.info.higher_is_better;
      out["metric_kinds"][name][m.info.id()] = metric_kind_name(m.info.kind);
    }
    for (const auto& [k, v] : r.aggregates) res[k + ",none"] = number_or_null(v);
    out["results"][name] = res;
    out["group_subtasks"][name] = ojson::array();
    out["versions"][name] = r.info.version;
    out["n-shot"][name] = r.info.num_fewshot;
    out["n-samples"][name] = {{"original", r.n_available}, {"effective", r.items.size()}};
    ojson metric_list = ojson::array(), filters = ojson::array();
    for (const auto& m : r.info.metrics) {
      metric_list.push_back({{"metric", m.name},
                             {"aggregation", "mean"},
                             {"higher_is_better", m.higher_is_better},
                             {"kind", metric_kind_name(m.kind)}});
      if (m.filter != "none" &&
          std::find(filters.begin(), filters.end(), m.filter) == filters.end())
        filters.push_back(m.filter);
    }
    ojson cfg = {{"task", name},
                 {"output_type", r.info.output_type},
                 {"description", r.info.description},
                 {"num_fewshot", r.info.num_fewshot},
                 {"metric_list", metric_list}};
    if (!filters.empty()) {
      ojson fl = ojson::array();
      for (const auto& f : filters) fl.push_back({{"name", f}});
      cfg["filter_list"] = fl;
    }
    cfg["metadata"] = {{"version", r.info.version}, {"prompt_format", r.prompt_format}};
    cfg["seconds"] = r.seconds;
    out["configs"][name] = cfg;
    if (with_samples) {
      ojson items = ojson::array();
      for (const auto& it : r.items) {
        ojson m = ojson::object();
        for (size_t k = 0; k < it.values.size(); ++k)
          m[r.info.metrics[k].id()] = number_or_null(it.values[k]);
        items.push_back({{"id", it.id},
                         {"doc_hash", it.doc_hash},
                         {"metrics", m},
                         {"prediction", it.prediction},
                         {"gold", it.gold}});
      }
      out["samples"][name] = items;
    }
  }
  for (const auto& g : run.groups) add_group_rows(out, g, results);
  out["config"] = run.config;
  out["model_name"] = run.model_name;
  out["chat_template"] = run.chat_template.empty() ? ojson(nullptr) : ojson(run.chat_template);
  out["date"] = run.date;
  // lm-eval writes this one as a string.
  out["total_evaluation_time_seconds"] = fmt::format("{}", run.seconds);
  return out;
}

std::vector<nlohmann::ordered_json> sample_lines(const TaskResult& task, const ItemRecord& item,
                                                 size_t doc_id, const std::string& path_label) {
  using ojson = nlohmann::ordered_json;
  const auto& metrics = task.info.metrics;
  std::vector<std::string> filters;
  for (const auto& m : metrics)
    if (std::find(filters.begin(), filters.end(), m.filter) == filters.end())
      filters.push_back(m.filter);
  // Every request's response, unwrapped: what a metric without a filter reads.
  ojson unfiltered = ojson::array();
  for (const auto& r : item.resps) unfiltered.push_back(r.empty() ? ojson() : ojson(r[0]));
  // lm-eval's target (a multiple-choice task's gold index), else the gold answer.
  const std::string target = item.details.is_object() && item.details.contains("target") &&
                                     item.details["target"].is_string()
                                 ? item.details["target"].get<std::string>()
                                 : item.gold;
  std::vector<ojson> out;
  for (const auto& f : filters) {
    ojson names = ojson::array(), kinds = ojson::object(), better = ojson::object();
    ojson filtered = unfiltered;
    ojson line = {{"doc_id", doc_id},
                  {"doc", {{"id", item.id}, {"gold", item.gold}}},
                  {"target", target},
                  {"arguments", ojson(item.arguments)},
                  {"resps", ojson(item.resps)}};
    for (size_t k = 0; k < metrics.size(); ++k) {
      if (metrics[k].filter != f) continue;
      names.push_back(metrics[k].name);
      kinds[metrics[k].id()] = metric_kind_name(metrics[k].kind);
      better[metrics[k].id()] = metrics[k].higher_is_better;
      // Generation tasks record what each metric's filter extracted.
      const auto& ex = item.details.is_object() ? item.details.value("extracted", nlohmann::json())
                                                : nlohmann::json();
      if (f != "none" && ex.is_object() && ex.contains(metrics[k].id()))
        filtered = ojson::array({ojson(ex[metrics[k].id()])});
    }
    line["filtered_resps"] = filtered;
    line["filter"] = f;
    line["metrics"] = names;
    line["doc_hash"] = item.doc_hash;
    line["prompt_hash"] = sha256_hex(item.prompt);
    line["target_hash"] = sha256_hex(target);
    for (size_t k = 0; k < metrics.size(); ++k)
      if (metrics[k].filter == f) line[metrics[k].name] = number_or_null(item.values[k]);
    line["task"] = task.info.name;
    line["id"] = item.id;
    line["metric_kinds"] = kinds;
    line["higher_is_better"] = better;
    line["path"] = path_label;
    line["prompt_format"] = task.prompt_format;
    line["prediction"] = item.prediction;
    line["details"] = ojson(item.details);
    out.push_back(std::move(line));
  }
  return out;
}

std::string summary_table(std::span<const TaskResult> results) {
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"task", "metric", "value", "stderr", "n"});
  for (const auto& r : results) {
    for (const auto& m : r.metrics)
      rows.push_back({r.info.name, m.info.id(), fmt::format("{:.4f}", m.value),
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

std::vector<TaskResult> evaluate_suite(std::span<const std::unique_ptr<Task>> tasks,
                                       LanguageModel& lm, const SuiteOptions& opts) {
  std::vector<TaskResult> results;
  size_t before = 0;  // items of the tasks already finished
  for (const auto& t : tasks) {
    EvalOptions eo;
    eo.limit = opts.limit;
    eo.batch_items = opts.batch_items;
    const std::string name = t->info().name;
    if (opts.progress) eo.progress = [&](size_t done) { opts.progress(before + done, name); };
    results.push_back(evaluate(*t, lm, eo));
    before += results.back().items.size();
    if (opts.on_task_done) opts.on_task_done(results.back());
  }
  return results;
}

size_t suite_items(std::span<const std::unique_ptr<Task>> tasks, size_t limit) {
  size_t total = 0;
  for (const auto& t : tasks) total += limit ? std::min(limit, t->size()) : t->size();
  return total;
}

void write_sample_lines(std::ostream& out, const TaskResult& task,
                        const std::function<std::string(const ItemRecord&)>& path_label) {
  for (size_t k = 0; k < task.items.size(); ++k)
    for (const auto& line : sample_lines(task, task.items[k], k, path_label(task.items[k])))
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  out.flush();
}

}  // namespace reprise::eval
