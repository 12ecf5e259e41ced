#!/usr/bin/env python3
"""Held-out Spearman rho of beam-search surrogates on a scan store: ridge and k-NN as
src/scan/beam.cpp computes them, beside gradient-boosted trees (xgboost), to decide whether trees
are worth a C++ dependency (issue 24, item 3). Measures only; the scan does not use the trees.

Usage (the reprise module from a build, xgboost from Debian's python3-xgboost):
  PYTHONPATH=build/pypkg /usr/bin/python3 scripts/surrogate_check.py STORE.db [--resamples 10]

For each beam round recorded in the store (meta "beam"; a store without one gets round 1 only)
it rebuilds the configs the round was trained on (the baseline, the seed blocks, the configs of
the earlier rounds, in the runner's order), their targets and features exactly as beam.cpp does,
and prints the 5-fold held-out rho of each model, plus a last row over every config the search
scored. The fold assignment is beam.cpp's: std::shuffle with std::mt19937_64 seeded with
seed + round, reproduced here for GCC 12's libstdc++ (checked by the ridge and k-NN figures
equalling the scan's own output); trees see the same folds. Beside each rho: its mean and sd
over --resamples other fold shuffles. Then, for the configs each beam round scored, the rho of
each model's predictions (fitted on the configs scored before that round) against their measured
targets, pooled over rounds. Tree settings are fixed below, not tuned on the test folds.
"""
import argparse
import json
import math
import sys

import numpy as np

import reprise

M64 = (1 << 64) - 1


class MT19937_64:
    """std::mt19937_64 (the C++ standard's parameters), seeded as std::mt19937_64(seed)."""

    def __init__(self, seed):
        self.mt = [seed & M64]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & M64)
        self.idx = 312

    def __call__(self):
        if self.idx >= 312:
            mt = self.mt
            for i in range(312):
                y = (mt[i] & ~((1 << 31) - 1) & M64) | (mt[(i + 1) % 312] & ((1 << 31) - 1))
                mt[i] = mt[(i + 156) % 312] ^ (y >> 1) ^ (0xB5026F5AA96619E9 if y & 1 else 0)
            self.idx = 0
        y = self.mt[self.idx]
        self.idx += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & M64


def uniform_below(g, n):
    """libstdc++'s uniform_int_distribution on [0, n) for a 64-bit engine (Lemire's method)."""
    prod = g() * n
    if prod & M64 < n:
        threshold = ((1 << 64) - n) % n
        while prod & M64 < threshold:
            prod = g() * n
    return prod >> 64


def libstdcxx_shuffle(a, g):
    """std::shuffle as GCC 12's libstdc++ does it for a 64-bit engine: two swaps per draw."""
    n = len(a)
    if n < 2:
        return
    i = 1
    if n % 2 == 0:
        j = uniform_below(g, 2)
        a[1], a[j] = a[j], a[1]
        i = 2
    while i < n:
        r = i + 1
        x = uniform_below(g, r * (r + 1))
        p1, p2 = x // (r + 1), x % (r + 1)
        a[i], a[p1] = a[p1], a[i]
        a[i + 1], a[p2] = a[p2], a[i + 1]
        i += 2


def average_ranks(v):
    order = sorted(range(len(v)), key=lambda k: v[k])
    ranks = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1
        i = j + 1
    return ranks


def spearman(a, b):
    ra, rb = np.array(average_ranks(list(a))), np.array(average_ranks(list(b)))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum()) / den if den > 0 else float("nan")


def path_features(path, n_layer):
    """beam.cpp's path_features: per layer alpha-weighted visits - 1, per layer skipped, length."""
    visits = [0.0] * n_layer
    for layer, alpha in zip(path.layers, path.alphas):
        if 0 <= layer < n_layer:
            visits[layer] += float(alpha)
    seen = set(path.layers)
    return ([v - 1.0 for v in visits] + [0.0 if l in seen else 1.0 for l in range(n_layer)] +
            [len(path.layers) / n_layer - 1.0])


def targets(store, stored):
    """beam.cpp's beam_targets for (config key, phase) pairs."""
    primary = {m["task"]: m for m in json.loads(store.meta["primary_metrics"])}

    def load(key, phase):
        return {(s["task"], s["item"]): s["value"] for s in store.scores(phase, key)
                if s["task"] in primary and s["metric"] == primary[s["task"]]["metric"]}

    base = load("baseline", "search")
    sd = {}
    for task in primary:
        v = [x for (t, _), x in base.items() if t == task and not math.isnan(x)]
        var = np.var(v, ddof=1) if len(v) > 1 else 0.0
        sd[task] = math.sqrt(var) if var > 0 else 1.0
    out = []
    for key, phase in stored:
        mine = load(key, phase)
        per = {}
        for item, b in base.items():
            m = mine.get(item)
            if m is None or math.isnan(m) or math.isnan(b):
                continue
            d = m - b if primary[item[0]]["higher_is_better"] else b - m
            s = per.setdefault(item[0], [0.0, 0])
            s[0] += d
            s[1] += 1
        out.append(sum(s / c / sd[t] for t, (s, c) in per.items()) / len(per) if per else 0.0)
    return out


def fit_ridge(x, y):
    mx, my = x.mean(axis=0), y.mean()
    xc = x - mx
    beta = np.linalg.solve(xc.T @ xc + np.eye(x.shape[1]), xc.T @ (y - my))
    return lambda q: my + (q - mx) @ beta


def fit_knn(x, y, k=5):
    def predict(q):
        out = []
        for row in q:
            # Summed in feature order and averaged in neighbour order as beam.cpp does, so that
            # tied distances and tied predictions come out as they do there.
            d = np.cumsum((x - row) ** 2, axis=1)[:, -1]
            # beam.cpp partial_sorts (distance, row index) pairs: ties go to the earlier row.
            near = sorted(range(len(d)), key=lambda i: (d[i], i))[:min(k, len(d))]
            s = 0.0
            for i in near:
                s += float(y[i])
            out.append(s / len(near))
        return np.array(out)

    return predict


# Gradient-boosted trees: fixed settings, chosen for 30-200 rows of ~60 features before seeing
# any result (shallow trees, shrinkage, row subsampling off so runs are deterministic).
TREE_SETTINGS = {
    "xgb d2 n200 eta0.05": dict(max_depth=2, rounds=200, eta=0.05),
    "xgb d3 n300 eta0.03": dict(max_depth=3, rounds=300, eta=0.03),
    "xgb d4 n100 eta0.1": dict(max_depth=4, rounds=100, eta=0.1),
}


def fit_xgb(setting):
    import xgboost  # the native API: Debian's python3-xgboost runs without scikit-learn

    def fit(x, y):
        params = {"objective": "reg:squarederror", "max_depth": setting["max_depth"],
                  "eta": setting["eta"], "min_child_weight": 1.0, "lambda": 1.0,
                  "subsample": 1.0, "tree_method": "exact", "nthread": 1, "seed": 0}
        booster = xgboost.train(params, xgboost.DMatrix(x, label=y),
                                num_boost_round=setting["rounds"])
        return lambda q: booster.predict(xgboost.DMatrix(q))

    return fit


def held_out_rho(fit, x, y, folds, seed):
    """beam.cpp's held_out_rho: row order[r] is in fold r % folds."""
    n = len(y)
    if n < 2 * folds:
        return float("nan")
    order = list(range(n))
    libstdcxx_shuffle(order, MT19937_64(seed))
    pred = np.zeros(n)
    for k in range(folds):
        test = [order[r] for r in range(k, n, folds)]
        train = [order[r] for r in range(n) if r % folds != k]
        pred[test] = fit(x[train], y[train])(x[test])
    return spearman(pred, y)


def rounds(store):
    """(label, round, training configs, configs the round scored) per beam round, each config a
    (key, phase) pair in the runner's order; then every config the search scored."""
    meta = store.meta
    if "beam_seeds" in meta:
        seeds = json.loads(meta["beam_seeds"])
    else:
        seeds = [c["config"] for c in store.configs("search")
                 if c["config"] != "baseline" and "+" not in c["config"]]
    stored = [("baseline", "search")] + [(k, "search") for k in seeds]
    out = []
    beam = json.loads(meta["beam"])["rounds"] if "beam" in meta else []
    for r in beam:
        scored = [(s["key"], f"beam:{r['round']}") for s in r["scored"]]
        out.append((f"round {r['round']}", r["round"], list(stored), scored))
        stored += scored
    if not beam:
        out.append(("round 1", 1, list(stored), []))
    else:
        out.append(("all scored", len(beam) + 1, list(stored), []))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store")
    ap.add_argument("--seed", type=int, default=1234, help="the scan's --seed (default 1234)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--resamples", type=int, default=20,
                    help="other fold shuffles for the mean and spread of each rho (default 20)")
    a = ap.parse_args()
    store = reprise.Store(a.store)
    n_layer = int(store.meta["n_layer"])
    paths = {}  # per phase: a store may hold routed configs elsewhere, which have no key form
    for phase in ["search"] + [f"beam:{d}" for d in range(1, 64)]:
        paths.update({c["config"]: c["path"] for c in store.configs(phase)})
    models = {"ridge": fit_ridge, "k-NN": fit_knn}
    models.update({name: fit_xgb(p) for name, p in TREE_SETTINGS.items()})

    def data(stored):
        x = np.array([path_features(reprise.Path.parse(paths[k], n_layer), n_layer)
                      for k, _ in stored])
        return x, np.array(targets(store, stored))

    header = " | ".join(models)
    print(f"{a.store}: {n_layer} layers; held-out Spearman rho, {a.folds}-fold")
    print(f"\nfolds as beam.cpp (seed {a.seed} + round) | mean +- sd over {a.resamples} other "
          "fold shuffles")
    print(f"| training set | configs | {header} |")
    print("| --- | --- |" + " --- |" * len(models))
    pooled_pred = {name: [] for name in models}
    pooled_y = []
    for label, d, stored, scored in rounds(store):
        x, y = data(stored)
        cells = []
        for f in models.values():
            r0 = held_out_rho(f, x, y, a.folds, a.seed + d)
            rs = [held_out_rho(f, x, y, a.folds, a.seed + d + 1000 * s)
                  for s in range(1, a.resamples + 1)]
            cells.append(f"{r0:.3f} ({np.mean(rs):.3f} +- {np.std(rs, ddof=1):.3f})"
                         if rs else f"{r0:.3f}")
        print(f"| {label} | {len(y)} | " + " | ".join(cells) + " |")
        sys.stdout.flush()
        if scored:  # the combinations the round chose, predicted before they were scored
            xs, ys = data(scored)
            for name, f in models.items():
                pooled_pred[name] += list(f(x, y)(xs))
            pooled_y += list(ys)
    if pooled_y:
        print(f"\nbeam configs predicted by a model fitted on the configs scored before their "
              f"round, pooled over the rounds ({len(pooled_y)} configs; the candidates were "
              "chosen by the scan's own surrogate):")
        print(f"| {header} |\n|" + " --- |" * len(models))
        print("| " + " | ".join(f"{spearman(pooled_pred[n], pooled_y):.3f}" for n in models)
              + " |")


if __name__ == "__main__":
    main()
