// reprise route train: a per-input path router from a scan store (route/router.h), written as
// router.json for `--path auto:router.json`.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "route/held_out.h"
#include "route/train.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct RouteTrainCli {
  ModelOptions model;
  std::string store;
  std::string out;
  bool overwrite = false;
  std::string validate_on;
  route::TrainOptions train;
};

int run_route_train(RouteTrainCli o) {
  // A store that does not exist would be created empty by scan::Store; name it instead.
  if (!std::filesystem::is_regular_file(o.store))
    throw Error(fmt::format("{}: no such scan store", o.store));
  check_output_file(o.out, o.overwrite, "-o");
  o.train.seed = 0;  // the scan's own seed
  o.train.held_out = o.validate_on == "held-out";
  scan::Store store(o.store);
  auto m = o.model.load();
  const auto r = route::train_router(store, *m, o.train, o.model.session_options());
  fmt::print("{}", r.text);
  std::ofstream f(o.out);
  f << route::to_json(r.file).dump(1) << "\n";
  if (!f.flush()) throw Error(fmt::format("-o {}: cannot write the router file", o.out));
  fmt::print(stderr, "wrote {}\n", o.out);
  return 0;
}

int run_route_eval(const std::string& store_path) {
  if (!std::filesystem::is_regular_file(store_path))
    throw Error(fmt::format("{}: no such scan store", store_path));
  scan::Store store(store_path);
  fmt::print("{}", route::describe(route::evaluate_held_out(store)));
  return 0;
}

}  // namespace

void add_route(CLI::App& app, Runner& run) {
  auto* sub = app.add_subcommand("route", "train a per-input path router from a scan; judge it");
  sub->require_subcommand(1);
  auto o = std::make_shared<RouteTrainCli>();
  auto* train = sub->add_subcommand("train", "fit a router on a scan store's search items");
  train->add_option("store", o->store, "scan store (.db) made with -m MODEL")->required();
  o->model.add_to(*train, /*with_path=*/false);
  train->add_option("-o,--output", o->out, "router file to write (JSON)")->required();
  train->add_flag("--overwrite", o->overwrite, "replace an existing -o file");
  train->add_option("--paths", o->train.paths, "candidate paths, the plain path included")
      ->check(CLI::Range(2, 64));
  train
      ->add_option("--feature-layer", o->train.feature_layer,
                   "layers run before the features are read (default: the earliest layer "
                   "where a chosen candidate departs)")
      ->check(CLI::Range(1, 1 << 16));
  train
      ->add_option("--validate-on", o->validate_on,
                   "'held-out': also judge the router on the scan's validate items (candidates "
                   "then come from the configs that phase scored)")
      ->check(CLI::IsMember({"held-out"}));
  train->add_option("--folds", o->train.folds, "cross-validation folds")->check(CLI::Range(2, 100));
  train->add_option("--l2", o->train.fit.l2, "L2 penalty of the classifier")
      ->check(CLI::NonNegativeNumber);
  train->callback([&run, o] { run = [o] { return run_route_train(*o); }; });

  auto store = std::make_shared<std::string>();
  auto* ev = sub->add_subcommand(
      "eval",
      "the held-out table of a scan run with --validate N --path auto:ROUTER.json: plain, best "
      "single, router, oracle, paired CIs, time per request");
  ev->add_option("store", *store, "scan store (.db)")->required();
  ev->callback([&run, store] { run = [store] { return run_route_eval(*store); }; });
}

}  // namespace reprise::cli
