"""Where the time goes: run a callable under cProfile and add up named groups of functions.

A group is a list of ``(file suffix, function name, "tot" | "cum")`` entries: ``tot`` counts the
time spent in the function itself (e.g. the pocketfft C call), ``cum`` includes its callees (e.g.
everything below ``Rotation.fwd``). Groups must not nest inside each other (the rotation does no
FFT, the loss does no rotation...); ``rest`` is the total minus the groups. cProfile's own overhead
is small here: the profiled calls are few and coarse (array primitives, not Python loops).
"""

from __future__ import annotations

import cProfile
import pstats
from typing import Callable

#: The groups the holotomography / ptychography benchmarks report.
GROUPS = {
    "FFTs": [("pypocketfft.c2c", "*", "tot"), ("cupy/fft/_fft.py", "_exec_fft", "cum")],
    "rotation": [("physics/rotation.py", "fwd", "cum"), ("physics/rotation.py", "adj", "cum"),
                 ("physics/rotation.py", "__init__", "cum")],
    "transmission": [("physics/optics.py", "transmission_of_index", "cum"),
                     ("physics/optics.py", "transmission", "cum"), ("physics/optics.py", "vjp", "cum")],
    "loss": [("recon/losses.py", "amplitude_loss_from_field", "cum"),
             ("recon/losses.py", "poisson_nll_from_field", "cum"), ("recon/losses.py", "vjp", "cum")],
    "optimizer": [("recon/optimizers.py", "step", "cum")],
    "patches": [("physics/patches.py", "fwd", "cum"), ("physics/patches.py", "adj", "cum"),
                ("physics/patches.py", "__init__", "cum")],
}


def _matches(key, entry) -> bool:
    filename, _, func = key
    suffix, name, _ = entry
    if suffix.startswith("pypocketfft"):  # a built-in: cProfile names it "{built-in method ...}"
        return suffix in func
    return filename.endswith(suffix) and (name == "*" or func == name)


def split(fn: Callable[[], object], groups: dict | None = None, repeat: int = 2) -> tuple[float, dict]:
    """Run ``fn`` ``repeat`` times under cProfile; return ``(total seconds, {group: seconds,
    "rest": s})``, each the smallest over the runs (other processes share the cores)."""
    runs = [_split_once(fn, GROUPS if groups is None else groups) for _ in range(max(repeat, 1))]
    total = min(r[0] for r in runs)
    return total, {k: min(r[1][k] for r in runs) for k in runs[0][1]}


def _split_once(fn, groups) -> tuple[float, dict]:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof).stats  # key -> (cc, nc, tottime, cumtime, callers)
    total = sum(v[2] for v in stats.values())
    out = {}
    for name, entries in groups.items():
        t = 0.0
        for key, (_, _, tt, ct, _) in stats.items():
            for e in entries:
                if _matches(key, e):
                    t += tt if e[2] == "tot" else ct
                    break
        out[name] = t
    out["rest"] = max(total - sum(out.values()), 0.0)
    return total, out


def rescale(parts: dict, unprofiled_total: float) -> dict:
    """The split of an epoch that took ``unprofiled_total`` without the profiler: the named groups
    (C-heavy: FFTs, sparse products, transcendental functions) are barely slowed by cProfile, whose
    per-call cost lands on the many small Python calls; so ``rest`` is re-estimated as
    ``unprofiled_total - sum(groups)``."""
    out = {k: v for k, v in parts.items() if k != "rest"}
    out["rest"] = max(unprofiled_total - sum(out.values()), 0.0)
    return out


def format_split(total: float, parts: dict) -> str:
    items = [f"{k} {v:.3f} s ({100 * v / total:.0f}%)" for k, v in parts.items() if v > 0.0005]
    return f"{total:.3f} s = " + ", ".join(items)
