"""The README's example must keep working: run every ```python block in it."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_an_example():
    assert BLOCKS, "README.md should show a short Python example"
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write (e.g. a feature cache) into the working folder
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    assert "AUC" in capsys.readouterr().out
