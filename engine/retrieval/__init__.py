"""Phase retrieval and tomographic inversion, used for starting guesses.

* :mod:`.ctf` -- near-field holography: single-distance Paganin, multi-distance CTF.
* :mod:`.iterative` -- the CTF repeated on the misfit of the exact hologram model (strong phase).
* :mod:`.fbp` -- filtered back-projection through the engine's rotation operator.
"""
