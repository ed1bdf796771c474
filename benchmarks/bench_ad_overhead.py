"""AD tape overhead: forward+backward of an FFT chain through the tape vs the same FFTs by hand.

Chain: L = sum |ifft2(K * fft2(x))|^2 with a constant kernel K, gradient w.r.t. complex x.
The hand-written version does the same 4 FFTs and elementwise work with no tape.
Prints one line per size and the ratio (target: <= 1.3 at 1024^2).

    python benchmarks/bench_ad_overhead.py [--backend numpy|cupy] [--sizes 256 512 1024 2048]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import bench_parser, best_time, start  # noqa: E402

from slicewise.engine import ops, value_and_grad  # noqa: E402


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    be, sync = start(args)
    xp = be.xp
    print(f"{'size':>6} {'bare fwd+bwd (ms)':>18} {'tape fwd+bwd (ms)':>18} {'ratio':>6}")
    for n in args.sizes:
        rng = np.random.default_rng(0)
        x = be.to_complex(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
        k = be.to_complex(np.exp(1j * rng.standard_normal((n, n))))

        def bare():
            y = be.ifft2(k * be.fft2(x))
            loss = float((y.real ** 2 + y.imag ** 2).sum())
            g = be.fft2(2 * y)
            g = be.ifft2(g * k.conj())
            return loss, g

        def chain(z):
            return ops.sum(ops.abs2(ops.ifft2(ops.mul(ops.fft2(z), k))))

        vg = value_and_grad(chain)
        lv, gv = vg(x)
        lb, gb = bare()
        assert abs(lv - lb) <= 1e-3 * abs(lb) and float(xp.abs(gv - gb).max()) <= 1e-3 * float(xp.abs(gb).max())
        t_bare = best_time(bare, args.repeat, sync=sync)
        t_tape = best_time(lambda: vg(x), args.repeat, sync=sync)
        print(f"{n:>6} {t_bare * 1e3:>18.2f} {t_tape * 1e3:>18.2f} {t_tape / t_bare:>6.2f}")


if __name__ == "__main__":
    main()
