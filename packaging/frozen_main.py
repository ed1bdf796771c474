"""Entry point of the frozen (PyInstaller) bundle: the ``slicewise`` command, and its children.

The desktop window starts its solver and its 3D view as ``sys.executable -m MODULE FD``
(``app/child_pipe.py``). In a bundle ``sys.executable`` is this program, not a Python
interpreter, so it understands that one form of ``-m`` itself: a module of Slicewise is run as
``__main__``; anything else goes to the ``slicewise`` command line.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys


def main() -> int:
    # a library's multiprocessing child re-runs this program: let multiprocessing take it over
    multiprocessing.freeze_support()
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "-m" and args[1].startswith("slicewise."):
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    from slicewise.cli.main import main as slicewise_main

    return slicewise_main(args)


if __name__ == "__main__":
    sys.exit(main())
