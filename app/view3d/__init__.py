"""The 3D tab: napari's viewer, in a process of its own where the platform allows it.

``remote`` (the tab's side of the 3D process) and ``process`` (``python -m
slicewise.app.view3d.process FD``: the view in that process); ``view`` (:class:`NapariView`,
the view itself) with ``loading`` (napari imported in the background), ``popout`` (a full
napari window), ``canvas`` (the OpenGL canvas in a native child window); ``layers`` (Qt-free:
layer data, binned previews, contrast, view state); ``shader_cache`` (vispy's shader parsing
kept per source); ``window_tab`` (the main window's mixin: which volume the tab shows, when).
"""
