"""Screenshot for docs/real-data.md: the main window opened on a beamline-style CXI file, as
``slicewise gui scan.cxi`` opens it (data summary with the field and where it came from, frame
browser).

Run under a (virtual) display::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python scripts/screenshot_real_data.py [--out docs/images]

The file is the simulated twin of a synchrotron near-field ptychography scan whose focused beam
lights a third of the detector (engine/twin.py, ``lit_fraction=1/3``): int32 counts, a dark rim,
5 dead pixels in a CXI bit-field mask, translations in metres. Saves ``real_data_cxi.png``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from screenshots import _settle, _wait, fresh_window  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for the PNG")
    p.add_argument("--size", default="1500x920", help="window size WxH")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from slicewise.engine.twin import simulate_twin

    app, work, win = fresh_window(width, height)
    scan = work / "star_scan.cxi"
    simulate_twin(scan, lit_fraction=1 / 3)
    win.show()
    _settle(app)
    win.open_path(str(scan))
    _wait(app, lambda: win.dataset is not None, 60, "the CXI file")
    win.frames_browser.setFocus()
    _settle(app, 1.5)
    png = out / "real_data_cxi.png"
    win.grab().save(str(png))
    print(f"wrote {png}")
    win.close()
    logging.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
