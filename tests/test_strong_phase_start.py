"""The iterated-CTF starting guess (init.guess = "iterative", engine/retrieval/iterative.py) as a
run chooses it: strong phase in multi-distance holography and a weak cell in holotomography
(tests/helpers/quality_cases.py, CI sizes), the example configurations with only the data path
and epochs set; the weak cases of the scale sweep keep a start at least as good as before."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from quality_cases import example_for, make_case, write_case  # noqa: E402
from scale_sweep import cases, correlation  # noqa: E402
from scale_sweep import example_for as sweep_example  # noqa: E402
from scale_sweep import write_case as sweep_write  # noqa: E402

from slicewise.engine.backend import to_host  # noqa: E402
from slicewise.engine.recon.config import from_toml, set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402


def _start(cfg, folder, truth, **changes) -> tuple[Reconstruction, float]:
    for key, value in {"run.checkpoint_every": 0, "run.save_tiff": False, **changes}.items():
        set_value(cfg, key, value)
    rec = Reconstruction(cfg, base_dir=folder)
    return rec, correlation(to_host(rec.problem.params["delta"]), truth)


@pytest.fixture(scope="module")
def strong_holo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("strong")
    case = make_case("holo4-strong", "tiny")
    return case, write_case(case, folder), folder


def test_strong_phase_holography_starts_from_the_iterated_ctf(strong_holo):
    """A 1 rad Siemens star, four distances: the CTF start correlates 0.77 with the truth (measured),
    the iterated one 1.000, chosen by the data loss; three epochs keep it."""
    case, path, folder = strong_holo
    truth = case.truth["delta"]
    _, ctf = _start(example_for(case, path, 1), folder / "ctf", truth, **{"init.guess": "ctf"})
    rec, auto = _start(example_for(case, path, 3), folder / "auto", truth)
    assert rec.config.init.guess == "iterative"
    assert "iterative" in rec.plan.reasons()["init.guess"]
    assert ctf < 0.85 and auto > 0.98
    rec.run()
    assert correlation(rec.snapshot(None).delta, truth) > 0.98


def test_the_saved_configuration_rebuilds_the_same_start(strong_holo):
    case, path, folder = strong_holo
    """... the start of the final fit: with pixels held out to choose the weight, the trials start
    from a retrieval without them, the fit on every pixel from one with them (as the rerun,
    which holds nothing out)."""
    first, _ = _start(example_for(case, path, 1), folder / "first", case.truth["delta"])
    assert first.holdout.unit == "pixels" and first.every_pixel_start is not None
    start = to_host(first.every_pixel_start["delta"]).copy()
    assert float(abs(to_host(first.problem.params["delta"]) - start).max()) > 0
    first.run()
    saved = from_toml(first.output_dir / "config.toml")
    assert saved.init.guess == "iterative"
    again = Reconstruction(saved, base_dir=folder / "again")
    assert float(abs(to_host(again.problem.params["delta"]) - start).max()) == 0.0


def test_weak_holotomography_starts_from_the_iterated_ctf_per_angle(tmp_path):
    """A weak cell (0.02 rad), 12 angles, two distances: per-angle iterated CTF + filtered
    back-projection correlates 0.98 with the truth (measured; the CTF start 0.72)."""
    case = make_case("holotomo-weak", "tiny")
    folder = tmp_path
    path = write_case(case, folder)
    truth = case.truth["delta"]
    _, ctf = _start(example_for(case, path, 1), folder / "ctf", truth, **{"init.guess": "ctf"})
    rec, auto = _start(example_for(case, path, 1), folder / "auto", truth)
    assert rec.config.init.guess == "iterative"
    assert ctf < 0.8 and auto > 0.95


@pytest.mark.parametrize("name", ["holo4-weak", "holo1-weak", "holotomo-weak"])
def test_weak_objects_start_at_least_as_well_as_from_the_closed_form_retrievals(name, tmp_path):
    """The candidate is one more in the ranking by the data loss: where the linearised
    retrievals suit the object, the chosen start is no worse than theirs."""
    case = next(c for c in cases(("weak",)) if c.name == name)
    path, truth = sweep_write(case, tmp_path)
    truth = truth["delta"]
    starts = {}
    for guess in ("ctf", "paganin", "auto"):
        if guess == "ctf" and name == "holo1-weak":
            continue  # one distance: Paganin is the closed-form start there
        _, starts[guess] = _start(sweep_example(case, path, 1), tmp_path / guess, truth,
                                  **{"init.guess": guess})
    assert starts["auto"] >= max(v for k, v in starts.items() if k != "auto") - 0.005, starts
