"""The machinery behind typed, metadata-driven configurations (Qt-free, format-neutral).

A configuration is a tree of dataclasses whose leaf fields carry metadata made by
:func:`field_factory` (unit, help, group, choices, range, ``safe_while_paused``, path kind). From
that metadata the GUI builds its forms and the TOML writer its comments. This module knows nothing
of any particular configuration: :mod:`.recon.config` (reconstruction) uses it, and so can any
other dataclass configuration (e.g. the simulation's).

* :func:`leaves` lists the leaves of a dataclass tree as :class:`Leaf` (dotted path, field, type);
* :func:`coerce` validates (and, for GUI text, parses) one value for a leaf, raising
  :class:`ConfigError` that names the dotted path;
* :class:`FieldInfo` is one leaf with its value and metadata, what a form row needs;
* :class:`Schema` does everything by dotted path for one root class: get, set (parsing GUI text),
  list the fields, validate, and convert to and from dicts, TOML (with comments) and JSON.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
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
from .io.atomic import atomic_write_text

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

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
        elif self.base is tuple and self.length is None:
            s = f"tuple[{self.elem.__name__}, ...]"
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
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[float, ...]: any length >= 1
            return FieldType(tuple, optional, args[0])
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
        if t.length is None and len(value) == 0:
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
            # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the TOML
            return p.read_text(encoding="utf-8-sig"), str(p)
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read the configuration file ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: the configuration file is not UTF-8 text (byte "
                              f"0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as "
                              "UTF-8") from None
    return str(src).removeprefix("\ufeff"), ""


class Schema:
    """Everything done to a configuration by dotted path, for one root dataclass.

    ``check_value(path, value)``: rules a type and a range cannot express (raise
    :class:`ConfigError`); ``check_config(cfg)``: rules between fields. Both run on every set and
    on loading. Reading is strict (no string coercion), :meth:`set` parses GUI text.
    """

    def __init__(self, root: type, check_value=None, check_config=None):
        self.root = root
        self.leaves = {leaf.path: leaf for leaf in leaves(root)}
        self._check_value = check_value or (lambda path, value: None)
        self._check_config = check_config or (lambda cfg: None)

    # ---- by path ----------------------------------------------------------------------------
    def leaf(self, path: str) -> Leaf:
        leaf = self.leaves.get(path)
        if leaf is None:
            close = difflib.get_close_matches(path, list(self.leaves), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown configuration key{hint}")
        return leaf

    @staticmethod
    def _owner(cfg, path: str):
        obj = cfg
        for part in path.split(".")[:-1]:
            obj = getattr(obj, part)
        return obj

    def get(self, cfg, path: str):
        """The value at a dotted ``path`` such as ``"optimizer.lr_object"``."""
        return getattr(self._owner(cfg, self.leaf(path).path), path.rsplit(".", 1)[-1])

    def set(self, cfg, path: str, value):
        """Validate ``value`` (text from a GUI line edit is parsed) and store it; returns the
        stored value. Raises :class:`ConfigError` naming ``path`` when the value does not fit."""
        leaf = self.leaf(path)
        v = coerce(leaf, value, text=True)
        self._check_value(leaf.path, v)
        setattr(self._owner(cfg, path), leaf.name, v)
        return v

    def fields(self, cfg) -> list[FieldInfo]:
        """Every leaf of ``cfg`` in declaration order, with value and metadata (for forms)."""
        out = []
        for path, leaf in self.leaves.items():
            m = leaf.fld.metadata
            out.append(FieldInfo(path=path, type=leaf.ann, type_name=leaf.t.name,
                                 value=self.get(cfg, path), default=default_of(leaf.fld),
                                 unit=m["unit"], help=m["help"], group=m["group"],
                                 choices=m["choices"], min=m["min"], max=m["max"],
                                 min_exclusive=m["min_exclusive"], max_exclusive=m["max_exclusive"],
                                 safe_while_paused=m["safe_while_paused"],
                                 optional=leaf.t.optional, path_kind=m["path"]))
        return out

    def validate(self, cfg):
        """Check every field and the rules between fields; returns ``cfg``."""
        for path, leaf in self.leaves.items():
            self._check_value(path, coerce(leaf, self.get(cfg, path)))
        self._check_config(cfg)
        return cfg

    # ---- dict / TOML / JSON -----------------------------------------------------------------
    def to_dict(self, cfg, drop_none: bool = False) -> dict:
        """Nested plain dict (tuples become lists); ``drop_none`` leaves unset fields out."""
        out: dict = {}
        for path in self.leaves:
            v = self.get(cfg, path)
            if v is None and drop_none:
                continue
            *groups, key = path.split(".")
            table = out
            for g in groups:
                table = table.setdefault(g, {})
            table[key] = list(v) if isinstance(v, tuple) else v
        return out

    def from_dict(self, d: dict, source: str = ""):
        """Build and validate a configuration from a nested dict; missing keys take defaults."""
        pre = f"{source}: " if source else ""
        if not isinstance(d, dict):
            raise ConfigError(f"{pre}the configuration must be a table of groups, got "
                              f"{type(d).__name__}")
        cfg = self.root()
        groups = [f.name for f in dataclasses.fields(self.root) if f.name not in self.leaves]
        for gname, table in d.items():
            if gname in self.leaves:  # a key at the top level of a flat configuration
                try:
                    v = coerce(self.leaves[gname], table)
                    self._check_value(gname, v)
                except ConfigError as exc:
                    raise ConfigError(pre + str(exc)) from None
                setattr(cfg, gname, v)
                continue
            if gname not in groups and any("." not in p for p in self.leaves):
                try:  # a flat configuration: suggest the closest key
                    self.leaf(str(gname))
                except ConfigError as exc:
                    raise ConfigError(pre + str(exc)) from None
            if gname not in groups:
                close = difflib.get_close_matches(str(gname), groups, n=1)
                raise ConfigError(f"{pre}{gname}: unknown group"
                                  + (f" (did you mean {close[0]!r}?)" if close else "")
                                  + f"; known groups: {', '.join(groups)}")
            if not isinstance(table, dict):
                raise ConfigError(f"{pre}{gname}: expected a table [{gname}], got "
                                  f"{type(table).__name__}")
            for key, value in table.items():
                try:
                    leaf = self.leaf(f"{gname}.{key}")
                    v = coerce(leaf, value)
                    self._check_value(leaf.path, v)
                except ConfigError as exc:
                    raise ConfigError(pre + str(exc)) from None
                setattr(getattr(cfg, gname), key, v)
        try:
            return self.validate(cfg)
        except ConfigError as exc:
            raise ConfigError(pre + str(exc)) from None

    def to_toml(self, cfg, path: str | os.PathLike | None = None, comments: bool = True,
                header: str = "") -> str:
        """TOML text of ``cfg`` (written atomically to ``path`` when given). With ``comments``
        each key is preceded by its help, unit, choices and range; unset optional fields appear
        commented out (TOML cannot hold None)."""
        lines = [f"# {h}" for h in header.splitlines()] if header else []
        group = None
        infos = self.fields(cfg)
        # keys at the top level of a flat configuration must come before any [table]
        infos = [i for i in infos if "." not in i.path] + [i for i in infos if "." in i.path]
        for info in infos:
            g = info.path.split(".")[0] if "." in info.path else None
            if g is not None and g != group:
                group = g
                if lines:
                    lines.append("")
                if comments:
                    # the group's first paragraph: a summary may run over several source lines
                    summary = " ".join(type(getattr(cfg, g)).__doc__.strip().split("\n\n")[0].split())
                    lines.append(f"# {summary}")
                lines.append(f"[{g}]")
            key = info.path.rsplit(".", 1)[-1]
            if comments:
                lines.append(toml_comment(info))
            if info.value is None:
                if comments:
                    lines.append(f"# {key} = <{info.type_name.removesuffix(' | None')}>   (unset)")
            else:
                lines.append(f"{key} = {toml_value(info.value)}")
        text = "\n".join(lines) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def from_toml(self, src: str | os.PathLike):
        """Read a configuration from a TOML file path or TOML text."""
        return self._parse(src, ".toml", "TOML", tomllib.loads, tomllib.TOMLDecodeError)

    def to_json(self, cfg, path: str | os.PathLike | None = None) -> str:
        """JSON text (None written as null); written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(cfg), indent=2) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def from_json(self, src: str | os.PathLike):
        """Read a configuration from a JSON file path or JSON text."""
        return self._parse(src, ".json", "JSON", json.loads, json.JSONDecodeError)

    def _parse(self, src, suffix: str, label: str, loads, error: type[Exception]):
        text, name = read_source(src, suffix)
        try:
            d = loads(text)
        except error as exc:
            raise ConfigError(f"{name or 'configuration'}: invalid {label}: {exc}") from None
        return self.from_dict(d, name)
