"""docs/configuration.md is the reference written from the configuration's metadata, and current."""

from __future__ import annotations

from pathlib import Path

from slicewise.cli.config_reference import COMMAND, main, render
from slicewise.engine.recon.config import ReconConfig, iter_fields

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_committed_reference_is_current():
    assert REFERENCE.exists(), f"docs/configuration.md is missing: write it with `{COMMAND}`"
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        f"docs/configuration.md is out of date with engine/recon/config.py: regenerate it with "
        f"`.venv/bin/{COMMAND}` and commit it")


def _row(text: str, path: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| `{path}` |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_every_field_has_a_row_with_its_metadata():
    text = render()
    fields = iter_fields(ReconConfig())
    assert len(fields) > 40
    for info in fields:
        row = _row(text, info.path)
        assert len(row) == 7, row
        assert row[3] == info.unit and row[5] == ("yes" if info.safe_while_paused else "no")
        assert " ".join(info.help.split())[:40] in row[6].replace("\\|", "|")
    assert _row(text, "run.epochs")[1:5] == ["int", "`50`", "epoch", ">= 1"]
    assert _row(text, "optimizer.kind")[4] == "`auto`, `adam`, `momentum`, `lbfgs`"
    assert _row(text, "data.path")[1:3] == ["str (file path)", "unset"]
    assert _row(text, "optimizer.momentum")[4] == ">= 0, < 1"
    groups = [ln for ln in text.splitlines() if ln.startswith("## ")]
    assert groups[0] == "## `[data]`" and groups[-1] == "## `[run]`" and len(groups) == 9


def test_the_command_writes_the_file(tmp_path, capsys):
    out = tmp_path / "configuration.md"
    assert main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render()
    assert main([]) == 0 and capsys.readouterr().out.endswith(render())
    assert main(["--help"]) == 2
