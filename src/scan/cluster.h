// The processes a scan runs on: this one alone, or the ranks of an MPI job started with
// `mpirun -np R reprise scan ...`. Rank 0 owns the store and hands out configs; every rank maps
// the model itself and scores its share. Messages are opaque strings (JSON in practice).
//
// MPI is used only when the binary was built with it (OpenMPI, Debian's libopenmpi-dev) and the
// process was started by an MPI launcher; otherwise the cluster is this process alone, and a
// binary without MPI refuses to run as one of several ranks rather than have every rank write
// the same store.
#pragma once

#include <memory>
#include <optional>
#include <string>

namespace reprise::scan {

class Cluster {
 public:
  // MPI when launched by mpirun (and built with MPI), else a single process. Throws Error when
  // launched as one of several ranks by a binary built without MPI.
  static std::unique_ptr<Cluster> from_environment();
  static std::unique_ptr<Cluster> single();

  virtual ~Cluster() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks sharing this machine (to split its cores between them).
  virtual int local_size() const = 0;

  // Rank 0 sends `msg` to every other rank and returns it; other ranks return what rank 0 sent.
  virtual std::string broadcast(const std::string& msg) = 0;
  // Any rank but 0: queues `msg` for rank 0 and returns without waiting for it to be received.
  virtual void send_to_root(std::string msg) = 0;
  // Waits until everything queued by send_to_root has been delivered.
  virtual void flush() = 0;
  // Rank 0: the next message from another rank; without `wait`, nullopt when none has arrived.
  virtual std::optional<std::string> receive(bool wait) = 0;
  // Ends every rank of the job (a failed rank must not leave the others waiting forever).
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

}  // namespace reprise::scan
