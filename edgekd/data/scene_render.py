"""Procedural indoor scenes: the embedded default dataset (DESIGN.md §3).

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

import numpy as np

CLASSES = ("floor", "wall", "ceiling", "cube", "sphere", "cylinder")
OBJECT_CLASSES = ("cube", "sphere", "cylinder")  # image-level labels (classification)
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


def render_scene(height: int, width: int, seed: int = 0, split: str = "train", index: int = 0) -> dict:
    """Render scene ``index`` of ``split`` for ``seed`` at ``height`` x ``width``.

    Returns a dict of numpy arrays: ``image`` (H, W, 3) uint8, ``depth`` (H, W)
    float32 metres, ``labels`` (H, W) uint8 class ids (see :data:`CLASSES`),
    ``colour_map`` (H, W, 3) uint8 and ``label`` (int, index into
    :data:`OBJECT_CLASSES`).
    """
    rng = np.random.default_rng([int(seed), SPLITS.get(split, 9), int(index)])
    H, W = int(height), int(width)

    # Room and camera (metres).  The back wall is 4-9.5 m away, like an NYUv2 room.
    rw, rh, back = rng.uniform(3.0, 7.0), rng.uniform(2.4, 3.2), rng.uniform(4.0, 9.5)
    cam = np.array([rng.uniform(-0.25, 0.25) * rw, rng.uniform(1.0, 1.7), 0.0])
    yaw, pitch = rng.uniform(-0.35, 0.35), rng.uniform(-0.25, 0.1)
    f = W * rng.uniform(0.75, 0.95)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    dc = np.stack([(u + 0.5 - W / 2) / f, -(v + 0.5 - H / 2) / f, np.ones_like(u)], -1).reshape(-1, 3)
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    R = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]) @ np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    d = dc @ R.T  # camera z of a hit = t, because dc has unit z
    n_pix = d.shape[0]

    t_best = np.full(n_pix, np.inf)
    cls = np.zeros(n_pix, np.uint8)
    normal = np.zeros((n_pix, 3))
    surf = np.full(n_pix, -1, np.int32)  # which surface won, to texture it afterwards
    surfaces = []  # (class, base colour)

    def take(t, c, nrm):
        nonlocal t_best
        better = t < t_best
        if not better.any():
            surfaces.append(None)
            return
        sid = len(surfaces)
        t_best = np.where(better, t, t_best)
        cls[better] = c
        normal[better] = nrm[better] if nrm.ndim == 2 else nrm
        surf[better] = sid
        surfaces.append(c)

    # Floor, ceiling, walls: axis-aligned planes, normals pointing into the room.
    take(_plane_hits(cam, d, 1, 0.0), 0, np.array([0, 1.0, 0]))
    take(_plane_hits(cam, d, 1, rh), 2, np.array([0, -1.0, 0]))
    take(_plane_hits(cam, d, 0, -rw / 2), 1, np.array([1.0, 0, 0]))
    take(_plane_hits(cam, d, 0, rw / 2), 1, np.array([-1.0, 0, 0]))
    take(_plane_hits(cam, d, 2, back), 1, np.array([0, 0, -1.0]))
    take(_plane_hits(cam, d, 2, -1.0), 1, np.array([0, 0, 1.0]))

    for _ in range(rng.integers(2, 7)):
        kind = int(rng.integers(0, 3))
        size = rng.uniform(0.3, 1.1)
        x = rng.uniform(-rw / 2 + size, rw / 2 - size)
        z = rng.uniform(1.2, back - size)
        if kind == 0:  # cube (axis-aligned box, slab test)
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
            take(t, 3, nrm)
        elif kind == 1:  # sphere resting on the floor
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
            nrm = (p - c) / r
            take(t, 4, np.nan_to_num(nrm))
        else:  # upright cylinder with a top cap
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
            take(t, 5, np.nan_to_num(nrm))

    t_best = np.where(np.isfinite(t_best), t_best, MAX_DEPTH)
    p = cam + t_best[:, None] * d

    # Albedo per surface: a base colour and a procedural texture in world coordinates.
    albedo = np.zeros((n_pix, 3))
    for sid, c in enumerate(surfaces):
        if c is None:
            continue
        m = surf == sid
        if not m.any():
            continue
        if c == 2:
            base = rng.uniform(0.75, 0.95) * np.ones(3)
        elif c in (0, 1):
            base = rng.uniform(0.25, 0.85, 3)
        else:
            base = rng.uniform(0.05, 1.0, 3)
        albedo[m] = _texture(rng, p[m], base)

    # Lambertian shading from a ceiling light, plus ambient.
    light = np.array([rng.uniform(-rw / 3, rw / 3), rh - 0.1, rng.uniform(1.0, back - 0.5)])
    L = light - p
    dist2 = (L * L).sum(1)
    lam = np.clip((normal * L).sum(1) / np.sqrt(dist2 + 1e-9), 0, 1)
    power = rng.uniform(6.0, 14.0)
    shade = rng.uniform(0.15, 0.3) + lam * power / (power + dist2)
    rgb = albedo * shade[:, None] * rng.uniform(0.9, 1.4)
    rgb = rgb + rng.normal(0, 0.01, rgb.shape)  # sensor noise

    labels = cls.reshape(H, W)
    obj_counts = np.bincount(labels.ravel(), minlength=len(CLASSES))[3:]
    return {
        "image": (np.clip(rgb, 0, 1).reshape(H, W, 3) * 255 + 0.5).astype(np.uint8),
        "depth": np.clip(t_best, 1e-3, MAX_DEPTH).reshape(H, W).astype(np.float32),
        "labels": labels,
        "colour_map": PALETTE[labels],
        "label": int(obj_counts.argmax()),
    }
