"""Shipped resources: the icon set, the Linux desktop entry and AppStream metadata.

Read through :mod:`importlib.resources`, so that they are found alike in a source checkout
(editable install), an installed wheel and the frozen bundle; nothing here assumes a file system
path. The PNG icons are rendered from ``slicewise.svg`` by ``packaging/make_icons.py``.
"""

from __future__ import annotations

from importlib.resources import files

#: Reverse-DNS application id: names the desktop entry, the AppStream metadata and the icon
#: when installed (packaging/install_desktop.sh).
APP_ID = "org.slicewise.Slicewise"
#: Pixel sizes of the PNG icon set (resources/slicewise-N.png).
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
DESKTOP_ENTRY = f"{APP_ID}.desktop"
METAINFO = f"{APP_ID}.metainfo.xml"
SVG_ICON = "slicewise.svg"


def read_bytes(name: str) -> bytes:
    """A resource's content by its name below this package (``"slicewise-64.png"``)."""
    resource = files(__name__)
    for part in name.split("/"):
        resource = resource / part
    return resource.read_bytes()


def icon_png(size: int) -> bytes:
    """The PNG icon of ``size`` x ``size`` pixels (one of :data:`ICON_SIZES`)."""
    if size not in ICON_SIZES:
        raise ValueError(f"no {size} px icon; sizes: {', '.join(map(str, ICON_SIZES))}")
    return read_bytes(f"slicewise-{size}.png")


def window_icon():
    """The application's icon as a ``QIcon`` holding every size (the GUI's window icon)."""
    from PyQt6.QtGui import QIcon, QPixmap  # noqa: PLC0415 - Qt only for the GUI

    icon = QIcon()
    for size in ICON_SIZES:
        pixmap = QPixmap()
        if not pixmap.loadFromData(icon_png(size), "PNG"):
            raise ValueError(f"slicewise-{size}.png is not a readable PNG")
        icon.addPixmap(pixmap)
    return icon
