#include "scan/store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cmath>
#include <functional>
#include <limits>

#include "util/error.h"

namespace reprise::scan {
namespace {

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
      throw Error(fmt::format("{}: {}", path, sqlite3_errmsg(db)));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int k, const std::string& v) {
    sqlite3_bind_text(stmt_, k, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int k, int64_t v) {
    sqlite3_bind_int64(stmt_, k, v);
    return *this;
  }
  Statement& bind(int k, double v) {
    sqlite3_bind_double(stmt_, k, v);
    return *this;
  }
  // Returns true while rows come; throws on error.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) {
      sqlite3_reset(stmt_);
      return false;
    }
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_reset(stmt_);
    throw Error(fmt::format("{}: cannot write the scan store: {}", path_, msg));
  }
  std::string text(int col) const {
    auto* p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string path_;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
  key TEXT NOT NULL, phase TEXT NOT NULL, path TEXT NOT NULL,
  layer_evals INTEGER NOT NULL, layer_evals_full INTEGER NOT NULL, seconds REAL NOT NULL,
  PRIMARY KEY (key, phase));
CREATE TABLE IF NOT EXISTS scores (
  config TEXT NOT NULL, phase TEXT NOT NULL, task TEXT NOT NULL, item TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (config, phase, task, item, metric));
CREATE TABLE IF NOT EXISTS missing (
  config TEXT NOT NULL, phase TEXT NOT NULL, task TEXT NOT NULL, item TEXT NOT NULL,
  metric TEXT NOT NULL, PRIMARY KEY (config, phase, task, item, metric));
CREATE TABLE IF NOT EXISTS clusters (
  task TEXT NOT NULL, item TEXT NOT NULL, cluster TEXT NOT NULL, PRIMARY KEY (task, item));
)sql";

}  // namespace

Store::Store(const std::filesystem::path& path) : path_(path.string()) {
  int rc =
      sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(fmt::format("{}: cannot open the scan store: {}", path_, msg));
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    // Probe that this is a database at all before changing its journal mode.
    exec("SELECT count(*) FROM sqlite_master");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec(kSchema);
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Store::~Store() {
  if (db_) sqlite3_close(db_);
}

void Store::in_transaction(const std::function<void()>& body) {
  exec("BEGIN IMMEDIATE");
  try {
    body();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Store::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error(fmt::format("{}: scan store error: {}", path_, msg));
  }
}

void Store::bind_identity(const std::map<std::string, std::string>& identity) {
  in_transaction([&] {
    for (const auto& [key, value] : identity) {
      Statement q(db_, "SELECT value FROM identity WHERE key = ?", path_);
      q.bind(1, key);
      if (q.step()) {
        std::string stored = q.text(0);
        if (stored != value)
          throw Error(
              fmt::format("{}: this store was made with {} = '{}', not '{}'; use another "
                          "-o file",
                          path_, key, stored, value));
      } else {
        Statement ins(db_, "INSERT INTO identity (key, value) VALUES (?, ?)", path_);
        ins.bind(1, key).bind(2, value).step();
      }
    }
  });
}

void Store::set_meta(const std::string& key, const std::string& value) {
  Statement q(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", path_);
  q.bind(1, key).bind(2, value).step();
}

std::optional<std::string> Store::meta(const std::string& key) const {
  for (const char* table : {"identity", "meta"}) {
    Statement q(db_, fmt::format("SELECT value FROM {} WHERE key = ?", table), path_);
    q.bind(1, key);
    if (q.step()) return q.text(0);
  }
  return std::nullopt;
}

std::map<std::string, std::string> Store::all_meta() const {
  std::map<std::string, std::string> out;
  for (const char* table : {"meta", "identity"}) {
    Statement q(db_, fmt::format("SELECT key, value FROM {}", table), path_);
    while (q.step()) out[q.text(0)] = q.text(1);
  }
  return out;
}

bool Store::is_done(const std::string& config_key, const std::string& phase) const {
  Statement q(db_, "SELECT 1 FROM configs WHERE key = ? AND phase = ?", path_);
  q.bind(1, config_key).bind(2, phase);
  bool found = q.step();
  if (found) q.step();
  return found;
}

void Store::save_config(const ConfigRecord& rec, const std::vector<ItemScore>& scores) {
  in_transaction([&] {
    for (const char* table : {"scores", "missing"}) {
      Statement del(db_, fmt::format("DELETE FROM {} WHERE config = ? AND phase = ?", table),
                    path_);
      del.bind(1, rec.key).bind(2, rec.phase).step();
    }
    Statement ins(db_,
                  "INSERT INTO scores (config, phase, task, item, metric, value) "
                  "VALUES (?, ?, ?, ?, ?, ?)",
                  path_);
    // SQLite stores NaN as NULL, which the NOT NULL column refuses: NaN goes to `missing`.
    Statement miss(db_,
                   "INSERT INTO missing (config, phase, task, item, metric) VALUES (?, ?, ?, ?, ?)",
                   path_);
    for (const auto& s : scores) {
      Statement& q = std::isnan(s.value) ? miss : ins;
      q.bind(1, rec.key).bind(2, rec.phase).bind(3, s.task).bind(4, s.item).bind(5, s.metric);
      if (!std::isnan(s.value)) q.bind(6, s.value);
      q.step();
    }
    Statement cfg(db_,
                  "INSERT OR REPLACE INTO configs (key, phase, path, layer_evals, "
                  "layer_evals_full, seconds) VALUES (?, ?, ?, ?, ?, ?)",
                  path_);
    cfg.bind(1, rec.key).bind(2, rec.phase).bind(3, rec.path).bind(4, rec.layer_evals);
    cfg.bind(5, rec.layer_evals_full).bind(6, rec.seconds).step();
  });
}

std::vector<ConfigRecord> Store::configs(const std::string& phase) const {
  Statement q(db_,
              "SELECT key, path, phase, layer_evals, layer_evals_full, seconds FROM configs "
              "WHERE ? = '' OR phase = ? ORDER BY rowid",
              path_);
  q.bind(1, phase).bind(2, phase);
  std::vector<ConfigRecord> out;
  while (q.step())
    out.push_back({q.text(0), q.text(1), q.text(2), q.integer(3), q.integer(4), q.real(5)});
  return out;
}

std::vector<std::pair<std::string, ItemScore>> Store::missing(const std::string& phase) const {
  Statement q(db_,
              "SELECT config, task, item, metric FROM missing WHERE phase = ? "
              "ORDER BY config, task, item, metric",
              path_);
  q.bind(1, phase);
  std::vector<std::pair<std::string, ItemScore>> out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  while (q.step()) out.push_back({q.text(0), {q.text(1), q.text(2), q.text(3), nan}});
  return out;
}

void Store::save_clusters(const std::vector<ItemCluster>& clusters) {
  in_transaction([&] {
    Statement ins(db_, "INSERT OR REPLACE INTO clusters (task, item, cluster) VALUES (?, ?, ?)",
                  path_);
    for (const auto& c : clusters) ins.bind(1, c.task).bind(2, c.item).bind(3, c.cluster).step();
  });
}

std::map<std::pair<std::string, std::string>, std::string> Store::clusters() const {
  Statement q(db_, "SELECT task, item, cluster FROM clusters", path_);
  std::map<std::pair<std::string, std::string>, std::string> out;
  while (q.step()) out[{q.text(0), q.text(1)}] = q.text(2);
  return out;
}

std::vector<ItemScore> Store::scores(const std::string& config_key,
                                     const std::string& phase) const {
  Statement q(db_,
              "SELECT task, item, metric, value FROM scores WHERE config = ? AND phase = ? "
              "ORDER BY task, item, metric",
              path_);
  q.bind(1, config_key).bind(2, phase);
  std::vector<ItemScore> out;
  while (q.step()) out.push_back({q.text(0), q.text(1), q.text(2), q.real(3)});
  return out;
}

}  // namespace reprise::scan
