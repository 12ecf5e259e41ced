"""reprise.evaluate, reprise.scan and reprise.Store against `reprise eval -o`, `reprise scan` and
`reprise report -o scores.csv`."""
import csv
import json
import math

import pytest

import reprise
from conftest import MODEL, cli_error, cli_ok

# Fields that hold the time of the run, not its results.
TIMES = {"date", "total_evaluation_time_seconds"}


def without_times(results):
    out = {k: v for k, v in results.items() if k not in TIMES}
    out["config"] = {k: v for k, v in out["config"].items() if k != "date_iso"}
    out["configs"] = {t: {k: v for k, v in c.items() if k != "seconds"}
                      for t, c in out["configs"].items()}
    return out


@pytest.mark.parametrize("path", [None, "repeat:1:4"])
def test_evaluate_equals_eval_output(model, tmp_path, path):
    out = tmp_path / "eval.json"
    extra = ["--path", path] if path else []
    cli_ok("eval", "-m", MODEL, "-t", "1", "--task", "arc_easy,winogrande", "--limit", "8",
           "-o", str(out), *extra)
    want = json.loads(out.read_text())
    got = reprise.evaluate(model, ["arc_easy", "winogrande"], path=path, limit=8)
    assert set(got) == set(want) and set(got["config"]) == set(want["config"])
    assert without_times(got) == without_times(want)
    assert got["n-samples"]["arc_easy"]["effective"] == 8
    assert len(got["samples"]["arc_easy"]) == 8


def test_evaluate_errors_carry_the_cli_message(model):
    message = cli_error("eval", "-m", MODEL, "--task", "no_such_task")
    with pytest.raises(reprise.Error) as e:
        reprise.evaluate(model, "no_such_task")
    assert str(e.value) == message


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """One scan through the CLI and the same scan through reprise.scan."""
    d = tmp_path_factory.mktemp("scan")
    cli_db, py_db = str(d / "cli.db"), str(d / "py.db")
    cli_ok("scan", "-m", MODEL, "-t", "1", "--task", "arc_easy", "--limit", "12", "--controls",
           "2", "--quiet", "-o", cli_db)
    totals = reprise.scan(reprise.Model(MODEL, threads=1), "arc_easy", py_db, limit=12,
                          controls=2)
    return cli_db, py_db, totals


def test_scan_equals_the_cli_scan(scanned):
    cli_db, py_db, totals = scanned
    a, b = reprise.Store(cli_db), reprise.Store(py_db)
    assert totals["configs_run"] == len(b.configs()) > 15  # 15 repeat blocks, baseline, controls
    assert [(c["config"], c["path"], c["phase"]) for c in a.configs()] == \
        [(c["config"], c["path"], c["phase"]) for c in b.configs()]
    assert a.scores() == b.scores()
    assert a.statistics() == b.statistics()


def test_store_scores_equal_the_report_csv(scanned, tmp_path):
    db = scanned[0]
    out = tmp_path / "scores.csv"
    cli_ok("report", db, "-o", str(out))
    with open(out, newline="") as f:
        want = [dict(row, value=float(row["value"])) for row in csv.DictReader(f)]
    got = reprise.Store(db).scores()
    key = lambda r: (r["phase"], r["config"])  # the CSV's order; scores() keeps the store's
    assert sorted(got, key=key) == want  # sorted() is stable: items keep their order
    assert {"baseline", "repeat:1:4"} <= {r["config"] for r in got}


def test_store_statistics_match_the_report_table(scanned):
    db = scanned[0]
    stats = reprise.Store(db).statistics()
    summary = cli_ok("scan", "-m", MODEL, "-t", "1", "--task", "arc_easy", "--limit", "12",
                     "--controls", "2", "--quiet", "-o", db)  # resumes: nothing left to score
    assert "0 configs scored" in summary
    rows = {}
    top = summary[summary.index("top configs"):summary.index("skip controls")]
    for line in top.splitlines():
        parts = line.split()
        if parts and parts[0].startswith(("repeat:", "skip:")):
            # config, path, delta, [lo, hi], p, ...
            rows[parts[0]] = (parts[1], float(parts[2]), float(parts[5]))
    assert rows
    by_config = {r["config"]: r for r in stats}
    for config, (path, delta, p_value) in rows.items():
        r = by_config[config]
        assert r["path"] == path
        assert f"{r['delta']:+.4f}" == f"{delta:+.4f}"
        assert f"{r['p_value']:.4f}" == f"{p_value:.4f}"
    base = reprise.Store(db).baselines()
    assert len(base) == 1 and base[0]["task"] == "arc_easy" and base[0]["n"] == 12
    assert all(r["baseline"] == base[0]["score"] for r in stats)


def test_store_records_make_a_dataframe(scanned):
    pd = pytest.importorskip("pandas")
    store = reprise.Store(scanned[0])
    for records in (store.configs(), store.scores(), store.statistics()):
        df = pd.DataFrame(records)
        assert len(df) == len(records)
        back = df.to_dict("records")
        assert all(a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
                   for x, y in zip(back, records) for a, b in zip(x.values(), y.values()))
    stats = pd.DataFrame(store.statistics())
    heat = stats[stats["mode"] == "repeat"].pivot(index="i", columns="j", values="delta")
    assert heat.shape == (5, 5)  # blocks i..j-1 of 5 layers: i in 0..4, j in 1..5


def test_missing_store_raises_the_cli_message(tmp_path):
    missing = str(tmp_path / "none.db")
    message = cli_error("report", missing, "-o", str(tmp_path / "x.csv"))
    with pytest.raises(reprise.Error) as e:
        reprise.Store(missing)
    assert str(e.value) == message
