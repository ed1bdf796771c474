"""Short background jobs (open a file, simulate a data set, read a result) off the UI thread.

Results come back through a Qt signal, which Qt queues to the UI thread, so the ``on_done`` /
``on_error`` callbacks always run where widgets may be touched.
"""

from __future__ import annotations

import logging
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from PyQt6.QtCore import QObject, pyqtSignal

log = logging.getLogger("slicewise.app.tasks")


class TaskRunner(QObject):
    busyChanged = pyqtSignal(bool, str)          # busy, label of the job in progress
    _delivered = pyqtSignal(object, object, object, str)  # callbacks, result, exc, traceback

    def __init__(self, parent: QObject | None = None, max_workers: int = 2):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="slicewise-task")
        self._active: dict[int, str] = {}
        self._counter = 0
        self._delivered.connect(self._deliver)

    def submit(self, label: str, fn: Callable[[], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException, str], None]) -> Future:
        log.debug("background: %s", label)
        self._counter += 1
        token = self._counter
        self._active[token] = label  # registered before the job can possibly finish

        def job():
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to on_error on the UI thread
                self._delivered.emit((token, on_done, on_error), None, exc, traceback.format_exc())
                return
            self._delivered.emit((token, on_done, on_error), result, None, "")

        self.busyChanged.emit(True, label)
        return self._pool.submit(job)

    def _deliver(self, cbs, result, exc, tb) -> None:
        token, on_done, on_error = cbs
        self._active.pop(token, None)
        try:
            if exc is None:
                on_done(result)
            else:
                on_error(exc, tb)
        finally:
            labels = list(self._active.values())
            self.busyChanged.emit(bool(labels), labels[-1] if labels else "")

    def busy(self) -> bool:
        return bool(self._active)

    def shutdown(self) -> None:
        """Wait for running jobs (they are short) and stop the pool."""
        self._pool.shutdown(wait=True, cancel_futures=True)
