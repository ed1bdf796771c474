"""Closed-form phase retrieval and tomographic inversion, used for starting guesses.

* :mod:`.ctf` -- near-field holography: single-distance Paganin, multi-distance CTF.
* :mod:`.fbp` -- filtered back-projection through the engine's rotation operator.
"""
