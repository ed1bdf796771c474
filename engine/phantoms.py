"""Deterministic test objects ("phantoms") as occupancy volumes.

Every phantom is a float32 array of **occupancy** in [0, 1]: the fraction of each voxel filled
with material. Edges are anti-aliased (a linear ramp one voxel wide across the surface, from the
signed distance to the surface) so that simulated data have no staircase artefacts and
reconstructions can be compared voxel by voxel. All lengths are in **pixels (voxels)**; volumes are
``(nz, ny, nx)`` with the beam along z (axis 0) and the tomographic rotation axis along y (axis 1).

Turn occupancy into optical constants with :func:`occupancy_to_delta_beta` (e.g. with
``named_material("SiO2 glass").optics(energy_ev)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from .config_schema import field_factory
from .errors import ConfigError

PHANTOM_KINDS = ("cone", "siemens", "spheres", "cell")
_f = field_factory("phantom")


def _ramp(signed_distance):
    """Occupancy of a voxel whose centre lies ``signed_distance`` px inside (>0) a surface."""
    return np.clip(0.5 + signed_distance, 0.0, 1.0)


def _check_shape(shape, ndim: int, name: str = "shape") -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a tuple of {ndim} positive integers, got {shape!r}") from None
    if len(out) != ndim or any(s < 1 for s in out) or any(s != float(t) for s, t in zip(out, shape)):
        raise ConfigError(f"{name} must be a tuple of {ndim} positive integers, got {shape!r}")
    return out


def _positive(value, name: str) -> float:
    if value is None or not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of pixels, got {value!r}")
    return float(value)


def hollow_cone(shape, height_px=None, outer_radius_px=None, wall_px=None, inner_radius_px=None,
                center_px=None) -> np.ndarray:
    """Hollow cone (a conical shell, open at the base) with its axis along y.

    The apex points to small y (up in an image), the base is at large y. The outer surface has
    radius ``outer_radius_px`` at the base, tapering linearly to 0 at the apex. The cavity is the
    same cone shifted towards the base, so the horizontal wall thickness is constant
    (``wall_px``) and the tip of length ``wall_px * height / outer_radius`` is solid.

    Parameters (all in pixels)
    ----------
    shape: ``(nz, ny, nx)``.
    height_px: apex-to-base length along y; default ``0.8 * ny``.
    outer_radius_px: outer radius at the base; default ``0.35 * min(nz, nx)``.
    wall_px: horizontal wall thickness; default ``max(1.5, 0.25 * outer_radius_px)``.
    inner_radius_px: cavity radius at the base, alternative to ``wall_px``
        (``wall_px = outer_radius_px - inner_radius_px``); give at most one of the two.
    center_px: ``(z, y, x)`` of the cone's centre (axis position, mid-height); default the
        volume centre ``((n-1)/2, ...)``, i.e. on the tomographic rotation axis.

    Returns
    -------
    float32 ``(nz, ny, nx)`` occupancy in [0, 1].
    """
    nz, ny, nx = _check_shape(shape, 3)
    h = _positive(0.8 * ny if height_px is None else height_px, "height_px")
    r0 = _positive(0.35 * min(nz, nx) if outer_radius_px is None else outer_radius_px,
                   "outer_radius_px")
    if wall_px is not None and inner_radius_px is not None:
        raise ConfigError("give either wall_px or inner_radius_px for the hollow cone, not both")
    if inner_radius_px is not None:
        if not (0 <= inner_radius_px < r0):
            raise ConfigError(f"inner_radius_px must be in [0, outer_radius_px={r0}), "
                              f"got {inner_radius_px!r}")
        wall = r0 - float(inner_radius_px)
    else:
        wall = _positive(max(1.5, 0.25 * r0) if wall_px is None else wall_px, "wall_px")
    if wall > r0:
        raise ConfigError(f"wall_px ({wall}) must not exceed outer_radius_px ({r0})")
    cz, cy, cx = ((nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2) if center_px is None else center_px

    y_apex = cy - h / 2
    z = np.arange(nz, dtype=np.float64)[:, None, None] - cz
    y = np.arange(ny, dtype=np.float64)[None, :, None] - y_apex          # distance below apex
    x = np.arange(nx, dtype=np.float64)[None, None, :] - cx
    r = np.sqrt(z * z + x * x)
    slope = r0 / h
    cos_a = 1.0 / math.sqrt(1.0 + slope * slope)  # horizontal -> perpendicular distance
    r_out = slope * y
    # Solid outer cone: inside the slanted surface and between apex and base planes.
    outer = np.minimum(_ramp((r_out - r) * cos_a), _ramp(np.minimum(y, h - y)))
    # Cavity: not cut at the base plane, so the base is open (outer - cavity <= 0 beyond it).
    cavity = _ramp((r_out - wall - r) * cos_a)
    return np.clip(outer - cavity, 0.0, 1.0).astype(np.float32)


def siemens_star(shape_yx, n_spokes: int = 16, radius_px=None, center_yx=None,
                 supersample: int = 4) -> np.ndarray:
    """2D Siemens star: ``n_spokes`` filled wedges alternating with empty ones, inside a disc.

    Parameters
    ----------
    shape_yx: ``(ny, nx)`` pixels.
    n_spokes: number of filled spokes (>= 2).
    radius_px: star radius in pixels; default ``0.45 * min(ny, nx)``.
    center_yx: centre ``(y, x)``; default ``((ny-1)/2, (nx-1)/2)``.
    supersample: sub-samples per pixel and axis for anti-aliasing (the spokes' edges converge at
        the centre, where a distance ramp would be wrong, so we average sub-samples instead).

    Returns
    -------
    float32 ``(ny, nx)`` occupancy in [0, 1].
    """
    ny, nx = _check_shape(shape_yx, 2, "shape_yx")
    if int(n_spokes) != n_spokes or n_spokes < 2:
        raise ConfigError(f"n_spokes must be an integer >= 2, got {n_spokes!r}")
    radius = _positive(0.45 * min(ny, nx) if radius_px is None else radius_px, "radius_px")
    cy, cx = ((ny - 1) / 2, (nx - 1) / 2) if center_yx is None else center_yx
    s = int(supersample)
    offs = (np.arange(s) + 0.5) / s - 0.5  # sub-sample offsets within a pixel
    occ = np.zeros((ny, nx), dtype=np.float64)
    yy = np.arange(ny)[:, None] - cy
    xx = np.arange(nx)[None, :] - cx
    for dy in offs:
        for dx in offs:
            y, x = yy + dy, xx + dx
            inside = (y * y + x * x) <= radius * radius
            occ += inside & (np.sin(int(n_spokes) * np.arctan2(y, x)) > 0)
    return (occ / (s * s)).astype(np.float32)


def _sphere_counts(n, radius_range) -> tuple[float, float]:
    """``(rmin, rmax)`` of ``radius_range`` (px), after checking ``n`` and the range."""
    if int(n) != n or n < 0:
        raise ConfigError(f"n (number of spheres) must be a non-negative integer, got {n!r}")
    try:
        rmin, rmax = (float(v) for v in radius_range)
    except (TypeError, ValueError):
        raise ConfigError(f"radius_range must be (min, max) in pixels, got {radius_range!r}") from None
    if not (0 < rmin <= rmax):
        raise ConfigError(f"radius_range must satisfy 0 < min <= max, got {radius_range!r}")
    return rmin, rmax


def random_spheres(shape, n: int = 10, radius_range=(2.0, 6.0), seed: int = 0) -> np.ndarray:
    """``n`` spheres with radii uniform in ``radius_range`` (px), fully inside the volume.

    Overlapping spheres merge (occupancy is the voxel-wise maximum). Deterministic for a seed.

    Returns
    -------
    float32 ``(nz, ny, nx)`` occupancy in [0, 1].
    """
    shape = _check_shape(shape, 3)
    rmin, rmax = _sphere_counts(n, radius_range)
    if 2 * rmax + 1 > min(shape):
        raise ConfigError(f"radius_range max ({rmax} px) is too large for a volume of shape {shape}")
    rng = np.random.default_rng(seed)
    occ = np.zeros(shape, dtype=np.float32)
    for _ in range(int(n)):
        r = rng.uniform(rmin, rmax)
        c = [rng.uniform(r, s - 1 - r) for s in shape]
        # Only touch the sphere's bounding box: cost ~ r^3, not the whole volume.
        lo = [max(int(math.floor(ci - r - 1)), 0) for ci in c]
        hi = [min(int(math.ceil(ci + r + 2)), s) for ci, s in zip(c, shape)]
        gz, gy, gx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        d = np.sqrt((gz - c[0]) ** 2 + (gy - c[1]) ** 2 + (gx - c[2]) ** 2)
        box = occ[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        np.maximum(box, _ramp(r - d).astype(np.float32), out=box)
    return occ


def projected_spheres(shape_yx, n: int = 10, radius_range=(2.0, 6.0), seed: int = 0) -> np.ndarray:
    """A layer of particles for a one-slice object: the projections of ``n`` spheres with radii
    uniform in ``radius_range`` (px), centres anywhere in the field, each reaching occupancy 1 at
    its centre (``sqrt(1 - d^2 / r^2)``), overlapping ones adding up to at most 1. Deterministic
    for a seed; float32 ``(ny, nx)``."""
    ny, nx = _check_shape(shape_yx, 2, "shape_yx")
    rmin, rmax = _sphere_counts(n, radius_range)
    rng = np.random.default_rng(seed)
    occ = np.zeros((ny, nx))
    for _ in range(int(n)):
        r = rng.uniform(rmin, rmax)
        cy, cx = rng.uniform(0, ny - 1), rng.uniform(0, nx - 1)
        y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, ny)
        x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, nx)
        gy, gx = np.ogrid[y0:y1, x0:x1]
        d2 = ((gy - cy) ** 2 + (gx - cx) ** 2) / (r * r)
        occ[y0:y1, x0:x1] += np.sqrt(np.clip(1.0 - d2, 0.0, None))
    return np.minimum(occ, 1.0).astype(np.float32)


def _ellipsoid_depth(shape, centre, semi_axes):
    """Signed depth (px, > 0 inside) below the surface of an ellipsoid, to first order: the
    normalised radius's distance from 1 times the smallest semi-axis. Axes of length 1 are left
    out (a single slice holds the central section)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    keep = [i for i, n in enumerate(shape) if n > 1]
    r = np.sqrt(sum(((grids[i] - centre[i]) / semi_axes[i]) ** 2 for i in keep))
    return (1.0 - r) * min(semi_axes[i] for i in keep)


def biological_cell(shape, n_blobs: int = 12, blob_radius_range=(1.0, 3.0),
                    seed: int = 0) -> np.ndarray:
    """A weak-contrast biological object: an ellipsoidal cell (cytoplasm density 0.3, a denser
    membrane 1 px thick, 0.6) holding an off-centre nucleus (0.45) with a nucleolus (0.7), and
    ``n_blobs`` protein-like blobs (densities 0.5-1, radii uniform in ``blob_radius_range`` px)
    in the cytoplasm. Values are densities relative to the densest blob (1): scale them to the
    contrast wanted (a cell's excess over the water around it is small). The cell fills about 80 %
    of the lateral field and of the depth (a single slice, ``nz = 1``, is its central section).
    Deterministic for a seed.

    Returns float32 ``(nz, ny, nx)`` in [0, 1], anti-aliased edges (one-voxel ramps).
    """
    shape = _check_shape(shape, 3)
    try:
        rmin, rmax = (float(v) for v in blob_radius_range)
    except (TypeError, ValueError):
        raise ConfigError(f"blob_radius_range must be (min, max) in pixels, got "
                          f"{blob_radius_range!r}") from None
    if not (0 < rmin <= rmax):
        raise ConfigError(f"blob_radius_range must satisfy 0 < min <= max, got {blob_radius_range!r}")
    if int(n_blobs) != n_blobs or n_blobs < 0:
        raise ConfigError(f"n_blobs must be a non-negative integer, got {n_blobs!r}")
    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    c = ((nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2)
    axes = (max(0.4 * nz, 0.5), 0.42 * ny, 0.36 * nx)
    body = _ellipsoid_depth(shape, c, axes)
    inside = _ramp(body)
    dens = 0.3 * inside + 0.3 * np.minimum(inside, _ramp(1.0 - body))      # membrane
    nuc_c = (c[0], c[1] - 0.12 * ny, c[2] + 0.08 * nx)
    nuc_axes = (max(0.22 * nz, 0.5), 0.18 * ny, 0.15 * nx)
    dens = np.maximum(dens, 0.45 * _ramp(_ellipsoid_depth(shape, nuc_c, nuc_axes)))
    nl_axes = tuple(max(a / 3, 0.5) for a in nuc_axes)
    dens = np.maximum(dens, 0.7 * _ramp(_ellipsoid_depth(shape, nuc_c, nl_axes)))
    for _ in range(int(n_blobs)):
        r = rng.uniform(rmin, rmax)
        # a point of the cytoplasm, outside the nucleus
        for _try in range(50):
            u = rng.uniform(-0.75, 0.75, 3)
            p = tuple(ci + ui * ai for ci, ui, ai in zip(c, u, axes))
            if nz == 1:
                p = (c[0], p[1], p[2])
            dn = sum(((pi - ci) / ai) ** 2 for pi, ci, ai in zip(p, nuc_c, nuc_axes))
            if np.sum(u[1:] ** 2) + (0 if nz == 1 else u[0] ** 2) < 0.6 and dn > 1.5:
                break
        g = np.ogrid[tuple(slice(0, n) for n in shape)]
        d = np.sqrt(sum((gi - pi) ** 2 for gi, pi in zip(g, p)))
        dens = np.maximum(dens, rng.uniform(0.5, 1.0) * _ramp(r - d))
    return np.clip(dens, 0.0, 1.0).astype(np.float32)


def occupancy_to_delta_beta(occupancy, delta: float, beta: float,
                            dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Optical-constant volumes of a single-material phantom surrounded by vacuum.

    ``delta_vol = occupancy * delta`` and ``beta_vol = occupancy * beta`` (same shape as
    ``occupancy``), e.g. with ``delta, beta = named_material("SiO2 glass").optics(10e3)``.
    """
    occ = np.asarray(occupancy, dtype=np.float64)
    return (occ * float(delta)).astype(dtype), (occ * float(beta)).astype(dtype)


@dataclass
class PhantomSpec:
    """Which phantom to build; ``None`` means "the documented default for that shape".

    All lengths are in pixels. Fields used per ``kind``:

    * ``"cone"``: ``height_px``, ``outer_radius_px``, ``wall_px`` (see :func:`hollow_cone`).
    * ``"siemens"``: ``n_spokes``, ``radius_px``, ``thickness_px`` (slices filled around the
      volume centre along z; default all ``nz``).
    * ``"spheres"``: ``n_spheres``, ``radius_min_px``, ``radius_max_px``, ``seed``; in a
      one-slice object their projections (:func:`projected_spheres`).
    * ``"cell"``: ``n_spheres`` (protein-like blobs), ``radius_min_px``, ``radius_max_px`` (their
      radii), ``seed`` (see :func:`biological_cell`).
    """

    kind: str = _f("cone", "the test object: a hollow cone, a Siemens star, random spheres or a "
                   "biological cell (weak, graded contrast)",
                   choices=PHANTOM_KINDS)
    height_px: float | None = _f(None, "cone: apex-to-base length; unset: 0.8 ny", "px",
                                 min=0, min_exclusive=True)
    outer_radius_px: float | None = _f(None, "cone: outer radius at the base; unset: "
                                       "0.35 min(nz, nx)", "px", min=0, min_exclusive=True)
    wall_px: float | None = _f(None, "cone: horizontal wall thickness; unset: a quarter of the "
                               "outer radius", "px", min=0, min_exclusive=True)
    n_spokes: int = _f(16, "Siemens star: number of spokes", min=2)
    radius_px: float | None = _f(None, "Siemens star: outer radius; unset: fills the field",
                                 "px", min=0, min_exclusive=True)
    thickness_px: int | None = _f(None, "Siemens star: slices filled around the centre along z; "
                                  "unset: all nz", "px", min=1)
    n_spheres: int = _f(10, "spheres: how many (cell: its protein-like blobs)", min=1)
    radius_min_px: float = _f(2.0, "spheres: smallest radius", "px", min=0, min_exclusive=True)
    radius_max_px: float = _f(6.0, "spheres: largest radius", "px", min=0, min_exclusive=True)
    seed: int = _f(0, "spheres: random seed of their placement", min=0)

    @classmethod
    def from_dict(cls, d: dict) -> PhantomSpec:
        """Build from a configuration table, refusing unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown phantom field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**d)


def make_phantom(spec: PhantomSpec, shape) -> np.ndarray:
    """Build the occupancy volume ``(nz, ny, nx)`` described by ``spec``; errors name the field."""
    nz, ny, nx = _check_shape(shape, 3)
    kind = str(spec.kind).strip().lower()
    try:
        if kind == "cone":
            return hollow_cone((nz, ny, nx), spec.height_px, spec.outer_radius_px, spec.wall_px)
        if kind == "siemens":
            star = siemens_star((ny, nx), spec.n_spokes, spec.radius_px)
            t = nz if spec.thickness_px is None else spec.thickness_px
            if int(t) != t or not (1 <= t <= nz):
                raise ConfigError(f"thickness_px must be an integer in [1, nz={nz}], got {t!r}")
            vol = np.zeros((nz, ny, nx), dtype=np.float32)
            z0 = (nz - int(t)) // 2
            vol[z0:z0 + int(t)] = star
            return vol
        if kind == "spheres" and nz == 1:  # a layer of particles: their projections
            return projected_spheres((ny, nx), spec.n_spheres,
                                     (spec.radius_min_px, spec.radius_max_px), spec.seed)[None]
        if kind == "spheres":
            return random_spheres((nz, ny, nx), spec.n_spheres,
                                  (spec.radius_min_px, spec.radius_max_px), spec.seed)
        if kind == "cell":
            return biological_cell((nz, ny, nx), spec.n_spheres,
                                   (spec.radius_min_px, spec.radius_max_px), spec.seed)
    except ConfigError as exc:
        raise ConfigError(f"phantom ({kind}): {exc}") from None
    raise ConfigError(f"phantom kind must be one of {PHANTOM_KINDS}, got {spec.kind!r}")
