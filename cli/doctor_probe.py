"""The parts of ``slicewise doctor`` that run in a child process, each printing one JSON line.

``python -m slicewise.cli.doctor_probe gl``  -- make an OpenGL context the way the 3D view does
(vispy on PyQt6), draw a small volume with vispy's shaders and read the pixels back.
``python -m slicewise.cli.doctor_probe napari`` -- open a napari viewer (shown for a moment), draw
a small volume in 3D and list napari's plugins.
``python -m slicewise.cli.doctor_probe mpi`` -- initialise MPI through mpi4py: library, rank, size.

In a child because both can end the process rather than raise: Qt aborts when it cannot reach the
display, and a broken MPI installation may abort or hang in ``MPI_Init``.
"""

from __future__ import annotations

import json
import sys

#: The background the GL probe clears to, and how it knows that the volume was drawn on top.
_BACKGROUND = (255, 0, 0)


def probe_gl() -> dict:
    """Draw an 8^3 volume on a 48x48 vispy canvas; report the GL renderer and whether it drew."""
    import numpy as np  # noqa: PLC0415 - the probes import only what each needs
    import vispy  # noqa: PLC0415

    vispy.use(app="pyqt6")
    from vispy import scene  # noqa: PLC0415
    from vispy.gloo import gl  # noqa: PLC0415

    canvas = scene.SceneCanvas(size=(48, 48), show=True, bgcolor=tuple(c / 255 for c in _BACKGROUND))
    try:
        view = canvas.central_widget.add_view()
        vol = np.zeros((8, 8, 8), np.float32)
        vol[2:6, 2:6, 2:6] = 1.0
        scene.visuals.Volume(vol, parent=view.scene, clim=(0, 1), cmap="grays")
        view.camera = scene.TurntableCamera(fov=0)
        view.camera.set_range()
        image = canvas.render()  # compiles the shaders, draws into a framebuffer, reads it back
        canvas.set_current()
        info = {"version": gl.glGetParameter(gl.GL_VERSION),
                "renderer": gl.glGetParameter(gl.GL_RENDERER),
                "vendor": gl.glGetParameter(gl.GL_VENDOR)}
        drawn = int(np.any(image[..., :3] != np.array(_BACKGROUND, np.uint8), axis=-1).sum())
        from PyQt6.QtGui import QGuiApplication  # noqa: PLC0415 - loaded by vispy above

        return {"ok": drawn > 0, **info, "drawn_pixels": drawn,
                "platform": QGuiApplication.platformName(),
                "error": "" if drawn else "the test volume was not drawn (blank image)"}
    finally:
        canvas.close()


def probe_napari() -> dict:
    """A napari viewer drawing a 16^3 cube in 3D; napari's version and plugins."""
    import napari  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    from npe2 import PluginManager  # noqa: PLC0415

    viewer = napari.Viewer(show=True)  # a hidden viewer's canvas draws nothing
    try:
        vol = np.zeros((16, 16, 16), np.float32)
        vol[4:12, 4:12, 4:12] = 1.0
        viewer.add_image(vol, name="doctor")
        viewer.dims.ndisplay = 3
        image = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
        drawn = int(np.any(image != image[0, 0], axis=-1).sum())
    finally:
        viewer.close()
    manager = PluginManager.instance()
    manager.discover()
    return {"ok": drawn > 0, "napari": napari.__version__, "drawn_pixels": drawn,
            "plugins": sorted(m.name for m in manager.iter_manifests()),
            "error": "" if drawn else "the test volume was not drawn (blank image)"}


def probe_mpi() -> dict | None:
    """MPI's library and the world size; in a world of several ranks only rank 0 answers, after
    every rank has reported to it (None on the others)."""
    from mpi4py import MPI  # noqa: PLC0415 - initialises MPI

    comm = MPI.COMM_WORLD
    ranks = comm.gather(comm.Get_rank())
    if comm.Get_rank() != 0:
        return None
    return {"ok": True, "library": " ".join(MPI.Get_library_version().split()[:4]),
            "size": comm.Get_size(), "ranks": sorted(ranks),
            "mpi4py": sys.modules["mpi4py"].__version__}


PROBES = {"gl": probe_gl, "napari": probe_napari, "mpi": probe_mpi}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PROBES:
        print(f"usage: python -m slicewise.cli.doctor_probe {{{'|'.join(PROBES)}}}", file=sys.stderr)
        return 2
    try:
        out = PROBES[argv[0]]()
    except Exception as exc:  # noqa: BLE001 - reported to the doctor, which explains it
        out = {"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}
    if out is not None:  # one write, so that lines of several processes do not interleave
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
