"""The reconstruction configuration's reference (docs/configuration.md), written from its metadata.

Regenerate after adding or changing a field of ``engine/recon/config.py``::

    .venv/bin/python -m slicewise.cli.config_reference docs/configuration.md

(without a path it prints the Markdown). ``tests/test_config_reference.py`` fails while the
committed file differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from slicewise.engine.config_schema import FieldInfo, toml_value
from slicewise.engine.io.atomic import atomic_write_text
from slicewise.engine.recon.config import ReconConfig, iter_fields

COMMAND = "python -m slicewise.cli.config_reference docs/configuration.md"

INTRO = f"""\
# Configuration reference

<!-- Generated from engine/recon/config.py by `{COMMAND}`; do not edit by hand. -->

A reconstruction is configured by a TOML file (`slicewise reconstruct --example ptycho > my.toml`
writes a commented one) or the form of the desktop application; both are made from the fields
below. Each `[group]` is a table of the TOML file, so `optimizer.lr_delta` is written

```toml
[optimizer]
lr_delta = 1e-7
```

- Units are SI (metres, eV, seconds); `px` is pixels, `epoch` a pass over the data, `1/step` the
  change of a parameter in one optimiser step.
- **unset** (a field left out, or commented out as in the examples) means: read from the data
  file, or chosen by the run. Every choice the run makes is logged and written into the run's
  `config.toml`, so running that file again repeats the run.
- Relative paths are relative to the configuration file's folder.
- **While paused**: fields marked *yes* may be changed in the desktop application while a run
  is paused; they take effect from the next optimiser step.
- A value outside its range or choices is refused with a one-line message naming the field.
"""


def _cell(text: str) -> str:
    """Markdown table cell text: no line breaks, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _type(info: FieldInfo) -> str:
    name = info.type_name.removesuffix(" | None")
    return name + {"file": " (file path)", "dir": " (folder path)"}.get(info.path_kind or "", "")


def _allowed(info: FieldInfo) -> str:
    if info.choices:
        return ", ".join(f"`{c}`" for c in info.choices)
    return info.range_text()


def _default(info: FieldInfo) -> str:
    return "unset" if info.default is None else f"`{toml_value(info.default)}`"


def _group_summary(cfg: ReconConfig, group: str) -> str:
    doc = type(getattr(cfg, group)).__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def render() -> str:
    """The whole reference as Markdown, one table per group in declaration order."""
    cfg = ReconConfig()
    lines = [INTRO.rstrip()]
    group = None
    for info in iter_fields(cfg):
        g = info.path.split(".")[0]
        if g != group:
            group = g
            lines += ["", f"## `[{g}]`", "", _group_summary(cfg, g), "",
                      "| field | type | default | unit | allowed | while paused | description |",
                      "|---|---|---|---|---|---|---|"]
        row = [f"`{info.path}`", _type(info), _default(info), info.unit, _allowed(info),
               "yes" if info.safe_while_paused else "no", info.help]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(f"usage: {COMMAND.rsplit(' ', 1)[0]} [OUTPUT.md]", file=sys.stderr)
        return 2
    text = render()
    if not argv:
        sys.stdout.write(text)
        return 0
    atomic_write_text(Path(argv[0]), text)
    print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
