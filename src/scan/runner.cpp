#include "scan/runner.h"

#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <set>

#include "engine/prefix_cache.h"
#include "eval/evaluator.h"
#include "eval/registry.h"
#include "eval/session_lm.h"
#include "eval/stats.h"
#include "model/model.h"
#include "scan/analysis.h"
#include "scan/cluster.h"
#include "scan/store.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/sha256.h"
#include "util/stopwatch.h"
#include "util/thread_pool.h"

namespace reprise::scan {
namespace {

// Some of a task's items (the search set, or the held-out set), by index.
class SubsetTask : public eval::Task {
 public:
  SubsetTask(const eval::Task& base, const std::vector<size_t>& index)
      : base_(base), index_(index) {}
  const eval::TaskInfo& info() const override { return base_.info(); }
  size_t size() const override { return index_.size(); }
  std::string item_id(size_t i) const override { return base_.item_id(index_[i]); }
  std::string cluster_id(size_t i) const override { return base_.cluster_id(index_[i]); }
  std::vector<eval::Request> requests(size_t i) const override { return base_.requests(index_[i]); }
  eval::ItemScore score(size_t i, std::span<const eval::Response> r) const override {
    return base_.score(index_[i], r);
  }

 private:
  const eval::Task& base_;
  const std::vector<size_t>& index_;
};

std::vector<size_t> first_n(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Keeps the first config of each layer path (loop:i:j:2 runs the path of repeat:i:j).
std::vector<Config> unique_paths(const std::vector<Config>& configs, int n_layer) {
  std::vector<Config> out;
  std::set<std::string> seen;
  for (const Config& c : configs)
    if (seen.insert(c.path(n_layer).canonical()).second) out.push_back(c);
  return out;
}

// One config's outcome, as stored; JSON carries it between ranks (doubles round-trip exactly).
struct ConfigResult {
  ConfigRecord record;
  std::vector<ItemScore> scores;
  std::map<std::string, std::pair<int64_t, int64_t>> by_kind;  // ScanTotals::layer_evals_by_kind

  std::string to_json() const {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& s : scores) rows.push_back({s.task, s.item, s.metric, s.value});
    return nlohmann::json{{"key", record.key},
                          {"path", record.path},
                          {"phase", record.phase},
                          {"layer_evals", record.layer_evals},
                          {"layer_evals_full", record.layer_evals_full},
                          {"seconds", record.seconds},
                          {"by_kind", by_kind},
                          {"scores", rows}}
        .dump();
  }

  static ConfigResult from_json(const std::string& text) {
    const auto j = nlohmann::json::parse(text);
    ConfigResult r;
    r.record = {
        j.at("key"),    j.at("path"), j.at("phase"), j.at("layer_evals"), j.at("layer_evals_full"),
        j.at("seconds")};
    r.by_kind = j.at("by_kind").get<std::map<std::string, std::pair<int64_t, int64_t>>>();
    for (const auto& row : j.at("scores"))
      r.scores.push_back({row.at(0), row.at(1), row.at(2), row.at(3)});
    return r;
  }
};

class Scanner {
 public:
  Scanner(const ScanOptions& o, Cluster& cluster)
      : o_(o),
        cluster_(cluster),
        model_(Model::load(o.model)),
        n_layer_(model_->hparams().n_layer) {
    if (!model_->tokenizer())
      throw Error(
          fmt::format("{}: the model has no vocabulary; scans need text tasks", model_->path()));
    // Every option is checked before the store is touched, so a typo never leaves a store
    // behind that the corrected command would then refuse.
    if (o.strategy != "dense" && o.strategy != "coarse-to-fine" && o.strategy != "race" &&
        o.strategy != "beam")
      throw Error(fmt::format("--strategy: unknown '{}' (known: dense, coarse-to-fine, race, beam)",
                              o.strategy));
    check_beam_options(o.beam);
    if (!(o.race.alpha > 0 && o.race.alpha < 1))
      throw Error(fmt::format("--race-alpha must be in (0, 1), got {}", o.race.alpha));
    if (!(o.race.margin >= 0)) throw Error("--race-margin must be >= 0");
    if (!o.race.auto_clip && !(o.race.clip > 0)) throw Error("--race-clip must be > 0");
    race_schedule(1, o.race);  // checks --race-first and the growth
    if (o.validate < 0) throw Error(fmt::format("--validate must be >= 0, got {}", o.validate));
    if (o.controls < 0) throw Error(fmt::format("--controls must be >= 0, got {}", o.controls));
    if (o.coarse_stride < 0)
      throw Error(fmt::format("--stride must be >= 1 (0 = about N / 6), got {}", o.coarse_stride));
    stride_ = o.coarse_stride > 0 ? o.coarse_stride : std::max(1, n_layer_ / 6);
    // A beam's seed grid is coarse only when --stride is given.
    const bool coarse =
        o.strategy == "coarse-to-fine" || (o.strategy == "beam" && o.coarse_stride > 0);
    planned_ = unique_paths(
        coarse ? plan_coarse(n_layer_, o.plan, stride_) : plan_dense(n_layer_, o.plan), n_layer_);
    eval::TaskOptions to;
    to.seed = o.seed;
    for (const auto& name : eval::resolve_task_names(o.tasks))
      tasks_.push_back(eval::make_task(name, to));
    for (const auto& t : tasks_) {
      const size_t n = o.limit ? std::min(o.limit, t->size()) : t->size();
      search_.push_back(first_n(n));
      held_.push_back(o.validate ? held_out_items(*t, n) : std::vector<size_t>{});
    }
    if (o.routed) {
      if (o.validate <= 0)
        throw Error("--path auto:FILE is validated on held-out items: it needs --validate N");
      routed_ = o.routed(*model_, o.session);
      for (const std::string& k : routed_->candidate_keys()) {
        try {
          routed_candidates_.push_back(Config::from_key(k));
        } catch (const Error&) {
          throw Error(fmt::format(
              "{}: candidate '{}' is not a scan config, so it cannot be validated beside it",
              routed_->key(), k));
        }
      }
    }
    identity_ = identity();
    check_same_inputs_on_every_rank();
    if (cluster_.rank() == 0) open_store();

    cache_ = std::make_unique<PrefixCache>(*model_, LayerPath::identity(n_layer_), o.session,
                                           o.cache_bytes);
    eval::SessionLMOptions lo;
    lo.session = o.session;
    lm_ = std::make_unique<eval::SessionLM>(*model_, LayerPath::identity(n_layer_), lo);
    lm_->session().set_prefix_cache(cache_.get());
  }

  ScanTotals run() {
    if (cluster_.rank() != 0) {
      serve_root();
      return totals_;
    }
    ScanTotals t = run_root();
    if (cluster_.size() > 1) cluster_.broadcast(nlohmann::json{{"done", true}}.dump());
    return t;
  }

 private:
  std::vector<size_t> held_out_items(const eval::Task& t, size_t searched) {
    size_t skipped = 0;
    auto out = scan::held_out_items(t, searched, o_.validate_limit ? o_.validate_limit : searched,
                                    skipped);
    held_skipped_.push_back(skipped);
    return out;
  }

  void open_store() {
    explain_identity_mismatch();
    store_ = std::make_unique<Store>(o_.store);
    store_->bind_identity(identity_);
    nlohmann::json pm = nlohmann::json::array();
    for (const auto& t : tasks_) {
      const auto& m = t->info().metrics.at(0);
      pm.push_back({{"task", t->info().name},
                    {"metric", m.id()},
                    {"binary", m.kind == eval::MetricKind::Binary},
                    {"higher_is_better", m.higher_is_better}});
    }
    store_->set_meta("primary_metrics", pm.dump());
    store_->set_meta("model_name", std::filesystem::path(model_->path()).filename().string());
    store_->set_meta("n_layer", std::to_string(n_layer_));
    store_->set_meta("limit", std::to_string(o_.limit));
    std::vector<ItemCluster> clusters;
    for (size_t k = 0; k < tasks_.size(); ++k)
      for (const auto* index : {&search_[k], &held_[k]})
        for (size_t i : *index)
          clusters.push_back({tasks_[k]->info().name, tasks_[k]->item_id(i),
                              sha256_hex(tasks_[k]->cluster_id(i)).substr(0, 16)});
    store_->save_clusters(clusters);
  }

  // An existing store made for something else: say which option differs and how to start
  // afresh, in the user's terms (Store::bind_identity's message only names the internal key).
  void explain_identity_mismatch() const {
    if (!std::filesystem::exists(o_.store)) return;
    const Store old(o_.store);
    const std::string afresh =
        fmt::format("to start afresh, remove {} or pass another -o file", o_.store.string());
    auto stored = [&](const char* key) { return old.meta(key); };
    if (auto m = stored("model_sha256"); m && *m != identity_.at("model_sha256"))
      throw Error(fmt::format(
          "{}: this store holds a scan of another model (sha256 {}, this "
          "model {}); {}",
          o_.store.string(), m->substr(0, 12), identity_.at("model_sha256").substr(0, 12), afresh));
    if (auto t = stored("tasks"); t && *t != identity_.at("tasks")) {
      const auto was = nlohmann::json::parse(*t),
                 now = nlohmann::json::parse(identity_.at("tasks"));
      std::string what;
      auto describe = [](const nlohmann::json& def, const char* field) {
        std::string s;
        for (const auto& e : def)
          if (e.contains(field)) {
            if (!s.empty()) s += ',';  // not `"," + str`: GCC 12 -Wrestrict false positive
            s += e.at(field).dump();
          }
        return s;
      };
      for (const auto& [field, flag] : std::vector<std::pair<const char*, const char*>>{
               {"task", "--task"},
               {"search_items", "--limit (items searched per task)"},
               {"seed", "--seed"}})
        if (describe(was, field) != describe(now, field))
          what += fmt::format("{}{} is {} in the store, {} now", what.empty() ? "" : "; ", flag,
                              describe(was, field), describe(now, field));
      throw Error(fmt::format("{}: this store was made with other options: {}; {}",
                              o_.store.string(), what, afresh));
    }
    if (auto h = stored("items_sha256"); h && *h != identity_.at("items_sha256"))
      throw Error(
          fmt::format("{}: the task items differ from the store's (the data files "
                      "changed?); {}",
                      o_.store.string(), afresh));
  }

  // Every rank maps its own copy of the model and builds its own items: they must be the same
  // bytes as rank 0's, or the store would mix scores of different things.
  void check_same_inputs_on_every_rank() {
    if (cluster_.size() == 1) return;
    const auto root = nlohmann::json::parse(cluster_.broadcast(nlohmann::json(identity_).dump()))
                          .get<std::map<std::string, std::string>>();
    for (const auto& [key, value] : identity_)
      if (root.at(key) != value)
        throw Error(
            fmt::format("rank {}: {} differs from rank 0's ({} vs {}); every rank must "
                        "see the same model file and tasks",
                        cluster_.rank(), key, value, root.at(key)));
  }

  ScanTotals run_root() {
    const Stopwatch clock;
    std::vector<Config> search = {Config::baseline()};
    search.insert(search.end(), planned_.begin(), planned_.end());
    if (o_.strategy == "race")
      run_race(search);
    else
      run_phase("search", search, /*held_out=*/false);
    if (o_.strategy == "beam") run_beam();
    if (o_.strategy == "coarse-to-fine") {
      // The fine stage's configs are stored in the same "search" phase as the coarse ones, so
      // the report's corrections count every config either stage looked at.
      auto stats = analyze_phase(*store_, "search");
      std::vector<Config> seeds, done;
      for (const auto& c : stats.configs) done.push_back(c.config);
      for (Mode m : o_.plan.modes) {
        int taken = 0;
        for (const auto& c : ranked(stats))
          if (c.config.mode == m && taken < o_.refine_top) seeds.push_back(c.config), ++taken;
      }
      run_phase("search", plan_refine(n_layer_, o_.plan, seeds, std::max(1, stride_ / 2), done),
                false);
    }
    // Controls: the skip of each top repeat block, scored on the same items.
    if (o_.controls > 0) {
      std::vector<Config> controls;
      auto stats = analyze_phase(*store_, "search");
      int taken = 0;
      for (const auto& c : ranked(stats)) {
        if (taken >= o_.controls) break;
        if (c.config.mode != Mode::Repeat && c.config.mode != Mode::Loop) continue;
        ++taken;
        Config skip{Mode::Skip, c.config.i, c.config.j, 0};
        if (skip.j - skip.i < n_layer_ && !store_->is_done(skip.key(), "search"))
          controls.push_back(skip);
      }
      run_phase("search", controls, /*held_out=*/false);
    }
    if (o_.validate > 0) {
      store_->bind_identity({{"validate_items_sha256", items_hash(/*held_out=*/true)}});
      nlohmann::json held = nlohmann::json::array();
      for (size_t k = 0; k < tasks_.size(); ++k)
        held.push_back({{"task", tasks_[k]->info().name},
                        {"items", held_[k].size()},
                        {"skipped", held_skipped_[k]}});
      store_->set_meta("held_out", held.dump());
      std::vector<Config> val = {Config::baseline()};
      auto stats = analyze_phase(*store_, "search");
      for (const auto& c : ranked(stats))
        if (static_cast<int>(val.size()) <= o_.validate && c.config.mode != Mode::Skip)
          val.push_back(c.config);
      // A router's candidates too, so its held-out table has every one of them (the oracle).
      val.insert(val.end(), routed_candidates_.begin(), routed_candidates_.end());
      run_phase("validate", val, /*held_out=*/true);
      if (routed_) score_routed();
    }
    totals_.seconds = clock.seconds();
    if (const PackedWeights* pw = lm_->session().packed_weights())
      totals_.packed_weights = pw->describe();
    return totals_;
  }

  // --strategy race (scan/race.h): look k scores the still-running configs on the next batch of
  // items as phase "race:k"; a look whose phase is already in the store is only re-read, and the
  // drops follow from the stored scores alone, so a killed race resumes where it stopped. The
  // survivors' scores of every batch become their "search" phase, which is all the analysis (and
  // its Holm family) sees; the dropped configs are listed, with the race options and the item
  // counts, in the meta key "race".
  void run_race(const std::vector<Config>& configs) {
    size_t n_max = 0;
    for (const auto& s : search_) n_max = std::max(n_max, s.size());
    const std::vector<size_t> schedule = race_schedule(n_max, o_.race);
    std::vector<Config> alive = configs;  // alive[0] is the baseline
    nlohmann::json dropped = nlohmann::json::array();
    int64_t item_evals = 0;
    for (size_t look = 0; look < schedule.size(); ++look) {
      window_ = {look ? schedule[look - 1] : 0, schedule[look]};
      for (const auto& s : search_)
        item_evals += static_cast<int64_t>(alive.size()) *
                      static_cast<int64_t>(std::min(window_.second, s.size()) -
                                           std::min(window_.first, s.size()));
      run_phase(fmt::format("race:{}", look + 1), alive, /*held_out=*/false);
      if (look + 1 == schedule.size()) break;
      const RaceLook diffs = race_differences(alive, static_cast<int>(look) + 1);
      std::vector<std::string> names;
      for (size_t c = 1; c < alive.size(); ++c) names.push_back(alive[c].key());
      const auto drops = race_look(diffs.rows, names, configs.size() - 1, diffs.skip, o_.race);
      std::set<size_t> out;
      for (const auto& d : drops) {
        const Config& c = alive[d.config + 1];
        dropped.push_back({{"key", c.key()},
                           {"path", c.path(n_layer_).canonical()},
                           {"n", schedule[look]},
                           {"reason", d.reason}});
        out.insert(d.config + 1);
      }
      std::vector<Config> next;
      for (size_t c = 0; c < alive.size(); ++c)
        if (!out.count(c)) next.push_back(alive[c]);
      alive = std::move(next);
    }
    window_ = {0, std::numeric_limits<size_t>::max()};
    std::vector<std::string> phases;
    for (size_t look = 0; look < schedule.size(); ++look)
      phases.push_back(fmt::format("race:{}", look + 1));
    for (const Config& c : alive) gather_into_search(c, phases);
    int64_t dense = 0;
    for (const auto& s : search_) dense += static_cast<int64_t>(configs.size() * s.size());
    store_->set_meta("race",
                     nlohmann::json{{"alpha", o_.race.alpha},
                                    {"margin", o_.race.margin},
                                    {"clip", o_.race.auto_clip ? nlohmann::json("auto")
                                                               : nlohmann::json(o_.race.clip)},
                                    {"keep", o_.race.keep},
                                    {"schedule", schedule},
                                    {"item_evals", item_evals},
                                    {"dense_item_evals", dense},
                                    {"dropped", dropped}}
                         .dump());
  }

  // Copies a config's scores of `phases` (missing ones included) into the phase "search", which is
  // all the analysis sees, unless it is there already. The cost sits in `phases`; this record only
  // gathers the scores.
  void gather_into_search(const Config& c, const std::vector<std::string>& phases) {
    if (store_->is_done(c.key(), "search")) return;
    std::vector<ItemScore> scores;
    for (const std::string& phase : phases) {
      for (auto& sc : store_->scores(c.key(), phase)) scores.push_back(std::move(sc));
      for (const auto& [key, sc] : store_->missing(phase))
        if (key == c.key()) scores.push_back({sc.task, sc.item, sc.metric, NAN});
    }
    store_->save_config({c.key(), c.path(n_layer_).canonical(), "search", 0, 0, 0}, scores);
  }

  // --strategy beam (scan/beam.h): round d scores its chosen multi-block configs as phase
  // "beam:d" and then gathers them into "search", so the analysis, the controls, --validate and
  // the Holm family treat them like grid configs. Each round is recomputed from the seeds and the
  // earlier rounds' phases alone (never from "search", which the controls extend later), so a
  // killed beam resumes to the same rounds; the seeds are the single-block configs of "search"
  // when the beam first started (meta "beam_seeds"), i.e. the grid or an earlier scan's search.
  void run_beam() {
    std::vector<std::string> seed_keys;
    if (auto m = store_->meta("beam_seeds")) {
      seed_keys = nlohmann::json::parse(*m).get<std::vector<std::string>>();
    } else {
      for (const auto& r : store_->configs("search"))
        if (r.key != "baseline" && Config::from_key(r.key).mode != Mode::Multi)
          seed_keys.push_back(r.key);
      store_->set_meta("beam_seeds", nlohmann::json(seed_keys).dump());
    }
    std::vector<Config> scored = {Config::baseline()}, blocks;
    std::vector<std::pair<std::string, std::string>> stored = {{"baseline", "search"}};
    for (const auto& k : seed_keys) {
      blocks.push_back(Config::from_key(k));
      scored.push_back(blocks.back());
      stored.push_back({k, "search"});
    }
    std::vector<double> targets = beam_targets(*store_, stored);
    const BeamOptions& bo = o_.beam;
    nlohmann::json rounds = nlohmann::json::array();
    for (int d = 1; d <= bo.depth; ++d) {
      std::vector<size_t> order(scored.size() - 1);  // every scored config but the baseline
      for (size_t r = 0; r < order.size(); ++r) order[r] = r + 1;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return targets[a] > targets[b]; });
      std::vector<Config> beam;
      nlohmann::json beam_keys = nlohmann::json::array();
      for (size_t r = 0; r < order.size() && static_cast<int>(r) < bo.width; ++r) {
        beam.push_back(scored[order[r]]);
        beam_keys.push_back(beam.back().key());
      }
      std::vector<std::string> seen;
      for (const Config& c : scored) seen.push_back(c.path(n_layer_).canonical());
      const auto candidates = expand_beam(n_layer_, beam, blocks, d + 1, seen);
      if (candidates.empty()) break;
      const BeamChoice ch =
          choose_candidates(n_layer_, scored, targets, candidates, bo, o_.seed + uint64_t(d));
      auto rho = [](double r) {
        return std::isnan(r) ? std::string("n/a") : fmt::format("{:.3f}", r);
      };
      fmt::print(stderr,
                 "beam round {}: {} candidates from {} paths; held-out rho ({}-fold, {} scored "
                 "configs): ridge {}, knn {}; {}; scoring {}\n",
                 d, candidates.size(), beam.size(), bo.folds, scored.size(), rho(ch.rho_ridge),
                 rho(ch.rho_knn),
                 ch.trusted ? fmt::format("{} surrogate trusted", ch.model)
                            : fmt::format("{} rho below {}: surrogate NOT trusted, candidates "
                                          "ranked by the sum of their blocks' scores",
                                          ch.model, bo.min_rho),
                 ch.chosen.size());
      std::fflush(stderr);
      const std::string phase = fmt::format("beam:{}", d);
      run_phase(phase, ch.chosen, /*held_out=*/false);
      std::vector<std::pair<std::string, std::string>> now;
      for (const Config& c : ch.chosen) {
        gather_into_search(c, {phase});
        now.push_back({c.key(), phase});
      }
      const std::vector<double> measured = beam_targets(*store_, now);
      nlohmann::json keys = nlohmann::json::array();
      for (size_t r = 0; r < ch.chosen.size(); ++r) {
        keys.push_back({{"key", ch.chosen[r].key()},
                        {"predicted", ch.predicted[r]},
                        {"measured", measured[r]}});
        scored.push_back(ch.chosen[r]);
        targets.push_back(measured[r]);
      }
      const size_t best = static_cast<size_t>(std::max_element(targets.begin() + 1, targets.end()) -
                                              targets.begin());
      auto finite = [](double r) { return std::isnan(r) ? nlohmann::json() : nlohmann::json(r); };
      rounds.push_back({{"round", d},
                        {"beam", beam_keys},
                        {"candidates", candidates.size()},
                        {"trained_on", scored.size() - ch.chosen.size()},
                        {"rho_ridge", finite(ch.rho_ridge)},
                        {"rho_knn", finite(ch.rho_knn)},
                        {"model", ch.model},
                        {"rho", finite(ch.rho)},
                        {"trusted", ch.trusted},
                        {"scored", keys},
                        {"rho_scored", finite(eval::spearman(ch.predicted, measured))},
                        {"best", scored[best].key()},
                        {"best_target", targets[best]}});
    }
    store_->set_meta("beam", nlohmann::json{{"width", bo.width},
                                            {"depth", bo.depth},
                                            {"score", bo.score},
                                            {"min_rho", bo.min_rho},
                                            {"surrogate", bo.surrogate},
                                            {"folds", bo.folds},
                                            {"seeds", seed_keys.size()},
                                            {"rounds", rounds}}
                                 .dump());
  }

  // Per still-running config (alive[1..]), its signed per-item differences to the baseline
  // (alive[0]) over the race phases 1..looks with their bounds (scan/race.h), and how many leading
  // items only chose the fitted bounds (the first batch, under --race-clip auto with a
  // continuous metric; none and no fitted bounds otherwise).
  // Items follow one fixed order (phase by phase, then by task and item id) that each look only
  // extends, as the confidence sequence needs. An item either side could not score counts as no
  // difference.
  struct RaceLook {
    std::vector<RaceEvidence> rows;
    size_t skip = 0;
  };
  RaceLook race_differences(const std::vector<Config>& alive, int looks) {
    std::map<std::string, const eval::MetricInfo*> primary;
    for (const auto& t : tasks_) primary[t->info().name] = &t->info().metrics.at(0);
    using Key = std::pair<std::string, std::string>;  // task, item
    // A config's primary-metric scores of the looks so far; `first_batch`: how many of them the
    // first look gave.
    auto load = [&](const Config& c, size_t* first_batch = nullptr) {
      std::vector<std::pair<Key, double>> v;
      for (int k = 1; k <= looks; ++k) {
        for (const auto& sc : store_->scores(c.key(), fmt::format("race:{}", k)))
          if (sc.metric == primary.at(sc.task)->name) v.push_back({{sc.task, sc.item}, sc.value});
        if (k == 1 && first_batch) *first_batch = v.size();
      }
      return v;
    };
    size_t first_batch = 0;
    const auto base = load(alive[0], &first_batch);
    bool continuous = false;
    for (const auto& [task, m] : primary) continuous |= m->kind != eval::MetricKind::Binary;
    RaceLook out;
    out.skip = o_.race.auto_clip && continuous ? first_batch : 0;
    for (size_t c = 1; c < alive.size(); ++c) {
      const auto loaded = load(alive[c]);
      const std::map<Key, double> mine(loaded.begin(), loaded.end());
      RaceEvidence e;
      for (const auto& [item, b] : base) {
        const eval::MetricInfo& m = *primary.at(item.first);
        auto it = mine.find(item);
        double x = it == mine.end() || std::isnan(it->second) || std::isnan(b) ? 0 : it->second - b;
        e.diff.push_back(m.higher_is_better ? x : -x);
      }
      // Bounds: 1 for 0/1 metrics; for others the clip and, fitted to this config (auto), the
      // race_bound of its first-batch differences on the task.
      std::map<std::string, std::vector<double>> first;
      for (size_t i = 0; i < out.skip; ++i) first[base[i].first.first].push_back(e.diff[i]);
      std::map<std::string, double> fitted;
      for (const auto& [task, m] : primary)
        fitted[task] = m->kind == eval::MetricKind::Binary ? 1 : race_bound(first[task], o_.race);
      for (const auto& [item, b] : base) {
        const bool binary = primary.at(item.first)->kind == eval::MetricKind::Binary;
        e.clip.push_back(binary ? 1 : o_.race.clip);
        if (out.skip > 0) e.bound.push_back(fitted.at(item.first));
      }
      out.rows.push_back(std::move(e));
    }
    return out;
  }

  // Fingerprint of the requests of the search (or held-out) items of every task.
  std::string items_hash(bool held_out) const {
    Sha256 items;
    for (size_t k = 0; k < tasks_.size(); ++k)
      for (size_t i : held_out ? held_[k] : search_[k])
        items.update(eval::doc_hash(tasks_[k]->info().name, tasks_[k]->requests(i), "") + ";");
    return items.hex_digest();
  }

  // What must not change between runs on one store. The held-out set is bound separately when
  // validation first runs, so --validate can be added to a finished search.
  std::map<std::string, std::string> identity() const {
    nlohmann::json def = nlohmann::json::array();
    for (size_t k = 0; k < tasks_.size(); ++k)
      def.push_back({{"task", tasks_[k]->info().name}, {"search_items", search_[k].size()}});
    def.push_back({{"seed", o_.seed}});
    return {{"model_sha256", model_fingerprint(*model_)},
            {"tasks", def.dump()},
            {"items_sha256", items_hash(/*held_out=*/false)}};
  }

  // Rank 0: scores the configs of one phase not yet in the store. With several ranks, config k
  // of the list goes to rank k mod R; rank 0 stores its own results and the others' as they come.
  void run_phase(const std::string& phase, const std::vector<Config>& listed, bool held_out) {
    const std::vector<Config> configs = unique_paths(listed, n_layer_);
    std::optional<Progress> progress;
    if (!o_.quiet) {
      progress.emplace(configs.size(), "configs");
      progress->log_every_update();  // configs are few and slow: a log line for each
    }
    size_t done = 0, skipped = 0;
    auto tick = [&](const std::string& label, bool ran) {
      ++done;
      if (!ran) ++skipped;
      if (progress) progress->update(done, label, skipped);
    };
    std::vector<Config> todo;
    for (const Config& c : configs) {
      if (store_->is_done(c.key(), phase)) {
        ++totals_.configs_skipped;
        tick(c.key(), /*ran=*/false);
      } else {
        todo.push_back(c);
      }
    }
    if (todo.empty()) {
      if (progress) progress->finish();
      return;
    }
    const int ranks = cluster_.size();
    if (ranks > 1) {
      nlohmann::json keys = nlohmann::json::array();
      for (const Config& c : todo) keys.push_back(c.key());
      cluster_.broadcast(nlohmann::json{
          {"phase", phase},
          {"held_out", held_out},
          {"window", {window_.first, window_.second}},
          {"configs", keys}}.dump());
    }
    auto keep = [&](const ConfigResult& r) {
      store_->save_config(r.record, r.scores);
      std::set<std::pair<std::string, std::string>> items;
      for (const auto& sc : r.scores) items.emplace(sc.task, sc.item);
      if (!held_out) totals_.item_evals += static_cast<int64_t>(items.size());
      totals_.layer_evals += r.record.layer_evals;
      totals_.layer_evals_full += r.record.layer_evals_full;
      for (const auto& [kind, e] : r.by_kind) {
        totals_.layer_evals_by_kind[kind].first += e.first;
        totals_.layer_evals_by_kind[kind].second += e.second;
      }
      ++totals_.configs_run;
      tick(r.record.key, /*ran=*/true);
    };
    size_t from_others = 0, expected_from_others = 0;
    for (size_t k = 0; k < todo.size(); ++k) {
      if (k % ranks != 0) {
        ++expected_from_others;
        continue;
      }
      keep(score_config(todo[k], phase, held_out));
      for (std::optional<std::string> m; (m = cluster_.receive(/*wait=*/false)); ++from_others)
        keep(ConfigResult::from_json(*m));
    }
    for (; from_others < expected_from_others; ++from_others)
      keep(ConfigResult::from_json(*cluster_.receive(/*wait=*/true)));
    if (progress) progress->finish();
  }

  // Ranks other than 0: score this rank's share of each phase rank 0 announces, until it says
  // the scan is done.
  void serve_root() {
    const int rank = cluster_.rank(), ranks = cluster_.size();
    for (;;) {
      const auto msg = nlohmann::json::parse(cluster_.broadcast(""));
      if (msg.contains("done")) break;
      const auto& keys = msg.at("configs");
      window_ = {msg.at("window").at(0).get<size_t>(), msg.at("window").at(1).get<size_t>()};
      for (size_t k = static_cast<size_t>(rank); k < keys.size(); k += static_cast<size_t>(ranks))
        cluster_.send_to_root(score_config(Config::from_key(keys[k].get<std::string>()),
                                           msg.at("phase").get<std::string>(),
                                           msg.at("held_out").get<bool>())
                                  .to_json());
    }
    cluster_.flush();
  }

  // The routed entry on the held-out items (rank 0 alone: one entry, not a list to share). Its
  // choices and description are written before its scores, whose "done" mark comes last.
  void score_routed() {
    const std::string key = routed_->key();
    if (store_->is_done(key, kRoutedPhase)) {
      ++totals_.configs_skipped;
      return;
    }
    const Stopwatch clock;
    std::vector<ItemScore> scores;
    nlohmann::json choices = nlohmann::json::array();
    for (size_t k = 0; k < tasks_.size(); ++k) {
      if (held_[k].empty()) continue;
      SubsetTask subset(*tasks_[k], held_[k]);
      eval::TaskResult r = eval::evaluate(subset, routed_->lm());
      const auto& metrics = tasks_[k]->info().metrics;
      for (const auto& item : r.items) {
        for (size_t m = 0; m < metrics.size() && m < item.values.size(); ++m)
          scores.push_back({tasks_[k]->info().name, item.id, metrics[m].id(), item.values[m]});
        choices.push_back({{"task", tasks_[k]->info().name},
                           {"item", item.id},
                           {"candidate", routed_->chosen(item.prompt)}});
      }
    }
    ConfigRecord rec;
    rec.key = key;
    rec.path = key;  // not one layer path: each item took its own (meta "routed")
    rec.phase = kRoutedPhase;
    rec.seconds = clock.seconds();
    nlohmann::json meta = routed_->describe();
    meta["key"] = key;
    meta["seconds"] = rec.seconds;
    meta["choices"] = std::move(choices);
    store_->set_meta("routed", meta.dump());
    store_->save_config(rec, scores);
    ++totals_.configs_run;
  }

  ConfigResult score_config(const Config& c, const std::string& phase, bool held_out) {
    const Stopwatch clock;
    LayerPath path = c.path(n_layer_);
    lm_->set_path(path);
    Session& s = lm_->session();
    const int64_t evals0 = s.layer_evals(), tokens0 = s.tokens_run(),
                  base0 = cache_->baseline_evals();
    ConfigResult out;
    for (size_t k = 0; k < tasks_.size(); ++k) {
      const std::vector<size_t>& all = held_out ? held_[k] : search_[k];
      const std::vector<size_t> items(all.begin() + std::min(window_.first, all.size()),
                                      all.begin() + std::min(window_.second, all.size()));
      if (items.empty()) continue;
      SubsetTask subset(*tasks_[k], items);
      const int64_t done0 = s.layer_evals() + cache_->baseline_evals(), run0 = s.tokens_run();
      eval::TaskResult r = eval::evaluate(subset, *lm_);
      auto& kind = out.by_kind[tasks_[k]->info().output_type];
      kind.first += s.layer_evals() + cache_->baseline_evals() - done0;
      kind.second += (s.tokens_run() - run0) * path.size();
      const auto& metrics = tasks_[k]->info().metrics;
      for (const auto& item : r.items)
        for (size_t m = 0; m < metrics.size() && m < item.values.size(); ++m)
          out.scores.push_back({tasks_[k]->info().name, item.id, metrics[m].id(), item.values[m]});
    }
    ConfigRecord& rec = out.record;
    rec.key = c.key();
    rec.path = path.canonical();
    rec.phase = phase;
    rec.layer_evals = (s.layer_evals() - evals0) + (cache_->baseline_evals() - base0);
    rec.layer_evals_full = (s.tokens_run() - tokens0) * path.size();
    rec.seconds = clock.seconds();
    return out;
  }

  const ScanOptions& o_;
  Cluster& cluster_;
  std::unique_ptr<Model> model_;
  int n_layer_;
  std::vector<std::unique_ptr<eval::Task>> tasks_;
  std::vector<std::vector<size_t>> search_, held_;  // item indices per task
  std::vector<size_t> held_skipped_;  // held-out candidates skipped as repeats of searched items
  int stride_ = 1;                    // coarse grid stride
  std::vector<Config> planned_;       // the search's configs (coarse stage: its grid)
  std::map<std::string, std::string> identity_;
  std::unique_ptr<Store> store_;  // rank 0 only
  std::unique_ptr<PrefixCache> cache_;
  std::unique_ptr<eval::SessionLM> lm_;
  std::unique_ptr<RoutedEntry> routed_;  // --path auto:FILE
  std::vector<Config> routed_candidates_;
  ScanTotals totals_;
  // Positions [first, second) of each task's item list that score_config scores (race batches).
  std::pair<size_t, size_t> window_{0, std::numeric_limits<size_t>::max()};
};

}  // namespace

std::vector<size_t> held_out_items(const eval::Task& t, size_t searched, size_t want,
                                   size_t& skipped) {
  std::set<std::string> seen_text, search_units;
  for (size_t i = 0; i < searched; ++i) {
    seen_text.insert(eval::doc_hash("", t.requests(i), ""));
    search_units.insert(t.cluster_id(i));
  }
  std::vector<size_t> out;
  skipped = 0;
  for (size_t i = searched; i < t.size() && out.size() < want; ++i) {
    if (search_units.count(t.cluster_id(i)) ||
        !seen_text.insert(eval::doc_hash("", t.requests(i), "")).second) {
      ++skipped;
      continue;
    }
    out.push_back(i);
  }
  if (out.size() < want)
    throw Error(
        fmt::format("--validate needs {} held-out items of {} distinct from the {} "
                    "searched, but it has only {} ({} more repeat a searched item's text "
                    "or unit); lower --limit or --validate-limit",
                    want, t.info().name, searched, out.size(), skipped));
  return out;
}

std::string model_fingerprint(const Model& m) {
  if (m.gguf()) return sha256_file(m.path());
  Sha256 h;
  for (const auto& f : std::filesystem::directory_iterator(std::filesystem::path(m.path())))
    if (f.path().extension() == ".safetensors" || f.path().filename() == "config.json")
      h.update(f.path().filename().string() + ":" + sha256_file(f.path()) + ";");
  return h.hex_digest();
}

ScanTotals run_scan(const ScanOptions& opts, Cluster& cluster) {
  return Scanner(opts, cluster).run();
}

ScanTotals run_scan(const ScanOptions& opts) {
  return run_scan(opts, *Cluster::single());
}

std::string describe(const ScanTotals& totals) {
  std::string out = fmt::format(
      "this run: {} configs scored, {} already in the store; {} item evaluations; {:.1f} s\n",
      totals.configs_run, totals.configs_skipped, totals.item_evals, totals.seconds);
  for (const auto& [kind, e] : totals.layer_evals_by_kind)
    out +=
        fmt::format("prefix reuse, {}: {} layer evaluations instead of {} ({:.2f}x fewer)\n", kind,
                    e.first, e.second, e.first > 0 ? double(e.second) / double(e.first) : 0.0);
  if (!totals.packed_weights.empty()) out += totals.packed_weights + "\n";
  return out;
}

std::optional<ScanTotals> run_scan_in_job(ScanOptions opts) {
  auto cluster = Cluster::from_environment();
  if (opts.session.n_threads == 0 && cluster->local_size() > 1)  // share this machine's cores
    opts.session.n_threads = std::max(1, ThreadPool::default_threads() / cluster->local_size());
  ScanTotals totals;
  try {
    totals = run_scan(opts, *cluster);
  } catch (const std::exception& e) {
    if (cluster->size() == 1) throw;
    fmt::print(stderr, "reprise: error: rank {}: {}\n", cluster->rank(), e.what());
    std::fflush(stderr);
    cluster->abort(2);
  }
  if (cluster->rank() != 0) return std::nullopt;
  return totals;
}

}  // namespace reprise::scan
