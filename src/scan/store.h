// The scan's results store: one SQLite file (WAL mode) holding every per-item score of every
// config, per-config aggregates, and what the scan was run on.
//
// A config's scores are written in one transaction together with its "done" mark, so a scan
// killed at any moment (kill -9 included) loses at most the config in flight, and re-running
// the same command resumes with the first config not done. A store made for another model or
// another task definition is refused.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace reprise::scan {

// One score of one item under one config.
struct ItemScore {
  std::string task;
  std::string item;    // stable item id within the task
  std::string metric;  // e.g. "acc", "loglik_mean"
  double value = 0;
};

// The unit an item shares with other items (eval::Task::cluster_id), for cluster bootstraps.
struct ItemCluster {
  std::string task, item, cluster;
};

struct ConfigRecord {
  std::string key;               // Config::key()
  std::string path;              // canonical layer path
  std::string phase;             // "search", "validate", "control"
  int64_t layer_evals = 0;       // layer evaluations actually run (with prefix reuse)
  int64_t layer_evals_full = 0;  // what a per-config run from the embeddings would cost
  double seconds = 0;
};

class Store {
 public:
  // Opens or creates the store. Throws Error naming the path if it cannot be opened or
  // written (e.g. an unwritable directory).
  explicit Store(const std::filesystem::path& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // Records identity metadata the first time; later, checks it is unchanged and throws Error
  // naming the key and both values if not (e.g. a store from another model).
  void bind_identity(const std::map<std::string, std::string>& identity);
  // Free-form metadata (options echo, timings), overwritten each run.
  void set_meta(const std::string& key, const std::string& value);
  std::optional<std::string> meta(const std::string& key) const;
  std::map<std::string, std::string> all_meta() const;

  bool is_done(const std::string& config_key, const std::string& phase) const;
  // Writes all scores of one config and marks it done, atomically. A NaN score (an item the
  // metric cannot score, e.g. an empty text) is recorded as missing, not as a score.
  void save_config(const ConfigRecord& rec, const std::vector<ItemScore>& scores);
  // The scores save_config recorded as missing in `phase` (value NaN), by config then item.
  std::vector<std::pair<std::string, ItemScore>> missing(const std::string& phase) const;

  // Cluster ids of items (written once per item; a later write for the same item replaces it).
  void save_clusters(const std::vector<ItemCluster>& clusters);
  // (task, item) -> cluster; items never given one are absent.
  std::map<std::pair<std::string, std::string>, std::string> clusters() const;

  std::vector<ConfigRecord> configs(const std::string& phase = "") const;
  // Scores of one config, ordered by task, item, metric.
  std::vector<ItemScore> scores(const std::string& config_key, const std::string& phase) const;

 private:
  void exec(const std::string& sql) const;
  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back and rethrows if it throws.
  void in_transaction(const std::function<void()>& body);

  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace reprise::scan
