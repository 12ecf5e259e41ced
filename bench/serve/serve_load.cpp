// serve_load: a closed-loop load generator for `reprise serve` (or any OpenAI-compatible server).
//
// For each concurrency level C, C client threads each keep one keep-alive connection and send
// the same request back to back until `--requests` have been sent in total (or `--seconds`
// passed). Reports requests/s, latency percentiles and generated tokens/s (from "usage").
// Only meant for loopback: it refuses any host that is not a loopback address.
#include <fmt/format.h>
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string endpoint = "/v1/completions";
  std::string body =
      R"({"prompt":"Once upon a time","max_tokens":32,"temperature":0,"ignore_eos":true})";
  std::string levels = "1,4,16";
  int requests = 200;   // per level
  double seconds = 60;  // per level, whichever comes first
  int warmup = 8;       // requests before the first level, not measured
  std::string api_key;
};

struct Level {
  int concurrency = 0;
  int ok = 0, failed = 0;
  double wall_s = 0;
  std::vector<double> latency_ms;
  int64_t completion_tokens = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least p of the samples at or below it.
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

httplib::Headers headers(const Options& o) {
  httplib::Headers h;
  if (!o.api_key.empty()) h.emplace("Authorization", "Bearer " + o.api_key);
  return h;
}

Level run_level(const Options& o, int concurrency) {
  Level lv;
  lv.concurrency = concurrency;
  std::atomic<int> next{0};
  std::mutex mu;
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(o.seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t)
    threads.emplace_back([&] {
      httplib::Client cli(o.host, o.port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_connection_timeout(5);
      cli.set_read_timeout(120);
      std::vector<double> mine;
      int ok = 0, failed = 0;
      int64_t tokens = 0;
      while (next.fetch_add(1) < o.requests && Clock::now() < deadline) {
        const auto start = Clock::now();
        auto res = cli.Post(o.endpoint.c_str(), headers(o), o.body, "application/json");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        if (res && res->status == 200) {
          ++ok;
          mine.push_back(ms);
          auto j = nlohmann::json::parse(res->body, nullptr, false);
          if (j.is_object() && j.contains("usage"))
            tokens += j["usage"].value("completion_tokens", 0);
        } else {
          ++failed;
        }
      }
      std::lock_guard lock(mu);
      lv.latency_ms.insert(lv.latency_ms.end(), mine.begin(), mine.end());
      lv.ok += ok;
      lv.failed += failed;
      lv.completion_tokens += tokens;
    });
  for (auto& th : threads) th.join();
  lv.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return lv;
}

std::vector<int> parse_levels(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const int c = std::stoi(item);
    if (c < 1 || c > 1024) throw std::runtime_error("concurrency must be 1..1024");
    out.push_back(c);
  }
  return out;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"serve_load: requests/s and latency of an OpenAI-compatible server on loopback"};
  app.add_option("--host", o.host, "server address (loopback only)")->capture_default_str();
  app.add_option("--port", o.port, "server port")->capture_default_str();
  app.add_option("--endpoint", o.endpoint, "request path")->capture_default_str();
  app.add_option("--body", o.body, "request body (JSON)")->capture_default_str();
  app.add_option("--concurrency", o.levels, "comma-separated client counts")->capture_default_str();
  app.add_option("--requests", o.requests, "requests per level")->capture_default_str();
  app.add_option("--seconds", o.seconds, "time limit per level")->capture_default_str();
  app.add_option("--warmup", o.warmup, "unmeasured requests first")->capture_default_str();
  app.add_option("--api-key", o.api_key, "sent as 'Authorization: Bearer KEY'");
  CLI11_PARSE(app, argc, argv);
  if (!is_loopback(o.host)) {
    fmt::print(stderr, "serve_load: refusing non-loopback host '{}'\n", o.host);
    return 2;
  }
  std::vector<int> levels;
  try {
    levels = parse_levels(o.levels);
  } catch (const std::exception& e) {
    fmt::print(stderr, "serve_load: --concurrency: {}\n", e.what());
    return 2;
  }

  if (o.warmup > 0) {
    Options w = o;
    w.requests = o.warmup;
    const Level lv = run_level(w, 1);
    if (lv.ok == 0) {
      fmt::print(stderr, "serve_load: warm-up requests to {}:{}{} all failed\n", o.host, o.port,
                 o.endpoint);
      return 1;
    }
  }
  fmt::print("{:>8} {:>9} {:>7} {:>10} {:>10} {:>10} {:>12}\n", "clients", "requests", "errors",
             "req/s", "p50 ms", "p99 ms", "gen tok/s");
  for (int c : levels) {
    const Level lv = run_level(o, c);
    fmt::print("{:>8} {:>9} {:>7} {:>10.1f} {:>10.2f} {:>10.2f} {:>12.0f}\n", c, lv.ok, lv.failed,
               lv.ok / lv.wall_s, percentile(lv.latency_ms, 0.50), percentile(lv.latency_ms, 0.99),
               lv.completion_tokens / lv.wall_s);
  }
  return 0;
}
