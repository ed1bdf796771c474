"""The machinery behind typed, metadata-driven configurations (Qt-free, format-neutral).

A configuration is a tree of dataclasses whose leaf fields carry metadata made by
:func:`field_factory` (unit, help, group, choices, range, ``safe_while_paused``, path kind). From
that metadata the GUI builds its forms and the TOML writer its comments. This module knows nothing
of any particular configuration: :mod:`.recon.config` (reconstruction) uses it, and so can any
other dataclass configuration (e.g. the simulation's).

* :func:`leaves` lists the leaves of a dataclass tree as :class:`Leaf` (dotted path, field, type);
* :func:`coerce` validates (and, for GUI text, parses) one value for a leaf, raising
  :class:`ConfigError` that names the dotted path;
* :class:`FieldInfo` is one leaf with its value and metadata, what a form row needs.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from .errors import ConfigError

def field_factory(group: str):
    """A ``field()`` maker that stamps every field of one group with its metadata."""

    def f(default, help: str, unit: str = "", *, choices: tuple | None = None, min=None, max=None,
          min_exclusive: bool = False, max_exclusive: bool = False,
          safe_while_paused: bool = False, path: str | None = None):
        meta = {"unit": unit, "help": help, "group": group, "choices": choices, "min": min,
                "max": max, "min_exclusive": min_exclusive, "max_exclusive": max_exclusive,
                "safe_while_paused": safe_while_paused, "path": path}
        return field(default=default, metadata=meta)

    return f



@dataclass(frozen=True)
class FieldType:
    """A field type reduced to what we support: scalar, list or fixed tuple, maybe optional."""

    base: type                  # bool | int | float | str | list | tuple
    optional: bool = False
    elem: type | None = None    # element type of list/tuple
    length: int | None = None   # tuple length

    @property
    def name(self) -> str:
        if self.base is list:
            s = f"list[{self.elem.__name__}]"
        elif self.base is tuple:
            s = f"tuple[{', '.join([self.elem.__name__] * self.length)}]"
        else:
            s = self.base.__name__
        return s + " | None" if self.optional else s


def parse_type(tp) -> FieldType:
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional, tp = True, args[0]
    origin = typing.get_origin(tp)
    if origin is list:
        return FieldType(list, optional, typing.get_args(tp)[0])
    if origin is tuple:
        args = typing.get_args(tp)
        return FieldType(tuple, optional, args[0], len(args))
    return FieldType(tp, optional)


@dataclass(frozen=True)
class FieldInfo:
    """One leaf of the configuration, as the GUI needs it to build a form row."""

    path: str                   # "optimizer.lr_object"
    type: Any                   # the annotation, e.g. float, Optional[float], list[float]
    type_name: str              # "float | None"
    value: Any
    default: Any
    unit: str
    help: str
    group: str
    choices: tuple | None
    min: float | None
    max: float | None
    min_exclusive: bool
    max_exclusive: bool
    safe_while_paused: bool
    optional: bool
    path_kind: str | None       # "file" | "dir" for path fields (a file chooser), else None

    def range_text(self) -> str:
        """The allowed range, e.g. ``">= 0, < 1"``; empty when unbounded."""
        rng = []
        if self.min is not None:
            rng.append(f"{'>' if self.min_exclusive else '>='} {self.min}")
        if self.max is not None:
            rng.append(f"{'<' if self.max_exclusive else '<='} {self.max}")
        return ", ".join(rng)


@dataclass(frozen=True)
class Leaf:
    path: str
    owner_cls: type
    name: str
    fld: dataclasses.Field
    ann: Any
    t: FieldType


def leaves(cls, prefix: str = "") -> list[Leaf]:
    hints = typing.get_type_hints(cls)
    out = []
    for fld in dataclasses.fields(cls):
        path = prefix + fld.name
        tp = hints[fld.name]
        if dataclasses.is_dataclass(tp):
            out.extend(leaves(tp, path + "."))
        else:
            out.append(Leaf(path, cls, fld.name, fld, tp, parse_type(tp)))
    return out


def default_of(fld: dataclasses.Field):
    return fld.default_factory() if fld.default is dataclasses.MISSING else fld.default


_PLAIN = {int: ("a whole number", "whole numbers"), float: ("a number", "numbers"),
          bool: ("true or false", "true/false values"), str: ("text", "texts")}


def plain_type(t: FieldType) -> str:
    """The type in words for people typing into a form: "3 whole numbers, separated by
    commas", "a number (or empty to leave it unset)"."""
    if t.base in (list, tuple):
        many = _PLAIN.get(t.elem, ("", "values"))[1]
        d = (f"{t.length} {many}" if t.length else f"one or more {many}") + \
            ", separated by commas"
    else:
        d = _PLAIN.get(t.base, (t.name,))[0]
    return d + (" (or empty to leave it unset)" if t.optional else "")


def _bad(path: str, t: FieldType, value, why: str = "", text: bool = False) -> ConfigError:
    if text:  # typed into the GUI: plain words, no Python type names
        shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        return ConfigError(f"{path}: expected {plain_type(t)}, got {str(shown)!r}"
                           f"{'; ' + why if why else ''}")
    got = f"{value!r} ({type(value).__name__})"
    return ConfigError(f"{path}: expected {t.name}, got {got}{'; ' + why if why else ''}")


def _scalar(path: str, t: FieldType, kind: type, v, text: bool):
    """Check (and, for GUI text, parse) one scalar of type ``kind``."""
    if text and isinstance(v, str) and kind is not str:
        s = v.strip()
        try:
            if kind is bool:
                low = s.lower()
                if low in ("true", "yes", "on", "1"):
                    return True
                if low in ("false", "no", "off", "0"):
                    return False
                raise ValueError
            if kind is int:
                f = float(s)
                if not f.is_integer():
                    raise _bad(path, t, v, "", text) from None
                return int(f)
            v = float(s)
        except ValueError:
            raise _bad(path, t, v, "", text) from None
    if kind is bool:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
    elif kind is int:
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            return int(v)
    elif kind is float:
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            v = float(v)
            if not math.isfinite(v):
                raise _bad(path, t, v, "must be finite")
            return v
    elif kind is str:
        if isinstance(v, str):
            return v
    raise _bad(path, t, v, text=text)


def check_range(path: str, meta: dict, v):
    lo, hi = meta.get("min"), meta.get("max")
    lo_x, hi_x = meta.get("min_exclusive"), meta.get("max_exclusive")
    unit = f" {meta['unit']}" if meta.get("unit") else ""
    if lo is not None and (v <= lo if lo_x else v < lo):
        raise ConfigError(f"{path}: must be {'>' if lo_x else '>='} {lo:g}{unit}, got {v!r}"
                          + (" (check the unit)" if unit.strip() in ("eV", "m") else ""))
    if hi is not None and (v >= hi if hi_x else v > hi):
        raise ConfigError(f"{path}: must be {'<' if hi_x else '<='} {hi:g}{unit}, got {v!r}"
                          + (" (check the unit)" if unit.strip() in ("eV", "m") else ""))


def coerce(leaf: Leaf, value, text: bool = False):
    """Validate ``value`` for ``leaf`` (parsing GUI text when ``text``); return the clean value."""
    t, path, meta = leaf.t, leaf.path, leaf.fld.metadata
    if text and isinstance(value, str) and t.optional and (
            value.strip() == "" or (t.base is not str and value.strip().lower() == "none")):
        value = None
    if value is None:
        if t.optional:
            return None
        raise _bad(path, t, value, "this field cannot be unset", text)
    if t.base in (list, tuple):
        if text and isinstance(value, str):
            s = value.strip().strip("[]()").replace("x", ",").replace(";", ",")
            value = [p for p in (q.strip() for q in s.split(",")) if p]
        if not isinstance(value, (list, tuple)) or isinstance(value, str):
            raise _bad(path, t, value, text=text)
        if t.length is not None and len(value) != t.length:
            raise _bad(path, t, value, f"{len(value)} given", text)
        if t.base is list and len(value) == 0:
            raise _bad(path, t, value, "needs at least one value (leave it unset instead)", text)
        items = [_scalar(f"{path}[{i}]", FieldType(t.elem), t.elem, v, text) for i, v in enumerate(value)]
        for i, v in enumerate(items):
            check_range(f"{path}[{i}]", meta, v)
        return t.base(items)
    v = _scalar(path, t, t.base, value, text)
    if meta.get("choices") and v not in meta["choices"]:
        raise ConfigError(f"{path}: must be one of {', '.join(map(str, meta['choices']))}; "
                          f"got {v!r}")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        check_range(path, meta, v)
    return v


def toml_value(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return tomli_w.dumps({"k": v}).split("=", 1)[1].strip()


def toml_comment(info: FieldInfo) -> str:
    bits = [info.help]
    if info.unit:
        bits.append(f"[{info.unit}]")
    if info.choices:
        bits.append(f"({' | '.join(info.choices)})")
    if info.range_text():
        bits.append(f"({info.range_text()})")
    return "# " + " ".join(bits)


def read_source(src, suffix: str) -> tuple[str, str]:
    """(text, name for messages) from a path or literal text: a one-line string that names an
    existing file or ends with ``suffix`` is a path, anything else is text."""
    is_path = isinstance(src, os.PathLike) or (
        isinstance(src, str) and "\n" not in src
        and (os.path.isfile(src) or src.strip().lower().endswith(suffix)))
    if is_path:
        p = Path(src)
        try:
            return p.read_text(encoding="utf-8"), str(p)
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read the configuration file ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: the configuration file is not UTF-8 text (byte "
                              f"0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as "
                              "UTF-8") from None
    return str(src), ""
