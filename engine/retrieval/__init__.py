"""Phase retrieval and tomographic inversion, used for starting guesses.

* :mod:`.ctf` -- near-field holography: single-distance Paganin, multi-distance CTF.
* :mod:`.masked` -- the same on weighted detector pixels (a detector mask, pixels held out of the fit).
* :mod:`.iterative` -- the CTF repeated on the misfit of the exact hologram model (strong phase).
* :mod:`.fbp` -- filtered back-projection through the engine's rotation operator.
"""
