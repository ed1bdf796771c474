"""Run by tests/test_mpi.py under mpiexec: a short reconstruction, results to JSON.

Arguments: data file, output folder, report file, and optionally a JSON object of configuration
overrides (dotted paths), e.g. ``'{"run.batch_angles": 1}'``. Every rank also writes
``<report>.rank<r>``: the shape of the frames it preloaded.
"""

import json
import sys

import numpy as np

from slicewise.engine.recon.config import ReconConfig, set_value
from slicewise.engine.recon.run import Reconstruction

data_path, out_dir, report = sys.argv[1:4]
overrides = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
cfg = ReconConfig()
cfg.data.path = data_path
cfg.run.output_dir = out_dir
cfg.run.epochs = 3
cfg.run.batch_angles = 6
cfg.run.save_tiff = False
cfg.run.backend = "numpy"
cfg.run.precision = "double"
for path, value in overrides.items():
    set_value(cfg, path, value)
rec = Reconstruction(cfg)
rec.run()
rank = 0 if rec.distributed is None else rec.distributed.rank
with open(f"{report}.rank{rank}", "w") as f:
    json.dump({"preloaded": list(np.shape(rec.problem.measured))}, f)
if rec.distributed is None or rec.distributed.is_root:
    with open(report, "w") as f:
        json.dump({"ranks": 1 if rec.distributed is None else rec.distributed.size,
                   "loss": rec.history[-1]["loss"], "terms": rec.history[-1]["terms"],
                   "epochs": rec.epoch, "stopped_early": rec.stopped_early,
                   "delta": np.asarray(rec.problem.params["delta"]).ravel().tolist()}, f)
