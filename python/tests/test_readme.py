"""The README's Python example runs as written (on stories260K, in a scratch folder)."""
import os
import re

import pytest

from conftest import ROOT


def test_readme_example(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- readme-example -->\n```python\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "models").symlink_to(ROOT / "models")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    png = tmp_path / "stories-scan.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 1000
