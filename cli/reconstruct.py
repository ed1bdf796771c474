"""``slicewise reconstruct``: run a reconstruction from a TOML configuration with a progress bar."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

from slicewise.engine import interrupts
from slicewise.engine.errors import ConfigError


def add_reconstruct_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Reconstruct from a TOML configuration. Ctrl-C, SIGTERM and SIGHUP stop cleanly "
                     "after the current minibatch and write a checkpoint; resume with --resume. "
                     "Exit codes: 0 finished, 2 refused (bad input), 1 failed, 128 + the signal "
                     "when a signal stopped the run (Ctrl-C 130, SIGHUP 129, SIGTERM 143).")
    p.add_argument("config", nargs="?", help="configuration file (.toml or .json)")
    p.add_argument("--epochs", type=int, help="override run.epochs")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"), help="override run.backend")
    p.add_argument("--out", help="override run.output_dir")
    p.add_argument("--resume", metavar="CKPT", help="continue from this checkpoint/result file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run's results in the output folder (run.overwrite)")
    p.add_argument("--ranks", type=int, metavar="N",
                   help="run on N MPI ranks: starts mpiexec and relays Ctrl-C, SIGTERM and SIGHUP "
                        "to every rank, so that each stop writes the checkpoint")
    p.add_argument("--halves", action="store_true",
                   help="split-half validation: reconstruct the even and the odd frames (scan "
                        "positions; angles for a tomogram) into OUT/even and OUT/odd and write "
                        "their Fourier ring correlation to OUT/frc.h5 and OUT/frc.png")
    p.add_argument("--example", choices=("ptycho", "holo", "tomo", "nearfield-ptycho"),
                   help="print a commented example configuration and exit (redirect it to a file)")
    p.set_defaults(func=run_reconstruct_cli)


def load_config(path: Path):
    from slicewise.engine.recon.config import from_json, from_toml  # noqa: PLC0415

    if not path.exists():
        raise ConfigError(f"configuration file {path} does not exist; write one with "
                          "`slicewise reconstruct --example ptycho > my.toml`")
    return from_json(path) if path.suffix == ".json" else from_toml(path)


def run_reconstruct_cli(args: argparse.Namespace) -> int:
    from slicewise.engine.recon.config import example_config, set_value  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    if args.example:
        sys.stdout.write(example_config(args.example))
        return 0
    if not args.config:
        raise ConfigError("give a configuration file (or --example ptycho|holo|tomo|nearfield-ptycho to write one)")
    if args.ranks is not None:
        from slicewise.cli.mpi_launch import launch_ranks  # noqa: PLC0415

        return launch_ranks(args.ranks, _rank_arguments(args))
    path = Path(args.config)
    cfg = load_config(path)
    if args.epochs is not None:
        set_value(cfg, "run.epochs", args.epochs)
    if args.backend:
        set_value(cfg, "run.backend", args.backend)
    if args.out:
        set_value(cfg, "run.output_dir", str(Path(args.out).resolve()))
    if args.overwrite:
        set_value(cfg, "run.overwrite", True)
    refuse_config_as_output(path, cfg)
    if args.halves:
        from slicewise.cli.halves import run_halves  # noqa: PLC0415

        if args.resume:
            raise ConfigError("--halves starts two new reconstructions; --resume continues one "
                              "(resume each half with its own checkpoint instead)")
        return run_halves(cfg, path.resolve().parent, reconstruct_with_progress, tqdm)
    return reconstruct_with_progress(cfg, path.resolve().parent, resume=args.resume, tqdm=tqdm)


def _rank_arguments(args: argparse.Namespace) -> list[str]:
    """The command line of each MPI rank: this one without ``--ranks``."""
    out = ["-v"] if getattr(args, "verbose", False) else []
    out += ["reconstruct", str(Path(args.config).resolve())]
    for flag, value in (("--epochs", args.epochs), ("--backend", args.backend),
                        ("--out", args.out and str(Path(args.out).resolve())),
                        ("--resume", args.resume and str(Path(args.resume).resolve()))):
        if value is not None:
            out += [flag, str(value)]
    return out + (["--overwrite"] if args.overwrite else []) + (["--halves"] if args.halves else [])


def refuse_config_as_output(path: Path, cfg) -> None:
    """The run writes config.toml into its output folder: never over the configuration being run
    (``output_dir = "."`` beside a file named config.toml), unless a run wrote that file."""
    from slicewise.engine.io.arrays import resolve_path  # noqa: PLC0415
    from slicewise.engine.recon.loop.output import is_run_config  # noqa: PLC0415

    target = resolve_path(cfg.run.output_dir, path.resolve().parent) / "config.toml"
    if target.exists() and os.path.samefile(target, path) and not is_run_config(path):
        raise ConfigError(f"run.output_dir (--out) {target.parent} is the folder of {path}, and a run "
                          "writes its configuration there as config.toml; choose another output "
                          "folder (--out, or output_dir = \"results\")")


#: Signals that stop a run cleanly: Ctrl-C, and what batch schedulers send before killing a job.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextlib.contextmanager
def _stop_on_signals(rec, write):
    """While the run lasts, each stop signal ends it after the current minibatch with a checkpoint;
    yields the list of the signals received (the exit code is 128 + the first).

    A second Ctrl-C aborts at once in a single process (checkpointing unless that would keep a
    half-done update). Under MPI every rank may receive the signal, some twice (the terminal and
    ``mpiexec`` both send it): it only ever requests the stop, which the ranks agree on at the
    next minibatch, so none is left waiting.
    """
    previous = {}
    single = rec.distributed is None
    received: list[int] = []

    def on_signal(signum, frame):
        received.append(signum)
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if not rec.stop_requested:
            write(f"{name}: stopping after this minibatch and writing a checkpoint"
                  + (" (Ctrl-C again to abort)" if single and signum == signal.SIGINT else ""))
        elif single and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the run loop still writes a checkpoint
        rec.stop()

    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, on_signal)
    try:
        interrupts.raise_if_received()  # one that came during start-up and was swallowed
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def reconstruct_with_progress(cfg, base_dir: Path, resume=None, tqdm=None, dataset=None) -> int:
    """Build and run a reconstruction, showing a progress bar; Ctrl-C stops cleanly.
    ``dataset``: the data set to use instead of opening ``data.path`` (e.g. half of it)."""
    from slicewise.engine.recon.run import Reconstruction  # noqa: PLC0415

    rec = Reconstruction(cfg, dataset, base_dir=base_dir, resume=resume)
    dist = rec.distributed
    root = dist is None or dist.is_root
    say = print if root else (lambda *a, **k: None)  # MPI: rank 0 speaks for all ranks
    ranks = f", {dist.size} MPI ranks" if dist is not None else ""
    say(f"backend: {rec.backend.describe()}{ranks}")
    prob = rec.problem
    say(f"model: {prob.kind} ({prob.model.describe()}), object {prob.object_shape} "
        f"(nz, ny, nx), data {rec.dataset.shape}, output {rec.output_dir}")
    say(f"estimated peak memory: {rec.memory_estimate_bytes / 2**20:.0f} MiB")
    bar = tqdm(total=rec.n_epochs, initial=rec.epoch, unit="epoch", desc="reconstructing",
               disable=not root)

    def on_progress(ev):
        if ev.kind == "epoch":
            bar.update(1)
            post = {"loss": f"{ev.loss:.4g}"}
            if ev.validation == ev.validation:   # measured (not NaN)
                post["val"] = f"{ev.validation:.4g}"
            bar.set_postfix(post)
        elif ev.kind == "checkpoint":
            bar.write(f"checkpoint: {ev.message}")

    rec.add_callback(on_progress)
    try:  # closed before any message: a bar left open is drawn again at exit, after that message
        write = bar.write if root else (lambda line: None)
        with _stop_on_signals(rec, write) as received:  # may raise a recorded start-up signal
            try:
                result = rec.run()
                bar.close()
                _summary(rec, result, say)
            except KeyboardInterrupt:  # Ctrl-C again: no clean stop; say where the state is
                raise interrupts.RunInterrupted(received[-1] if received else signal.SIGINT,
                                                rec.checkpoint_path) from None
    finally:
        bar.close()
    return _exit_code(rec, received)


def _summary(rec, result, say) -> None:
    h = rec.history
    first, last = (h[0]["loss"], h[-1]["loss"]) if h else (float("nan"), float("nan"))
    total_s = sum(x["time_s"] for x in h if x["time_s"] == x["time_s"])
    say(f"{rec.state}: {rec.epoch}/{rec.n_epochs} epochs, loss {first:.4g} -> {last:.4g}, "
        f"{total_s:.1f} s, peak memory {rec.peak_memory_bytes / 2**20:.0f} MiB")
    if rec.stopped_early:
        say(f"stopped early: {rec.early_stop_reason}")
    kept = (f" (the estimate of epoch {rec.best.epoch}, the best validation loss)"
            if rec.config.run.early_stop and rec.best.epoch and rec.best.epoch != rec.epoch else "")
    say(f"result: {result}{kept}\ncheckpoint: {rec.checkpoint_path}")


def _exit_code(rec, received: list[int]) -> int:
    """0 for a finished run (early stopping included), 128 + the signal for one a stop signal
    ended (batch scripts tell them apart: README, "Exit codes"); under MPI every rank returns
    the same."""
    code = 0
    if rec.state == "stopped" and received:
        code = 128 + received[0]
    elif rec.state not in ("finished", "stopped"):
        code = 1
    if rec.distributed is not None:  # a rank stopped by the others' signal has none of its own
        code = rec.distributed.largest(code)
    return code
