"""Icons, desktop entry and AppStream metadata load through importlib.resources and are valid."""

from __future__ import annotations

import configparser
import fnmatch
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import slicewise.resources as res


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("size", res.ICON_SIZES)
def test_png_icons_have_their_size(size):
    assert _png_size(res.icon_png(size)) == (size, size)


def test_unknown_icon_size_is_refused():
    with pytest.raises(ValueError, match="sizes: 16"):
        res.icon_png(17)


def test_svg_icon_and_package_files():
    root = ET.fromstring(res.read_bytes(res.SVG_ICON))
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 64 64"
    names = {p.name for p in files("slicewise.resources").iterdir()}
    assert {res.SVG_ICON, res.DESKTOP_ENTRY, res.METAINFO} <= names
    assert {f"slicewise-{n}.png" for n in res.ICON_SIZES} <= names


def test_desktop_entry_names_the_command_and_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read_string(res.read_bytes(res.DESKTOP_ENTRY).decode("utf-8"))
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"].split()[:2] == ["slicewise", "gui"]
    assert d["Icon"] == res.APP_ID and "Science" in d["Categories"].split(";")


def test_metainfo_matches_the_desktop_entry():
    root = ET.fromstring(res.read_bytes(res.METAINFO))
    assert root.get("type") == "desktop-application" and root.findtext("id") == res.APP_ID
    assert root.findtext("launchable") == res.DESKTOP_ENTRY
    assert root.find("provides/binary").text == "slicewise"


@pytest.mark.skipif(shutil.which("appstreamcli") is None,
                    reason="appstreamcli not installed (Debian: apt install appstream)")
def test_metainfo_validates(tmp_path):
    path = tmp_path / res.METAINFO
    path.write_bytes(res.read_bytes(res.METAINFO))
    proc = subprocess.run(["appstreamcli", "validate", "--no-net", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate not installed (Debian: apt install desktop-file-utils)")
def test_desktop_entry_validates(tmp_path):
    path = tmp_path / res.DESKTOP_ENTRY
    path.write_bytes(res.read_bytes(res.DESKTOP_ENTRY))
    proc = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.mark.gui
def test_window_icon_holds_every_size(qapp):
    icon = res.window_icon()
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert sizes == {(n, n) for n in res.ICON_SIZES}


def _glob_match(path: str, pattern: str) -> bool:
    """setuptools' glob: ``*`` stays within one folder (``*.png`` is not ``icons/a.png``)."""
    parts, pats = path.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(map(fnmatch.fnmatch, parts, pats))


def test_every_resource_file_is_in_the_package_data():
    """An installed wheel holds what pyproject.toml's package-data names: every file must match."""
    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["slicewise.resources"]
    folder = root / "resources"
    shipped = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"]
    assert len(shipped) >= len(res.ICON_SIZES) + 3
    missing = [f for f in shipped if not any(_glob_match(f, pat) for pat in patterns)]
    assert not missing, f"add patterns for {missing} to pyproject.toml's package-data"
