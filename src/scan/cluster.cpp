#include "scan/cluster.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <string_view>
#include <vector>

#include "util/error.h"

#if REPRISE_HAVE_MPI
#include <mpi.h>
#endif

namespace reprise::scan {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return end && *end == '\0' && x > 0 && x < (1 << 20) ? static_cast<int>(x) : fallback;
}

// World size announced by the launcher (OpenMPI, or any PMI/PMIx one), 0 when not launched.
int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const int n = env_int(name, 0); n > 0) return n;
  return std::getenv("PMIX_RANK") ? 1 : 0;
}

class SingleProcess final : public Cluster {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  std::string broadcast(const std::string& msg) override { return msg; }
  void send_to_root(std::string) override {
    throw Error("internal: a single process has no root to send to");
  }
  void flush() override {}
  std::optional<std::string> receive(bool) override { return std::nullopt; }
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
};

#if REPRISE_HAVE_MPI
constexpr int kResultTag = 7;

class MpiCluster final : public Cluster {
 public:
  MpiCluster() {
    int provided = 0;
    // Only the main thread talks to MPI; the thread pool never does.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
  }
  ~MpiCluster() override {
    flush();
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }

  std::string broadcast(const std::string& msg) override {
    uint64_t n = rank_ == 0 ? msg.size() : 0;
    MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    std::string out = rank_ == 0 ? msg : std::string(n, '\0');
    for (uint64_t off = 0; off < n;) {  // MPI counts are int
      const int part = static_cast<int>(std::min<uint64_t>(n - off, 1u << 30));
      MPI_Bcast(out.data() + off, part, MPI_BYTE, 0, MPI_COMM_WORLD);
      off += static_cast<uint64_t>(part);
    }
    return out;
  }

  void send_to_root(std::string msg) override {
    if (msg.size() > (1u << 30)) throw Error("scan: a result message over 1 GiB cannot be sent");
    pending_.push_back(std::move(msg));
    requests_.emplace_back();
    MPI_Isend(pending_.back().data(), static_cast<int>(pending_.back().size()), MPI_BYTE, 0,
              kResultTag, MPI_COMM_WORLD, &requests_.back());
  }

  void flush() override {
    if (requests_.empty()) return;
    MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
    pending_.clear();
  }

  std::optional<std::string> receive(bool wait) override {
    MPI_Status status;
    if (wait) {
      MPI_Probe(MPI_ANY_SOURCE, kResultTag, MPI_COMM_WORLD, &status);
    } else {
      int arrived = 0;
      MPI_Iprobe(MPI_ANY_SOURCE, kResultTag, MPI_COMM_WORLD, &arrived, &status);
      if (!arrived) return std::nullopt;
    }
    int n = 0;
    MPI_Get_count(&status, MPI_BYTE, &n);
    std::string msg(static_cast<size_t>(n), '\0');
    MPI_Recv(msg.data(), n, MPI_BYTE, status.MPI_SOURCE, kResultTag, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    return msg;
  }

  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);
  }

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1;
  std::deque<std::string> pending_;  // deque: buffers must not move while their send runs
  std::vector<MPI_Request> requests_;
};
#endif

}  // namespace

std::unique_ptr<Cluster> Cluster::single() {
  return std::make_unique<SingleProcess>();
}

std::unique_ptr<Cluster> Cluster::from_environment() {
  const int launched = launcher_world_size();
#if REPRISE_HAVE_MPI
  if (launched > 0) return std::make_unique<MpiCluster>();
#else
  if (launched > 1)
    throw Error(fmt::format(
        "started as one of {} MPI ranks, but this reprise was built without MPI; install "
        "libopenmpi-dev (scripts/setup.sh does) and rebuild, or run a single process",
        launched));
#endif
  return single();
}

}  // namespace reprise::scan
