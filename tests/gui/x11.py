"""The window manager's close button, for tests under Xvfb (which runs no window manager): an X11
``WM_DELETE_WINDOW`` client message sent to a top-level window, which Qt turns into a spontaneous
close event, exactly as a click on the title bar's close button does."""

from __future__ import annotations

import ctypes
import ctypes.util

_CLIENT_MESSAGE = 33


class _ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong),
                ("message_type", ctypes.c_ulong), ("format", ctypes.c_int),
                ("data", ctypes.c_long * 5)]


class _Event(ctypes.Union):   # XEvent: 24 longs
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


def close_like_the_window_manager(window_id: int) -> None:
    """Send WM_PROTOCOLS / WM_DELETE_WINDOW to the X11 window ``window_id``."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(_Event)]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    assert display, "no X display"
    try:
        ev = _Event()
        msg = ev.xclient
        msg.type, msg.window, msg.format = _CLIENT_MESSAGE, window_id, 32
        msg.message_type = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
        msg.data[0] = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
        x11.XSendEvent(display, window_id, 0, 0, ctypes.byref(ev))
        x11.XFlush(display)
    finally:
        x11.XCloseDisplay(display)
