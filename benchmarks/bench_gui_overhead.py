"""What the desktop application costs a reconstruction, and how long its event loop ever stalls.

1. Overhead. The cone demo configuration (holotomography, ``--epochs`` epochs) is run
   alternately by ``slicewise reconstruct CONFIG`` and by ``slicewise gui CONFIG --start
   --quit-when-done`` (under Xvfb), ``--rounds`` times each. Compared: the wall time of each
   process, and the sum of the per-epoch wall times the run records in ``result.h5``
   (``extra/epoch_time_s``): the solver's own time, which is what contention with the window
   would slow down. The GUI's process wall time also holds its fixed start-up (Qt, the window).
2. Responsiveness. One more GUI run, in a driver process, with the 3D (napari) tab open from
   before Start to 2 s after the end (the final full-size 3D view included): a 10 ms QTimer on
   the window's thread records every tick; the longest gap between ticks minus 10 ms is the
   longest the event loop was blocked. Printed with the median and the 99th percentile, the
   blocks over 100 ms, the run's sum of epoch times, the live views' own accounting and when the
   live 3D updates landed. Then "Pop out to napari..." is
   pressed and the ticks of the next 4 s give the pop-out's longest block. ``--view window``
   draws the 3D view in the window's own process instead of its own (the default under X11,
   :mod:`slicewise.app.view3d.remote`), for comparison.

    python benchmarks/bench_gui_overhead.py [--epochs 20] [--rounds 3] [--backend numpy]
        [--skip-overhead] [--view default|process|window]

Without a display the script re-runs itself under ``xvfb-run``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import bench_parser  # noqa: E402

_DRIVER = r"""
import json, os, sys, time
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from slicewise.app.main_window import MainWindow
w = MainWindow()
w.resize(1500, 920)
w.show()
ticks = []
timer = QTimer()
timer.setInterval(10)
timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
state = {"started": None}

def cpu_3d():
    # the 3D view's own process (app/view3d/remote.py), if the 3D view runs in one
    proc = getattr(w.napari_view, "process", None)
    try:
        f = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError):
        return 0.0

def popouts():
    nv = w.napari_view   # in its own process: counted there
    return nv.status().get("popouts", 0) if hasattr(nv, "status") else len(nv._popouts)

def start():
    timer.start()
    state["started"] = time.perf_counter()
    state["cpu"] = time.process_time()
    state["cpu_3d"] = cpu_3d()
    w.start_run()

def poll():
    n3 = w.napari_view.updates   # when each live 3D update lands, during the run
    if state["started"] and "idle" not in state and n3 != state.get("n3", 0):
        state["n3"] = n3
        state.setdefault("t3", []).append(time.perf_counter() - state["started"])
    if state["started"] is None and w.can_start()[0] and w.dataset is not None:
        w.tabs.setCurrentWidget(w.napari_view)    # the 3D tab is open during the run ...
        if w.napari_view.ready:                   # ... and napari has loaded in the background
            QTimer.singleShot(500, start)
            state["started"] = 0.0
    elif state["started"] and "shown" not in state and \
            w.napari_view.cost_s is not None:
        state["shown"] = time.perf_counter()      # first volume drawn: one-time set-up is over
    elif state["started"] and w.run_state == "idle" and not w.controller.is_active() and \
            "idle" not in state:
        state["idle"] = time.perf_counter()       # the run has ended ...
        state["cpu_idle"] = time.process_time()
        state["cpu_3d_idle"] = cpu_3d()
    elif "idle" in state and (w.napari_view.busy or time.perf_counter() - state["idle"] < 2.0):
        pass                                      # ... the final 3D view is drawn meanwhile
    elif "idle" in state and "pop" not in state:
        state["pop"] = time.perf_counter()        # then "Pop out to napari..."
        w.napari_view.pop_out()
    elif "pop" in state and time.perf_counter() - state["pop"] < 4.0:
        pass                                      # ... made and drawn meanwhile
    elif "pop" in state:
        timer.stop()
        t_end = time.perf_counter()
        gaps = [max(0.0, (b - a) * 1e3 - 10.0) for a, b in zip(ticks, ticks[1:])]
        shown = state.get("shown", t_end)
        after = [g for a, g in zip(ticks[1:], gaps) if shown < a <= state["pop"]]
        popping = [g for a, g in zip(ticks[1:], gaps) if a > state["pop"]]
        print("RESULT " + json.dumps({"gaps_ms": gaps, "wall_s": t_end - state["started"],
                                      "run_s": state["idle"] - state["started"],
                                      "cpu_s": state["cpu_idle"] - state["cpu"],
                                      "cpu_3d_s": state["cpu_3d_idle"] - state["cpu_3d"],
                                      "view_mode": type(w.napari_view).__name__,
                                      "gaps_after_ms": after, "gaps_pop_ms": popping,
                                      "popouts": popouts(),
                                      "big": [(round(a - state["started"], 2), round(g))
                                              for a, g in zip(ticks[1:], gaps) if g > 100],
                                      "shown_s": shown - state["started"],
                                      "n_3d": w.napari_view.updates,
                                      "t_3d": state.get("t3", []),
                                      "live_share": w.controller.last_stats.overhead_fraction(),
                                      "snapshots": w.controller.last_stats.n_snapshots,
                                      "layers": w.napari_view.layer_names(),
                                      "result": str(w.result_path)}))
        w.close()
        app.exit(0)
        return
    QTimer.singleShot(50, poll)

w.load_config(sys.argv[1])
QTimer.singleShot(100, poll)
QTimer.singleShot(900000, lambda: app.exit(3))
sys.exit(app.exec())
"""


def epoch_sum(result: Path) -> tuple[float, int]:
    from slicewise.engine.io.results import read_result  # noqa: PLC0415

    times = np.ravel(read_result(result)["extra"]["epoch_time_s"]).astype(float)
    return float(np.nansum(times)), int(times.size)


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _xvfb_cpu() -> float:
    """CPU seconds of this display's X server so far (drawing the window costs it too)."""
    display = os.environ.get("DISPLAY", "").lstrip(":").split(".")[0]
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if cmd and cmd[0].endswith(b"Xvfb") and f":{display}".encode() in cmd:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return float("nan")


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, float]:
    """Wall time, CPU time of the process and its children (the GUI's solver process
    included), and CPU time of the X server, of one command."""
    c0, x0 = _cpu_children(), _xvfb_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu, xcpu = _cpu_children() - c0, _xvfb_cpu() - x0
    if os.environ.get("SLICEWISE_BENCH_VERBOSE"):
        print(proc.stderr[-2000:])
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, cpu, xcpu


def prepare(folder: Path, epochs: int, backend: str) -> Path:
    from slicewise.engine import demo  # noqa: PLC0415
    from slicewise.engine.recon import config as cfgmod  # noqa: PLC0415

    data = demo.ensure_demo_data(folder, "numpy")
    cfg = demo.demo_config(data, "out")
    cfg.run.epochs, cfg.run.backend = epochs, backend
    cfg.run.output_dir = "out"  # relative to the configuration's folder
    cfg.run.save_tiff, cfg.run.checkpoint_every = False, 0
    path = folder / "bench.toml"
    cfgmod.to_toml(cfg, path)
    return path


def overhead(cfg: Path, rounds: int, env: dict) -> None:
    exe = shutil.which("slicewise") or sys.exit("the slicewise command is not installed")
    rows = {"reconstruct": [], "gui": []}
    for r in range(rounds):
        for kind in ("reconstruct", "gui"):  # alternated, so that machine load hits both
            out = cfg.parent / f"out-{kind}-{r}"
            cmd = [exe, "reconstruct", str(cfg), "--out", str(out)] if kind == "reconstruct" \
                else [exe, "gui", str(cfg), "--start", "--quit-when-done"]
            if kind == "gui":  # the GUI writes to the configuration's output folder
                out = cfg.parent / "out"
                shutil.rmtree(out, ignore_errors=True)
            wall, cpu, xcpu = timed(cmd, cfg.parent, env)
            esum, n = epoch_sum(out / "result.h5")
            rows[kind].append((wall, esum, cpu, xcpu))
            print(f"  round {r + 1} {kind:11s}: process {wall:6.2f} s, sum of {n} epochs "
                  f"{esum:6.2f} s, CPU {cpu:6.2f} s (+ X server {xcpu:.2f} s)", flush=True)
    med = {k: [statistics.median(row[i] for row in v) for i in range(4)]
           for k, v in rows.items()}
    (cw, ce, cc, _), (gw, ge, gc, gx) = med["reconstruct"], med["gui"]
    print(f"median process wall time: reconstruct {cw:.2f} s, gui {gw:.2f} s "
          f"({100 * (gw / cw - 1):+.1f} %)")
    print(f"median sum of epoch times: reconstruct {ce:.2f} s, gui {ge:.2f} s "
          f"({100 * (ge / ce - 1):+.1f} %)   <- GUI cost to the solver")
    print(f"median CPU time (solver + window, all processes): reconstruct {cc:.2f} s, gui "
          f"{gc:.2f} s + X server {gx:.2f} s ({100 * ((gc + gx) / cc - 1):+.1f} %; less "
          "sensitive to other load on the machine than wall times)")


def responsiveness(cfg: Path, env: dict) -> None:
    shutil.rmtree(cfg.parent / "out", ignore_errors=True)
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(cfg)], cwd=cfg.parent, env=env,
                          capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"the GUI driver failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(lines[-1][len("RESULT "):])
    gaps = np.asarray(res["gaps_ms"])
    esum, n = epoch_sum(Path(res["result"]))
    print(f"3D tab open ({', '.join(res['layers'])}): {gaps.size} timer ticks over "
          f"{res['wall_s']:.1f} s; event-loop block median {np.median(gaps):.1f} ms, 99th "
          f"percentile {np.percentile(gaps, 99):.1f} ms, longest {gaps.max():.1f} ms; sum of "
          f"{n} epochs {esum:.2f} s; the window's process used {res['cpu_s']:.2f} s of CPU "
          f"until the run ended ({100 * res['cpu_s'] / res['run_s']:.1f} % of one core)")
    if res["view_mode"] == "RemoteNapariView":
        print(f"  the 3D view ran in its own process (app/view3d/remote.py), which used "
              f"{res['cpu_3d_s']:.2f} s of CPU until the run ended "
              f"({100 * res['cpu_3d_s'] / res['run_s']:.1f} % of one core)")
    after = np.asarray(res["gaps_after_ms"] or [0.0])
    print(f"  once the 3D viewer exists (its one-time set-up excluded): longest block "
          f"{after.max():.1f} ms, 99th percentile {np.percentile(after, 99):.1f} ms; "
          f"{res['n_3d']} live 3D updates")
    print(f"  first volume drawn {res['shown_s']:.1f} s after Start; run ended "
          f"{res['run_s']:.1f} s after Start (ticks recorded for 2 s more, the final 3D view's "
          f"drawing included); blocks over 100 ms (s after Start, ms): {res['big']}")
    print(f"  live views' own accounting: {res['snapshots']} snapshots, snapshot taking and "
          f"drawing {100 * res['live_share']:.1f} % of the run time")
    t3 = np.asarray(res["t_3d"])
    if t3.size > 1:
        print(f"  live 3D updates during the run: {t3.size}, landing at {np.round(t3, 1).tolist()} "
              f"s after Start; longest interval between two {np.diff(t3).max():.2f} s (a 3D "
              "update at least every LIVE_MAX_INTERVAL_S = 3 s, plus its drawing)")
    pop = np.asarray(res["gaps_pop_ms"] or [0.0])
    print(f"  then 'Pop out to napari...' ({res['popouts']} pop-out window(s) after 4 s): "
          f"longest block {pop.max():.1f} ms")


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--view", choices=("default", "process", "window"), default="default",
                    help="where the 3D view runs (SLICEWISE_3D_VIEW): its own process (the "
                         "default under X11) or the window's process")
    args = ap.parse_args()
    backend = "numpy" if args.backend == "auto" else args.backend
    if not os.environ.get("DISPLAY") and not os.environ.get("SLICEWISE_BENCH_XVFB"):
        xvfb = shutil.which("xvfb-run") or sys.exit("no display and no xvfb-run")
        env = dict(os.environ, SLICEWISE_BENCH_XVFB="1", QT_QPA_PLATFORM="xcb")
        sys.exit(subprocess.call([xvfb, "-a", "-s", "-screen 0 1600x1000x24", sys.executable,
                                  *sys.argv], env=env))
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "xcb"))
    if args.view != "default":
        env["SLICEWISE_3D_VIEW"] = args.view
    with tempfile.TemporaryDirectory(prefix="slicewise-bench-gui-") as tmp:
        env.update(XDG_DATA_HOME=f"{tmp}/xdg-data", XDG_CONFIG_HOME=f"{tmp}/xdg-config")
        cfg = prepare(Path(tmp), args.epochs, backend)
        print(f"# cone demo, {args.epochs} epochs, {backend} backend, "
              f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f}")
        if not args.skip_overhead:
            overhead(cfg, args.rounds, env)
        responsiveness(cfg, env)


if __name__ == "__main__":
    main()
