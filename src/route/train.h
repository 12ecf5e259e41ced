// `reprise route train`: a router from a scan store and the model it was made with.
#pragma once

#include <string>

#include "engine/session.h"
#include "model/model.h"
#include "route/router.h"
#include "scan/store.h"

namespace reprise::route {

// Primary scores of every search config on the items every one of them scored (sign-adjusted,
// higher is better), configs in store order with the plain path first; no features yet. Throws
// Error when the store has no search baseline.
RouterData scores_from_store(const scan::Store& store, int n_layer,
                             const std::string& phase = "search");

struct TrainReport {
  RouterFile file;
  std::string text;  // describe()'s report
};

// Chooses candidates, computes each item's features on `model` (the tasks are rebuilt from the
// store's task definition), fits and cross-validates; with opts.held_out, also routes the
// validate phase's items with the fitted router. Throws Error when the model is not the store's
// (checksum), a stored item no longer exists in its task, or held_out is asked of a store
// without a validate phase.
TrainReport train_router(const scan::Store& store, const Model& model, const TrainOptions& opts,
                         const SessionOptions& session);

}  // namespace reprise::route
