"""The ``slicewise`` command line (:mod:`.main`): above the engine and the GUI, loading each lazily."""
