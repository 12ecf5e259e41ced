"""Shared fixtures: the bundled stories260K model and the CLI the module is checked against.

ctest (python_api) runs these with the staged package on PYTHONPATH and REPRISE set to the
built CLI; after `pip install .`, run `REPRISE=build/reprise python -m pytest python/tests`.
"""
import os
import pathlib
import subprocess

import pytest

import reprise

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "stories260K.gguf")
CLI = os.environ.get("REPRISE", str(ROOT / "build" / "reprise"))


def run_cli(*args):
    """The CLI's CompletedProcess (text); skips when the CLI is not built."""
    if not os.access(CLI, os.X_OK):
        pytest.skip(f"the reprise CLI is not built at {CLI} (set REPRISE)")
    return subprocess.run([CLI, *args], capture_output=True, text=True)


def cli_ok(*args):
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def cli_error(*args):
    """The CLI's one-line error message, without its "reprise: error: " prefix."""
    r = run_cli(*args)
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.startswith("reprise: error: ")]
    assert len(lines) == 1, r.stderr
    return lines[0].removeprefix("reprise: error: ")


@pytest.fixture(scope="session")
def model():
    return reprise.Model(MODEL, threads=1)
