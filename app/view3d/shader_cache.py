"""Shader variables parsed once per shader source, not once per drawn object.

vispy finds the uniforms, attributes and varyings of every new GL program by running regular
expressions over its whole GLSL source, on the window's thread. The 3D view makes many programs
with the same source: each panel of napari's grid has its own axes, scale bar and volume, and a
pop-out window repeats them all. That parsing is about half of the first drawing of a panel
(tens of milliseconds with software OpenGL, where everything else is slow too), so its result is
kept per source text. :func:`install` wraps vispy's parser; without the vispy internals it
expects (another vispy version), it leaves vispy as it is.
"""

from __future__ import annotations

import logging

log = logging.getLogger("slicewise.app.napari")

MAX_SOURCES = 256   # distinct shader sources kept (a few dozen in practice)


def install() -> bool:
    """Wrap ``vispy.gloo.Program._parse_variables_from_code``; True when it is (now) wrapped."""
    try:
        from vispy.gloo.program import Program  # noqa: PLC0415
    except ImportError:
        return False
    parse = Program.__dict__.get("_parse_variables_from_code")
    if parse is None or not hasattr(Program, "_process_pending_variables"):
        log.debug("vispy's program parser not found: shader variables parsed as usual")
        return False
    if getattr(parse, "_slicewise_cached", False):
        return True
    cache: dict[str, dict] = {}

    def cached(self, update_variables=True):
        try:
            code = "\n\n".join(sh.code for sh in self._shaders)
        except AttributeError:
            return parse(self, update_variables=update_variables)
        known = cache.get(code)
        if known is None:
            parse(self, update_variables=False)
            if len(cache) >= MAX_SOURCES:
                cache.clear()
            cache[code] = dict(self._code_variables)
        else:
            self._code_variables = dict(known)
        if update_variables:
            self._process_pending_variables()

    cached._slicewise_cached = True
    cached.__doc__ = parse.__doc__
    Program._parse_variables_from_code = cached
    return True
