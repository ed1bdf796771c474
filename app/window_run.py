"""Run control of the main window: start, pause/resume, stop, reset, and the solver's signals
(progress, snapshots, the end of a run) shown in the toolbar and the live views.

A mixin of :class:`.main_window.MainWindow`; the solver runs in a process of its own
(:class:`.worker.RunController`), the rules for when a run may start live in
:class:`.session.Session`.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from PyQt6.QtCore import QTimer, QUrl
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import QApplication

from . import dialogs
from .file_jobs import checkpoint_epoch
from .stop_signals import signal_name
from .views.common import format_duration
from .worker import RunInfo

log = logging.getLogger("slicewise.app")

PROGRESS_EVERY_S = 0.25   # minibatch progress shown at most this often (each costs a repaint)


class RunMixin:
    # ---- run control -------------------------------------------------------------------------
    def can_start(self) -> tuple[bool, str]:
        return self.session.can_start()

    def request_autostart(self) -> None:
        """Start as soon as the form allows it (``slicewise gui CONFIG --start``)."""
        self._autostart = True
        self._update_actions()

    def autostart_check(self) -> None:
        """After a file opened with ``--start``: a form that cannot start says why (and, when
        scripted, ends the application instead of waiting for a user)."""
        ok, why = self.can_start()
        if self._autostart and not ok and why:
            self._autostart = False
            self.report("Start", f"Cannot start: {why}")

    def start_run(self, resume: str | None = None) -> None:
        ok, why = self.can_start()
        if not ok:
            if why:
                self.report("Start", f"Cannot start: {why}")
            return
        if resume and not self._epochs_left(resume):
            return
        cfg = self.params.config()
        problem = self.session.output_dir_problem(cfg.run.output_dir)
        if problem:
            self.report("Start", f"Cannot start: {problem}")
            return
        self.reset_run(keep_camera=True)
        self.session.run_info = None
        self.session.set_run_state("starting")
        self.params.mark_applied()
        log.info("starting a reconstruction (%d epochs%s)", cfg.run.epochs,
                 f", resuming {resume}" if resume else "")
        self.controller.start(cfg, self.session.base_dir(), resume)

    def _epochs_left(self, resume: str) -> bool:
        """A checkpoint already at or past run.epochs would end at once ("finished"): say so
        and offer to continue for more epochs (run.epochs is the total); False when the user
        declines (nothing runs)."""
        done, asked = checkpoint_epoch(resume), int(self.params.value("run.epochs"))
        if done is None or done < asked:
            return True
        text = (f"{Path(resume).name} is at epoch {done}, already past the {asked} epochs "
                "asked for (run.epochs)")
        more = None if self.quit_when_done else dialogs.ask_more_epochs(self, done, asked)
        if more is None:
            if self.quit_when_done:
                self.report("Resume", f"Cannot resume: {text}; raise run.epochs.")
            else:
                self.statusBar().showMessage(f"{text}; nothing to run", 15000)
                log.info("%s; not resumed", text)
            return False
        self.params.set_value("run.epochs", done + int(more))
        log.info("%s: continuing for %d more (run.epochs = %d)", text, more, done + more)
        return True

    def resume_from_checkpoint(self) -> None:
        path = dialogs.open_file(self, "Resume from checkpoint", dialogs.RESULT_FILTER)
        if path:
            self.start_run(resume=path)

    def continue_result(self) -> None:
        """Continue the opened (or last written) result with the form's settings."""
        path = self.session.result_path
        if path is None or not Path(path).is_file():
            self.report("Continue", "Open a result file first (File \u203a Open).")
            return
        self.start_run(resume=str(path))

    def open_output_folder(self) -> None:
        info = self.session.run_info
        folder = info.output_dir if info is not None else (
            self.session.result_path.parent if self.session.result_path else None)
        if folder is None:
            folder = Path(self.session.base_dir()) / self.params.config().run.output_dir
        if not Path(folder).is_dir():
            self.report("Open output folder", f"The output folder {folder} does not exist yet; "
                        "it is created when a run starts.")
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def toggle_pause(self) -> None:
        if self.run_state == "running":
            self.controller.pause()
            self.act_pause.setEnabled(False)  # until the solver confirms the pause
            self.statusBar().showMessage("pausing after this minibatch\u2026")
        elif self.run_state == "paused":
            bad = self.params.errors()
            if bad:  # an invalid value typed while paused is refused, never dropped silently
                path, why = next(iter(bad.items()))
                self.report("Resume", f"Cannot resume: {why}\n\nCorrect {path or 'the field'} "
                            "(or Stop the run); the run stays paused.")
                return
            self.act_pause.setEnabled(False)  # until the solver confirms
            self.controller.resume(self.params.pending_changes())

    def _on_applied(self, changes: dict) -> None:
        log.info("applied while paused: %s", ", ".join(f"{k} = {v}" for k, v in changes.items()))
        self.params.mark_applied()

    def _on_refused(self, message: str) -> None:
        self.act_pause.setEnabled(True)
        self.report("Resume", f"The run refused the changed parameters: {message}\n\nThe run "
                    "stays paused; correct the field or Stop.")

    def stop_run(self) -> None:
        if self.controller.is_active():
            self.controller.stop()
            self.session.set_run_state("stopping")

    def reset_run(self, keep_camera: bool = False) -> None:
        """Forget the live views (and the 3D view) of the last run; its files stay."""
        if self.controller.is_active():
            return
        self.session.last_snapshot = None
        self._volumes = None
        self.live.clear()
        if self.session.dataset is not None:
            self.live.show_data_frame(self.session.dataset)
        self.napari_view.clear(keep_camera)
        self.progress.setValue(0)
        self.epoch_label.setText("epoch \u2013")
        self.eta_label.setText("")
        self._update_actions()

    def _update_actions(self) -> None:
        s = self.session
        ok, why = s.can_start()
        active = self.controller.is_active()
        self.params.set_run_state({"paused": "paused", "idle": "idle"}.get(s.run_state,
                                                                           "running"))
        self.act_pause.setText("Resume" if s.run_state == "paused" else "Pause")
        self.act_start.setEnabled(ok)
        self.act_start.setToolTip("start a reconstruction" if ok else f"cannot start: {why}")
        self.start_reason.setText(f"  cannot start: {why}" if why else "")
        self.act_pause.setEnabled(s.run_state in ("running", "paused"))
        self.act_stop.setEnabled(active and s.run_state != "stopping")
        self.act_reset.setEnabled(not active)
        self.act_resume_ckpt.setEnabled(ok)
        self.act_continue.setEnabled(ok and s.result_path is not None)
        for a in (self.act_open, self.act_simulate, self.act_load_cfg, self.act_demo):
            a.setEnabled(not active)
        if self._autostart and ok:
            self._autostart = False
            QTimer.singleShot(0, self.start_run)

    # ---- solver signals ----------------------------------------------------------------------
    def _on_run_created(self, info: RunInfo) -> None:
        self.session.run_info = info
        self.backend_label.setText(f"backend: {info.backend}")
        self.frames_view.set_counts(info.n_angles, info.n_spots)
        self.frames_view.set_log_scale(info.modality == "farfield")
        self.frames_view.set_modality(info.modality, info.n_distances, info.n_tiles)
        log.info("output folder: %s", info.output_dir)

    def _on_events(self, events: list) -> None:
        shown = None
        for ev in events:
            if ev.kind in ("batch", "epoch"):
                self.loss_view.add_event(ev)
                shown = ev
                if ev.kind == "epoch":
                    log.info("epoch %d/%d: loss %.6g", ev.epoch, ev.n_epochs, ev.loss)
            elif ev.kind == "state" and ev.state in ("running", "paused"):
                # the session never lets a late "running" undo a Stop already asked for
                if self.session.set_run_state(ev.state):
                    self.statusBar().showMessage(
                        "paused: the parameters that are not greyed out can be changed; they "
                        "apply on Resume" if ev.state == "paused" else "running", 8000)
                    if ev.state == "paused":
                        self.full_3d_when_paused()
            elif ev.kind == "checkpoint":
                log.info("checkpoint written: %s", ev.message)
            elif ev.kind == "config":
                # reasons: from the run's plan (RunPlan), where the run sends them
                self.params.show_run_choices(ev.changes, getattr(ev, "reasons", None))
        # the progress bar repaints at once (Qt's rule for it): once per bundle of events, and
        # minibatch progress at most every PROGRESS_EVERY_S; epochs always
        now = time.monotonic()
        if shown is not None and (shown.kind == "epoch" or
                                  now - self._progress_at >= PROGRESS_EVERY_S):
            self._progress_at = now
            self._show_progress(shown)

    def _show_progress(self, ev) -> None:
        n_epochs = max(ev.n_epochs, 1)
        if ev.kind == "batch":
            done = (ev.epoch - 1 + ev.batch / max(ev.n_batches, 1)) / n_epochs
            self.epoch_label.setText(f"epoch {ev.epoch}/{ev.n_epochs}  "
                                     f"batch {ev.batch}/{ev.n_batches}")
        else:
            done = ev.epoch / n_epochs
            self.epoch_label.setText(f"epoch {ev.epoch}/{ev.n_epochs}")
        self.progress.setValue(int(round(1000 * min(done, 1.0))))
        self.eta_label.setText(f"ETA {format_duration(ev.eta_s)}, {format_duration(ev.elapsed_s)}"
                               " elapsed")

    def _on_snapshot(self, snap) -> None:
        """Draw a snapshot; the time it takes goes back to the solver's budget."""
        t0 = time.perf_counter()
        try:
            self.show_snapshot(snap)
        finally:
            self.controller.snapshot_handled(time.perf_counter() - t0)

    def show_snapshot(self, snap) -> None:
        self.session.last_snapshot = snap
        info = self.run_info
        energy = info.energy_ev if info else (self.dataset.energy_ev if self.dataset else None)
        self.live.show_snapshot(snap, energy)
        self._volumes = None  # built from last_snapshot when the 3D view needs it
        self.live_3d()

    def _on_run_finished(self, path, state: str) -> None:
        self.session.set_result(path)
        self._final_state = state
        if path:
            self.statusBar().showMessage(f"{state}: result written to {path}", 15000)
        # the full-resolution 3D view in a turn of its own, after the run's last messages
        QTimer.singleShot(0, self._final_3d)

    def _on_run_failed(self, exc: BaseException, tb: str) -> None:
        self._final_state = "failed"
        self.statusBar().showMessage("the reconstruction failed", 15000)
        # the failed run's epoch and ETA would read as if it were still going
        self.epoch_label.setText("failed")
        self.eta_label.setText("")
        self.progress.setValue(0)
        self.report_exc(exc, "Reconstruction", title="Reconstruction failed", details=tb)

    def _on_solver_ended(self) -> None:
        stats = self.controller.last_stats
        if stats and stats.run_s > 0:
            log.info("live views: %d snapshots, %.2f s on the solver side + %.2f s drawing = "
                     "%.1f %% of %.1f s run time", stats.n_snapshots, stats.callback_s,
                     stats.gui_s, 100 * stats.overhead_fraction(), stats.run_s)
        self.session.set_run_state("idle")
        if self._signalled:      # stopped by a signal: its checkpoint is written, now close
            self._quit(0)
            return
        if self.session.dataset is not None and not self.quit_when_done:
            self.controller.prewarm()  # the next Start finds its process ready
        self.params.revert_invalid()  # values typed while paused that were never applied
        self._on_form_changed()
        if self.quit_when_done:
            self._quit(0 if getattr(self, "_final_state", "") == "finished" else 1)

    def stop_and_quit(self, signum: int) -> None:
        """A stop signal (:mod:`.stop_signals`): as ``slicewise reconstruct`` does, the run
        stops after the current minibatch and writes its checkpoint and result; then the window
        closes and the application exits with code 0."""
        name = signal_name(signum)
        if self._signalled:
            log.info("%s: already stopping", name)
            return
        self._signalled = True
        if self.controller.is_active():
            text = f"{name}: stopping after this minibatch and writing a checkpoint, then closing"
            self.stop_run()
        else:
            text = f"{name}: closing"
            self._quit(0)
        log.warning("%s", text)
        print(text, file=sys.stderr, flush=True)  # the terminal that sent it sees it too

    def _quit(self, code: int) -> None:
        self.exit_code = code
        QTimer.singleShot(0, lambda: (self.close(), QApplication.exit(code)))
