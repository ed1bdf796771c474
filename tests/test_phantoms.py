"""Phantoms: shapes, ranges, geometry, determinism and parameter errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slicewise.engine.errors import ConfigError
from slicewise.engine.phantoms import (
    PhantomSpec,
    hollow_cone,
    make_phantom,
    occupancy_to_delta_beta,
    random_spheres,
    siemens_star,
)


def test_hollow_cone_geometry():
    shape = (48, 64, 40)
    h, r0, wall = 50.0, 15.0, 3.0
    occ = hollow_cone(shape, height_px=h, outer_radius_px=r0, wall_px=wall)
    assert occ.shape == shape and occ.dtype == np.float32
    assert occ.min() >= 0 and occ.max() <= 1
    assert 0 < np.mean((occ > 0) & (occ < 1)) < 0.1  # anti-aliased, but mostly 0/1
    # Volume: outer cone minus the cavity cone (same slope, height h - wall h / r0).
    hc = h - wall * h / r0
    expected = math.pi / 3 * (r0 ** 2 * h - (r0 - wall) ** 2 * hc)
    assert occ.sum() == pytest.approx(expected, rel=0.03)
    # Rotationally symmetric about y: the volume is unchanged by swapping z and x offsets.
    sym = hollow_cone((40, 64, 40), height_px=h, outer_radius_px=r0, wall_px=wall)
    np.testing.assert_allclose(sym, np.transpose(sym, (2, 1, 0)), atol=1e-6)
    # Apex up (small y), widening downwards; hollow near the base, solid tip.
    rows = occ.sum(axis=(0, 2))
    assert np.argmax(rows > 0) < 10 and rows[50] > rows[20]
    cz, cx = (shape[0] - 1) / 2, (shape[2] - 1) / 2
    y_base = (shape[1] - 1) / 2 + h / 2
    assert occ[round(cz), int(y_base) - 2, round(cx)] == 0          # cavity on the axis
    assert occ[round(cz), int((shape[1] - 1) / 2 - h / 2) + 8, round(cx)] == 1  # solid tip


def test_hollow_cone_inner_radius_equals_wall():
    a = hollow_cone((32, 32, 32), 24, 10, wall_px=3)
    b = hollow_cone((32, 32, 32), 24, 10, inner_radius_px=7)
    np.testing.assert_array_equal(a, b)
    assert hollow_cone((16, 20, 16)).sum() > 0  # defaults work


@pytest.mark.parametrize("kwargs, field", [
    (dict(height_px=-1), "height_px"),
    (dict(outer_radius_px=0), "outer_radius_px"),
    (dict(wall_px=0), "wall_px"),
    (dict(outer_radius_px=5, wall_px=6), "wall_px"),
    (dict(outer_radius_px=5, inner_radius_px=5), "inner_radius_px"),
    (dict(wall_px=1, inner_radius_px=2), "inner_radius_px"),
    (dict(shape=(4, 4)), "shape"),
])
def test_hollow_cone_errors(kwargs, field):
    shape = kwargs.pop("shape", (16, 16, 16))
    with pytest.raises(ConfigError, match=field):
        hollow_cone(shape, **kwargs)


def test_siemens_star():
    star = siemens_star((64, 64), n_spokes=8, radius_px=28)
    assert star.shape == (64, 64) and star.dtype == np.float32
    assert star.min() >= 0 and star.max() <= 1
    assert star.sum() == pytest.approx(math.pi * 28 ** 2 / 2, rel=0.03)  # half the disc filled
    assert star[0, 0] == 0  # outside the radius
    with pytest.raises(ConfigError, match="n_spokes"):
        siemens_star((32, 32), n_spokes=1)


def test_random_spheres_deterministic():
    a = random_spheres((24, 24, 24), n=5, radius_range=(2, 4), seed=3)
    b = random_spheres((24, 24, 24), n=5, radius_range=(2, 4), seed=3)
    c = random_spheres((24, 24, 24), n=5, radius_range=(2, 4), seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 and a.sum() > 4 / 3 * math.pi * 8
    one = random_spheres((20, 20, 20), n=1, radius_range=(4, 4), seed=0)
    assert one.sum() == pytest.approx(4 / 3 * math.pi * 64, rel=0.02)
    for kw, field in [(dict(n=-1), "n"), (dict(radius_range=(3, 1)), "radius_range"),
                      (dict(radius_range=(1, 30)), "radius_range")]:
        with pytest.raises(ConfigError, match=field):
            random_spheres((24, 24, 24), **kw)


def test_make_phantom_and_optics():
    shape = (8, 32, 32)
    for kind in ("cone", "siemens", "spheres", "cell"):
        vol = make_phantom(PhantomSpec(kind=kind, radius_max_px=3.0), shape)
        assert vol.shape == shape and vol.dtype == np.float32 and vol.max() > 0
    star = make_phantom(PhantomSpec(kind="siemens", thickness_px=2), shape)
    assert star[:3].sum() == 0 and star[3].sum() > 0 and star[5:].sum() == 0
    delta, beta = occupancy_to_delta_beta(star, 4.6e-6, 4e-8)
    assert delta.max() == pytest.approx(4.6e-6) and beta.max() == pytest.approx(4e-8)
    assert delta.dtype == np.float32
    with pytest.raises(ConfigError, match="kind"):
        make_phantom(PhantomSpec(kind="teapot"), shape)
    with pytest.raises(ConfigError, match="wall_px"):
        make_phantom(PhantomSpec(kind="cone", outer_radius_px=4, wall_px=5), shape)
    with pytest.raises(ConfigError, match="thickness_px"):
        make_phantom(PhantomSpec(kind="siemens", thickness_px=20), shape)
    with pytest.raises(ConfigError, match="colour"):
        PhantomSpec.from_dict({"kind": "cone", "colour": "red"})
    assert PhantomSpec.from_dict({"kind": "spheres", "seed": 2}).seed == 2


def test_biological_cell_is_graded_weak_contrast_and_deterministic():
    from slicewise.engine.phantoms import biological_cell

    vol = biological_cell((24, 32, 32), n_blobs=8, seed=4)
    assert vol.shape == (24, 32, 32) and vol.dtype == np.float32
    assert vol.min() == 0 and 0.6 < vol.max() <= 1
    np.testing.assert_array_equal(vol, biological_cell((24, 32, 32), n_blobs=8, seed=4))
    assert not np.array_equal(vol, biological_cell((24, 32, 32), n_blobs=8, seed=5))
    # cytoplasm (0.3), nucleus (0.45), nucleolus (0.7) and blobs: several density levels
    levels = np.unique(np.round(vol[vol > 0.05], 2))
    assert levels.size > 20 and np.mean(np.isclose(vol, 0.3, atol=0.01)) > 0.05
    # inside the field: the border is empty
    assert vol[:, 0].max() == 0 and vol[:, :, 0].max() == 0 and vol[0].max() == 0
    section = make_phantom(PhantomSpec(kind="cell", n_spheres=8, seed=4), (1, 32, 32))
    assert section.shape == (1, 32, 32) and 0.2 < np.mean(section > 0) < 0.8
    with pytest.raises(ConfigError, match="blob_radius_range"):
        biological_cell((8, 8, 8), blob_radius_range=(3, 1))
