"""The Python module against the CLI: same numbers bit for bit, same errors."""
import json
import re
import threading
import time

import numpy as np
import pytest

import reprise
from conftest import MODEL, cli_error, cli_ok


def cli_logits(*args):
    out = cli_ok("logits", "-m", MODEL, "-t", "1", *args)
    # The CLI prints each float's shortest round-trip form: float32 of it is the exact value.
    return np.array(json.loads(out)["logits"], dtype=np.float64).astype(np.float32)


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


def test_version_is_the_cli_version():
    # `reprise --version` prints "reprise X.Y.Z"; both come from CMake's project(VERSION).
    assert cli_ok("--version").split() == ["reprise", reprise.__version__]
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", reprise.__version__)
    # Installed by pip, the distribution's metadata carries the same number (pyproject.toml
    # reads it from CMakeLists.txt).
    try:
        from importlib.metadata import PackageNotFoundError, version
        assert version("reprise") == reprise.__version__
    except PackageNotFoundError:
        pass  # the staged build (build/pypkg) is not an installed distribution


def test_text_logits_equal_cli(model):
    want = cli_logits("-p", "Once upon a time")
    assert np.array_equal(model.logits("Once upon a time"), want[0])


def test_repeat_path_changes_logits(model):
    ids = model.tokenize("Once upon a time")
    assert not np.array_equal(model.logits(ids), model.logits(ids, path="repeat:1:4"))


def test_tokenize_equals_cli(model):
    out = cli_ok("tokenize", "-m", MODEL, "-p", "Once upon a time")
    assert model.tokenize("Once upon a time") == json.loads(out)
    out = cli_ok("tokenize", "-m", MODEL, "-p", "Once upon a time", "--no-bos")
    assert model.tokenize("Once upon a time", bos=False) == json.loads(out)
    assert model.detokenize(model.tokenize("Once upon a time", bos=False)) == "Once upon a time"


def test_path_parse():
    p = reprise.Path.parse("repeat:1:4", 5)
    assert p.canonical == "0..3,1..4"
    assert p.layers == [0, 1, 2, 3, 1, 2, 3, 4]
    assert len(p) == 8
    assert p.alphas == [1.0] * 8
    damped = reprise.Path.parse("repeat:1:3@0.5", 5)  # the second pass of 1..2 at weight 0.5
    assert damped.layers == [0, 1, 2, 1, 2, 3, 4]
    assert damped.alphas == [1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0]


def test_errors_carry_the_cli_message():
    message = cli_error("logits", "-m", "/nonexistent.gguf", "--tokens", "1")
    with pytest.raises(reprise.Error) as e:
        reprise.Model("/nonexistent.gguf")
    assert str(e.value) == message
    assert isinstance(e.value, RuntimeError)
    with pytest.raises(reprise.Error, match="layer"):
        reprise.Path.parse("0,9", 5)


@pytest.mark.parametrize("path", [None, "repeat:1:4"])
def test_generate_equals_run(model, path):
    prompt = "Once upon a time"
    out = cli_ok("run", "-m", MODEL, "-t", "1", "-n", "40", "-p", prompt,
                 *(["--path", path] if path else []))
    assert out.startswith(prompt)
    want = out[len(prompt):].removesuffix("\n")
    assert want.strip()
    assert model.generate(prompt, path=path, max_tokens=40) == want
    assert model.generate(model.tokenize(prompt), path=path, max_tokens=40) == want


def test_bad_file_raises_the_cli_message(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 8)
    message = cli_error("logits", "-m", str(bad), "--tokens", "1")
    assert str(bad) in message
    with pytest.raises(reprise.Error) as e:
        reprise.Model(str(bad))
    assert str(e.value) == message


def test_bad_token_and_path_raise_the_cli_message(model):
    message = cli_error("logits", "-m", MODEL, "--tokens", "1,9999")
    with pytest.raises(reprise.Error) as e:
        model.logits([1, 9999])
    assert str(e.value) == message
    message = cli_error("logits", "-m", MODEL, "--tokens", "1", "--path", "0,9")
    with pytest.raises(reprise.Error) as e:
        model.logits([1], path="0,9")
    assert str(e.value) == message


def test_info_equals_cli_info(model):
    out = cli_ok("info", MODEL)
    field = {k.strip(): v.strip() for k, v in re.findall(r"^(\w[\w ]*):\s+(.*)$", out, re.M)}
    info = model.info
    assert info["architecture"] == field["architecture"]
    assert info["n_layers"] == int(field["layers"]) == model.n_layers
    assert info["n_embd"] == int(field["embedding"]) == model.n_embd
    assert info["n_ff"] == int(field["ffn"])
    assert info["n_vocab"] == int(field["vocabulary"].split()[0])
    assert info["n_ctx_train"] == int(field["context"])
    assert f"{info['n_head']} query, {info['n_head_kv']} key/value, head dim {info['head_dim']}" \
        == field["heads"]
    assert info["tokenizer"] == "spm" and field["tokenizer"].startswith("SentencePiece")
    assert info["bos_token_id"] == model.tokenize("", bos=True)[0]


def test_detokenize_inverts_tokenize(model):
    text = "Lily saw a big, red ball."
    ids = model.tokenize(text, bos=False)
    assert model.detokenize(ids) == text
    assert model.detokenize([]) == ""


def test_hidden_states_shape_and_prefix(model):
    ids = model.tokenize("Once upon a time there was")
    plain = model.hidden_states(ids)
    rep = model.hidden_states(ids, path="repeat:1:4")
    assert plain.dtype == np.float32
    assert plain.shape == (5 + 1, len(ids), model.n_embd)
    assert rep.shape == (8 + 1, len(ids), model.n_embd)
    # repeat:1:4 runs 0 1 2 3 1 2 3 4: the embeddings and its first four positions are the plain
    # path's, bit for bit; its fifth (layer 1 again) is not the plain fifth (layer 4).
    assert np.array_equal(rep[:5], plain[:5])
    assert not np.allclose(rep[5], plain[5])
    # A path that stops early is the plain path's prefix; each position changes the stream.
    short = model.hidden_states(ids, path="0..2")
    assert np.array_equal(short, plain[:4])
    assert all(not np.array_equal(plain[p], plain[p + 1]) for p in range(5))
    # Causal: a token's stream does not depend on later tokens.
    head = model.hidden_states(ids[:5])
    np.testing.assert_allclose(head, plain[:, :5], rtol=1e-5, atol=1e-5)


def test_hidden_states_embeddings_are_the_token_rows(model):
    # Position 0 of the stream is each token's embedding row: equal tokens, equal rows.
    ids = [1, 400, 401, 400]
    hs = model.hidden_states(ids)
    assert np.array_equal(hs[0, 1], hs[0, 3])
    assert not np.array_equal(hs[0, 1], hs[0, 2])
    assert np.array_equal(model.hidden_states([400])[0, 0], hs[0, 1])


def test_hidden_states_of_a_long_prompt_cross_the_batch(model):
    # A prefill of more than 512 tokens (the session's batch) arrives in two chunks.
    ids = [1] + [400 + (t % 50) for t in range(600)]
    hs = model.hidden_states(ids)
    assert hs.shape == (6, 601, model.n_embd)
    # The first chunk is the same computation as a 512-token prompt's; the second lands after it
    # (a 520-token prompt chunks as 512 + 8: the same rows up to the kernels' rounding).
    assert np.array_equal(hs[:, :512], model.hidden_states(ids[:512]))
    np.testing.assert_allclose(hs[:, :520], model.hidden_states(ids[:520]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", [None, "repeat:1:4"])
def test_generate_stream_pieces_join_to_the_text(model, path):
    whole = model.generate("Once upon a time", path=path, max_tokens=30)
    pieces = list(model.generate("Once upon a time", path=path, max_tokens=30, stream=True))
    assert len(pieces) > 5 and all(pieces)
    assert "".join(pieces) == whole


def test_generate_stream_stops_early_and_raises(model):
    stream = model.generate("Once upon a time", max_tokens=200, stream=True)
    assert next(stream)
    del stream  # cancels the generation and joins its thread
    with pytest.raises(reprise.Error, match="token id 9999 out of range"):
        list(model.generate([1, 9999], stream=True))


def test_generate_stop_sequence(model):
    whole = model.generate("Once upon a time", max_tokens=40)
    cut = whole.index(".")
    assert model.generate("Once upon a time", max_tokens=40, stop=["."]) == whole[:cut]


def test_compute_releases_the_gil(model):
    # While another thread computes, this one keeps running: it would stall for the whole call
    # if the call held the GIL.
    ids = [1] + [400 + (t % 50) for t in range(500)]
    done = threading.Event()
    gaps = []

    def work():
        model.logits(ids, path="repeat:0:5:8", all_positions=True)  # one call, 40 positions
        done.set()

    t = threading.Thread(target=work)
    start = last = time.perf_counter()
    t.start()
    while not done.is_set():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    t.join()
    elapsed = time.perf_counter() - start
    assert elapsed > 0.1, "the work was too short to tell"
    assert max(gaps) < elapsed / 2
