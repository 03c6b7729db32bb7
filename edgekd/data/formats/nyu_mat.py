"""``nyu-mat``: NYU Depth v2 ``nyu_depth_v2_labeled.mat`` (HDF5, MATLAB axes: read transposed).

The official 795/654 split from ``splits.mat`` (or ``train.txt``/``test.txt``, 1-based indices)
beside it; Eigen crop for evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import EdgekdError
from .common import Reader, limit

EIGEN_CROP = (45, 471, 41, 601)  # on NYUv2's 480x640 frames

class NYUv2Mat(Reader):
    format = "nyu-mat"
    classes = []

    def __init__(self, path: Path, split: str, n=None):
        try:
            import h5py
        except ImportError:
            raise EdgekdError("reading NYUv2 .mat files needs h5py: pip install h5py") from None
        try:
            self.f = h5py.File(path, "r")
        except OSError:
            raise EdgekdError(f"{path} is not an HDF5 (MATLAB v7.3) file; give nyu_depth_v2_labeled.mat as downloaded") from None
        try:
            for key in ("images", "depths"):
                if key not in self.f:
                    raise EdgekdError(f"{path} has no '{key}' dataset; it is not nyu_depth_v2_labeled.mat")
            total = self.f["images"].shape[0]
            shape = self.f["depths"].shape
        except EdgekdError:
            raise
        except Exception as e:  # a damaged HDF5 file fails deep inside h5py (addresses past the end, bad headers)
            raise _damaged(path, e) from None
        train, test, self.official = _nyu_split(path, total)
        self.items = limit(train if split == "train" else test, n)
        h, w = shape[2], shape[1]  # stored as (N, W, H)
        t, b, l, r = EIGEN_CROP
        self.eval_crop_fraction = (t / 480, b / 480, l / 640, r / 640) if (h, w) == (480, 640) else None
        self.path = path

    def __getitem__(self, i):
        try:
            return self._sample(self.items[i])
        except EdgekdError:
            raise
        except Exception as e:
            raise _damaged(self.path, e) from None

    def _sample(self, k):
        # MATLAB stores column-major: h5py sees (N, C, W, H); transpose to (H, W, C).
        img = np.asarray(self.f["images"][k]).transpose(2, 1, 0)
        if img.dtype.kind == "f" and not np.isfinite(img).all():
            raise EdgekdError(f"{self.path}: image {k + 1} holds NaN or infinite values; NYUv2 images are 8-bit RGB: "
                              "fix or drop that image")
        depth = np.asarray(self.f["depths"][k], np.float32).T
        depth[~np.isfinite(depth)] = 0.0  # NaN/Inf (holes of a raw sensor): invalid pixels, as 0 is; never a loss of NaN
        s = {"image": np.ascontiguousarray(img.astype(np.uint8)), "depth": np.ascontiguousarray(depth)}
        if "labels" in self.f:
            lab = np.asarray(self.f["labels"][k]).T
            s["labels"] = np.where(lab > 254, 255, lab).astype(np.uint8)
        return s


def _damaged(path: Path, e: Exception) -> EdgekdError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
    return EdgekdError(f"{path} is damaged ({first}); download nyu_depth_v2_labeled.mat again")


def _nyu_split(path: Path, total: int):
    """Indices (0-based) of the official split from splits.mat or train.txt/test.txt beside the file."""
    d = path.parent
    sm = d / "splits.mat"
    if sm.exists():
        try:
            from scipy.io import loadmat
        except ImportError:
            raise EdgekdError("reading splits.mat needs scipy: pip install scipy (or write train.txt/test.txt with 1-based indices)") from None
        m = loadmat(str(sm))
        train = [int(x) - 1 for x in np.asarray(m["trainNdxs"]).ravel()]
        test = [int(x) - 1 for x in np.asarray(m["testNdxs"]).ravel()]
        return train, test, True
    if (d / "train.txt").exists() and (d / "test.txt").exists():
        read = lambda p: [int(x) - 1 for x in p.read_text().split()]  # noqa: E731
        return read(d / "train.txt"), read(d / "test.txt"), True
    import warnings

    warnings.warn(f"no splits.mat beside {path}: using a deterministic 795/654-proportion split, not the official one")
    idx = np.random.default_rng(0).permutation(total)
    cut = round(total * 795 / 1449)
    return sorted(idx[:cut].tolist()), sorted(idx[cut:].tolist()), False


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix == ".mat"
