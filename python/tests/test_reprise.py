"""The Python module against the CLI: same numbers bit for bit, same errors.

Needs the module installed (`pip install .`) and the CLI built (REPRISE, default build/reprise).
"""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import reprise

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "stories260K.gguf")
CLI = os.environ.get("REPRISE", str(ROOT / "build" / "reprise"))


def cli(*args):
    if not os.access(CLI, os.X_OK):
        pytest.skip(f"the reprise CLI is not built at {CLI} (set REPRISE)")
    return subprocess.run([CLI, *args], capture_output=True, text=True)


def cli_logits(*args):
    r = cli("logits", "-m", MODEL, "-t", "1", *args)
    assert r.returncode == 0, r.stderr
    # The CLI prints each float's shortest round-trip form: float32 of it is the exact value.
    return np.array(json.loads(r.stdout)["logits"], dtype=np.float64).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return reprise.Model(MODEL, threads=1)


def test_model_shape(model):
    assert model.n_layers == 5
    assert model.n_vocab == 512


@pytest.mark.parametrize("path", [None, "repeat:1:4"])
def test_logits_equal_cli_bit_for_bit(model, path):
    ids = model.tokenize("Once upon a time there was")
    extra = ["--path", path] if path else []
    want = cli_logits("--tokens", ",".join(map(str, ids)), "--all-positions", *extra)
    got = model.logits(ids, path=path, all_positions=True)
    assert got.dtype == np.float32 and got.shape == (len(ids), 512)
    assert np.array_equal(got, want)
    # The last position alone is its own computation (one row through the output matrix), so
    # it is compared with the CLI's last-position output, not with the all-positions row.
    last = model.logits(ids, path=path)
    assert last.shape == (512,)
    assert np.array_equal(last, cli_logits("--tokens", ",".join(map(str, ids)), *extra)[0])


def test_text_logits_equal_cli(model):
    want = cli_logits("-p", "Once upon a time")
    assert np.array_equal(model.logits("Once upon a time"), want[0])


def test_repeat_path_changes_logits(model):
    ids = model.tokenize("Once upon a time")
    assert not np.array_equal(model.logits(ids), model.logits(ids, path="repeat:1:4"))


def test_tokenize_equals_cli(model):
    r = cli("tokenize", "-m", MODEL, "-p", "Once upon a time")
    assert r.returncode == 0, r.stderr
    assert model.tokenize("Once upon a time") == json.loads(r.stdout)
    r = cli("tokenize", "-m", MODEL, "-p", "Once upon a time", "--no-bos")
    assert model.tokenize("Once upon a time", bos=False) == json.loads(r.stdout)
    assert model.detokenize(model.tokenize("Once upon a time", bos=False)) == "Once upon a time"


def test_path_parse():
    p = reprise.Path.parse("repeat:1:4", 5)
    assert p.canonical == "0..3,1..4"
    assert p.layers == [0, 1, 2, 3, 1, 2, 3, 4]
    assert len(p) == 8


def test_errors_carry_the_cli_message():
    r = cli("logits", "-m", "/nonexistent.gguf", "--tokens", "1")
    assert r.returncode != 0
    message = r.stderr.strip().removeprefix("reprise: error: ")
    with pytest.raises(reprise.Error) as e:
        reprise.Model("/nonexistent.gguf")
    assert str(e.value) == message
    assert isinstance(e.value, RuntimeError)
    with pytest.raises(reprise.Error, match="layer"):
        reprise.Path.parse("0,9", 5)


@pytest.mark.parametrize("path", [None, "repeat:1:4"])
def test_generate_equals_run(model, path):
    prompt = "Once upon a time"
    r = cli("run", "-m", MODEL, "-t", "1", "-n", "40", "-p", prompt,
            *(["--path", path] if path else []))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(prompt)
    want = r.stdout[len(prompt):].removesuffix("\n")
    assert want.strip()
    assert model.generate(prompt, path=path, max_tokens=40) == want
    assert model.generate(model.tokenize(prompt), path=path, max_tokens=40) == want
