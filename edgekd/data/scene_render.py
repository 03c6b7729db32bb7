"""Procedural indoor scenes: the embedded default dataset (README.md, "Data").

Each scene is a room (floor, four walls, ceiling) holding a few textured
objects (cubes, spheres, cylinders) seen by a pinhole camera and lit by a point
light with Lambertian shading.  A ray caster written in numpy (no torch: the
bench evaluates on it on devices without torch) yields, for every pixel, RGB,
metric depth (z-depth, about 0.5-10 m as in NYUv2), a semantic label, and for
the image a label (the object class covering most pixels) and a label-colour
map (the paired "translation" target).  A scene is a pure function of
``(seed, split, index)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("floor", "wall", "ceiling", "cube", "sphere", "cylinder")
FLOOR, WALL, CEILING, CUBE, SPHERE, CYLINDER = range(len(CLASSES))  # the per-pixel label ids
OBJECT_CLASSES = CLASSES[CUBE:]  # image-level labels (classification): the objects, in kind order
PALETTE = np.array(
    [[128, 64, 128], [70, 70, 70], [220, 220, 0], [220, 20, 60], [0, 0, 142], [107, 142, 35]], dtype=np.uint8
)
SPLITS = {"train": 0, "val": 1, "test": 2, "calib": 3}
MAX_DEPTH = 10.0


def _texture(rng, p: np.ndarray, base: np.ndarray) -> np.ndarray:
    """An albedo (N, 3) from world points ``p`` (N, 3): checker, stripes or smooth noise on a base colour."""
    kind = rng.integers(0, 4)
    freq = rng.uniform(1.5, 5.0)
    alt = np.clip(base * rng.uniform(0.45, 0.8) + rng.uniform(-0.1, 0.1, 3), 0, 1)
    if kind == 0:  # checker in the two axes with the most variation
        c = (np.floor(p[:, 0] * freq) + np.floor(p[:, 1] * freq) + np.floor(p[:, 2] * freq)) % 2
        m = c[:, None]
    elif kind == 1:  # stripes along a random direction
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        m = (0.5 + 0.5 * np.sin(p @ d * freq * 2 * np.pi))[:, None]
    elif kind == 2:  # smooth sum-of-sines noise
        w = rng.normal(size=(3, 3)) * freq
        ph = rng.uniform(0, 2 * np.pi, 3)
        m = (np.sin(p @ w + ph).mean(axis=1) * 0.5 + 0.5)[:, None]
    else:  # plain
        return np.broadcast_to(base, p.shape).copy()
    return base * (1 - m) + alt * m


def _plane_hits(o, d, axis, value):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (value - o[axis]) / d[:, axis]
    t[~np.isfinite(t) | (t <= 1e-4)] = np.inf
    return t


@dataclass
class _Room:
    """A box room in metres (x across, y up from the floor, z away from the camera) and its camera."""

    width: float
    height: float
    back: float  # distance of the back wall
    cam: np.ndarray  # camera position (3,)
    rays: np.ndarray  # one direction per pixel (N, 3), of unit camera z: a hit's depth is its t


class _Hits:
    """The nearest surface along each ray so far: distance, class, normal and which surface it was."""

    def __init__(self, n_pix: int):
        self.t = np.full(n_pix, np.inf)
        self.cls = np.zeros(n_pix, np.uint8)
        self.normal = np.zeros((n_pix, 3))
        self.surf = np.full(n_pix, -1, np.int32)  # which surface won, to texture it afterwards
        self.surfaces = []  # the class of each surface offered (None when it is nowhere nearest)

    def take(self, t: np.ndarray, c: int, nrm: np.ndarray) -> None:
        """Offer a surface of class ``c`` hit at distances ``t`` with normals ``nrm`` (one, or one per ray)."""
        better = t < self.t
        if not better.any():
            self.surfaces.append(None)
            return
        sid = len(self.surfaces)
        self.t = np.where(better, t, self.t)
        self.cls[better] = c
        self.normal[better] = nrm[better] if nrm.ndim == 2 else nrm
        self.surf[better] = sid
        self.surfaces.append(c)


def _room_and_camera(rng, H: int, W: int) -> _Room:
    """Room size, camera pose and the pixel rays.  The back wall is 4-9.5 m away, like an NYUv2 room."""
    rw, rh, back = rng.uniform(3.0, 7.0), rng.uniform(2.4, 3.2), rng.uniform(4.0, 9.5)
    cam = np.array([rng.uniform(-0.25, 0.25) * rw, rng.uniform(1.0, 1.7), 0.0])
    yaw, pitch = rng.uniform(-0.35, 0.35), rng.uniform(-0.25, 0.1)
    f = W * rng.uniform(0.75, 0.95)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    dc = np.stack([(u + 0.5 - W / 2) / f, -(v + 0.5 - H / 2) / f, np.ones_like(u)], -1).reshape(-1, 3)
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    R = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]) @ np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return _Room(rw, rh, back, cam, dc @ R.T)


def _add_room(hits: _Hits, room: _Room) -> None:
    """Floor, ceiling, walls: axis-aligned planes, normals pointing into the room."""
    cam, d, rw = room.cam, room.rays, room.width
    hits.take(_plane_hits(cam, d, 1, 0.0), FLOOR, np.array([0, 1.0, 0]))
    hits.take(_plane_hits(cam, d, 1, room.height), CEILING, np.array([0, -1.0, 0]))
    hits.take(_plane_hits(cam, d, 0, -rw / 2), WALL, np.array([1.0, 0, 0]))
    hits.take(_plane_hits(cam, d, 0, rw / 2), WALL, np.array([-1.0, 0, 0]))
    hits.take(_plane_hits(cam, d, 2, room.back), WALL, np.array([0, 0, -1.0]))
    hits.take(_plane_hits(cam, d, 2, -1.0), WALL, np.array([0, 0, 1.0]))


def _cube_hits(rng, cam, d, x, z, size):
    """An axis-aligned box on the floor (slab test): distances and normals."""
    n_pix = d.shape[0]
    hgt = size * rng.uniform(0.6, 1.6)
    lo, hi = np.array([x - size / 2, 0.0, z - size / 2]), np.array([x + size / 2, hgt, z + size / 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - cam) / d, (hi - cam) / d
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    tmin = np.nan_to_num(tmin, nan=-np.inf)
    tmax = np.nan_to_num(tmax, nan=np.inf)
    tn, tf = tmin.max(1), tmax.min(1)
    t = np.where((tn <= tf) & (tn > 1e-4), tn, np.inf)
    ax = tmin.argmax(1)
    nrm = np.zeros((n_pix, 3))
    nrm[np.arange(n_pix), ax] = -np.sign(d[np.arange(n_pix), ax])
    return t, nrm


def _sphere_hits(rng, cam, d, x, z, size):
    """A sphere resting on the floor: distances and normals."""
    r = size / 2
    c = np.array([x, r, z])
    oc = cam - c
    b = d @ oc
    a = (d * d).sum(1)
    disc = b * b - a * (oc @ oc - r * r)
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    t = np.where((disc > 0) & (t > 1e-4), t, np.inf)
    p = cam + t[:, None] * d
    return t, np.nan_to_num((p - c) / r)


def _cylinder_hits(rng, cam, d, x, z, size):
    """An upright cylinder on the floor with a top cap: distances and normals."""
    n_pix = d.shape[0]
    r, hgt = size / 2, size * rng.uniform(0.8, 2.0)
    ox, oz = cam[0] - x, cam[2] - z
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = d[:, 0] * ox + d[:, 2] * oz
    disc = b * b - a * (ox * ox + oz * oz - r * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / a
    y = cam[1] + t * d[:, 1]
    t = np.where((disc > 0) & (t > 1e-4) & (y >= 0) & (y <= hgt), t, np.inf)
    nrm = np.stack([ox + t * d[:, 0], np.zeros(n_pix), oz + t * d[:, 2]], 1) / r
    t_cap = _plane_hits(cam, d, 1, hgt)
    pc = cam + np.where(np.isfinite(t_cap), t_cap, 0)[:, None] * d
    inside = (pc[:, 0] - x) ** 2 + (pc[:, 2] - z) ** 2 <= r * r
    t_cap = np.where(inside, t_cap, np.inf)
    use_cap = t_cap < t
    t = np.where(use_cap, t_cap, t)
    nrm[use_cap] = np.array([0, 1.0, 0])
    return t, np.nan_to_num(nrm)


# Object kinds in the order the scene's random stream draws them (0, 1, 2): class id and ray test.
_OBJECT_KINDS = ((CUBE, _cube_hits), (SPHERE, _sphere_hits), (CYLINDER, _cylinder_hits))


def _add_objects(hits: _Hits, rng, room: _Room) -> None:
    """Two to six objects standing on the floor, inside the room and in front of the camera."""
    for _ in range(rng.integers(2, 7)):
        cls, hit_test = _OBJECT_KINDS[int(rng.integers(0, 3))]
        size = rng.uniform(0.3, 1.1)
        x = rng.uniform(-room.width / 2 + size, room.width / 2 - size)
        z = rng.uniform(1.2, room.back - size)
        t, nrm = hit_test(rng, room.cam, room.rays, x, z, size)
        hits.take(t, cls, nrm)


def _albedo(rng, hits: _Hits, p: np.ndarray) -> np.ndarray:
    """Albedo per surface: a base colour by class and a procedural texture in world coordinates."""
    albedo = np.zeros((p.shape[0], 3))
    for sid, c in enumerate(hits.surfaces):
        if c is None:
            continue
        m = hits.surf == sid
        if not m.any():
            continue
        if c == CEILING:
            base = rng.uniform(0.75, 0.95) * np.ones(3)
        elif c in (FLOOR, WALL):
            base = rng.uniform(0.25, 0.85, 3)
        else:
            base = rng.uniform(0.05, 1.0, 3)
        albedo[m] = _texture(rng, p[m], base)
    return albedo


def _shade(rng, albedo: np.ndarray, normal: np.ndarray, p: np.ndarray, room: _Room) -> np.ndarray:
    """Lambertian shading from a ceiling light, plus ambient, exposure and sensor noise: linear RGB (N, 3)."""
    rw, back = room.width, room.back
    light = np.array([rng.uniform(-rw / 3, rw / 3), room.height - 0.1, rng.uniform(1.0, back - 0.5)])
    L = light - p
    dist2 = (L * L).sum(1)
    lam = np.clip((normal * L).sum(1) / np.sqrt(dist2 + 1e-9), 0, 1)
    power = rng.uniform(6.0, 14.0)
    shade = rng.uniform(0.15, 0.3) + lam * power / (power + dist2)
    rgb = albedo * shade[:, None] * rng.uniform(0.9, 1.4)
    return rgb + rng.normal(0, 0.01, rgb.shape)  # sensor noise


def render_scene(height: int, width: int, seed: int = 0, split: str = "train", index: int = 0) -> dict:
    """Render scene ``index`` of ``split`` for ``seed`` at ``height`` x ``width``.

    Returns a dict of numpy arrays: ``image`` (H, W, 3) uint8, ``depth`` (H, W)
    float32 metres, ``labels`` (H, W) uint8 class ids (see :data:`CLASSES`),
    ``colour_map`` (H, W, 3) uint8 and ``label`` (int, index into
    :data:`OBJECT_CLASSES`).  Every random draw comes from one generator, in a fixed order
    (room, objects, textures, light): the parts below must keep that order.
    """
    rng = np.random.default_rng([int(seed), SPLITS.get(split, 9), int(index)])
    H, W = int(height), int(width)
    room = _room_and_camera(rng, H, W)
    hits = _Hits(room.rays.shape[0])
    _add_room(hits, room)
    _add_objects(hits, rng, room)

    t_best = np.where(np.isfinite(hits.t), hits.t, MAX_DEPTH)
    p = room.cam + t_best[:, None] * room.rays
    rgb = _shade(rng, _albedo(rng, hits, p), hits.normal, p, room)

    labels = hits.cls.reshape(H, W)
    obj_counts = np.bincount(labels.ravel(), minlength=len(CLASSES))[CUBE:]
    return {
        "image": (np.clip(rgb, 0, 1).reshape(H, W, 3) * 255 + 0.5).astype(np.uint8),
        "depth": np.clip(t_best, 1e-3, MAX_DEPTH).reshape(H, W).astype(np.float32),
        "labels": labels,
        "colour_map": PALETTE[labels],
        "label": int(obj_counts.argmax()),
    }
