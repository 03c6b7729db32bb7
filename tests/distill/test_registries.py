"""Tests over the registries of distances, projections and data formats: a new entry is covered by registering it."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from test_data_formats import (
    depth_list_tree, image_folder, imagefolder_tree, label_maps_tree, nyu_mat_cli, pix2pix_tree, voc_tree,
)

from edgekd.data import formats, open_dataset
from edgekd.data.formats import detect_format, get_data_format, list_data_formats, register_data_format
from edgekd.data.formats.edgekd_scenes import write_scenes
from edgekd.distill import Distiller
from edgekd.distill.registry import get_distance, get_projection, list_distances, list_projections
from edgekd.errors import EdgekdError


@pytest.mark.parametrize("projection", list_projections(chosen=False))
@pytest.mark.parametrize("method", list_distances())
def test_every_distance_gives_a_finite_scalar_with_a_gradient(method, projection):
    torch.manual_seed(0)
    dist = Distiller(method, projection, student_channels=5, teacher_channels=7)
    zs = torch.randn(3, 5, 4, 4, requires_grad=True)
    zt = torch.randn(3, 7, 2, 2)  # another grid: resized to the student's
    loss = dist(zs, zt)["distill"]
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert zs.grad is not None and torch.isfinite(zs.grad).all() and zs.grad.abs().sum() > 0
    grads = [p.grad for p in dist.projector.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    cin, cout = get_projection(projection).channels(5, 7)
    assert dist.projector.matrix.shape == (cout, cin)


def test_unknown_distance_and_projection_name_the_valid_ones():
    with pytest.raises(EdgekdError, match=r"unknown method 'kd'; use one of: fitnet, at, pkt, ensemble$"):
        get_distance("kd")
    with pytest.raises(EdgekdError, match=r"unknown projection 'sideways'; use inverted, traditional or auto$"):
        Distiller("fitnet", "sideways", 4, 6)


def test_a_chosen_projection_is_listed_but_never_built_directly():
    assert "auto" in list_projections() and "auto" not in list_projections(chosen=False)
    with pytest.raises(EdgekdError, match="chosen before training"):
        Distiller("fitnet", "auto", 4, 6)


def test_listing_names_imports_no_torch():
    code = ("import sys, edgekd.cli, edgekd.config, edgekd.distill.registry, edgekd.data.formats; "
            "from edgekd.data.formats import list_data_formats; list_data_formats(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def scenes_tree(root):
    write_scenes(root / "scenes", 2, (16, 24), val_n=1)
    return root / "scenes"


# A tiny dataset of every registered format: (a task it serves, a function writing it under a folder -> its path).
DATASET_WRITERS = {
    "edgekd-scenes": ("depth", scenes_tree),
    "nyu-mat": ("depth", nyu_mat_cli),
    "depth-list": ("depth", lambda d: depth_list_tree(d / "list")),
    "voc": ("segmentation", voc_tree),
    "label-maps": ("segmentation", label_maps_tree),
    "pix2pix": ("translation", lambda d: pix2pix_tree(d / "maps")),
    "image-folder": ("colourisation", lambda d: image_folder(d / "photos", n=4)),
    "imagefolder": ("classification", lambda d: imagefolder_tree(d / "cls")),
}


def test_every_data_format_has_a_tiny_dataset_here():
    assert sorted(DATASET_WRITERS) == sorted(list_data_formats())


@pytest.mark.parametrize("name", list_data_formats())
def test_every_data_format_is_detected_and_round_trips(tmp_path, name):
    task, write = DATASET_WRITERS[name]
    assert task in get_data_format(name).tasks
    path = write(tmp_path)
    assert detect_format(path, task) == name
    for split in ("train", "val"):
        for data_format in ("auto", name):
            ds = open_dataset(str(path), split, (16, 16), data_format=data_format, task=task)
            s = ds[len(ds) - 1]
            assert ds.format == name and len(ds) >= 1
            assert s["image"].dtype == np.uint8 and s["image"].ndim == 3 and s["image"].shape[2] == 3


def test_an_alias_opens_its_format_and_is_not_listed(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "DATA_FORMATS", formats.DATA_FORMATS.copy())  # restored after the test
    register_data_format("photos", "test", ("colourisation",), lambda p: False,
                         "edgekd.data.formats.plain_images:ImageFolderPlain", aliases=("pictures",))
    ds = open_dataset(str(image_folder(tmp_path / "p", n=4)), "train", (8, 8), data_format="pictures")
    assert len(ds) >= 1 and "pictures" not in list_data_formats() and "photos" in list_data_formats()


def test_unknown_data_format_names_the_valid_ones(tmp_path):
    with pytest.raises(EdgekdError, match=r"unknown --data-format 'tfrecord'; use one of: edgekd-scenes, .*imagefolder$"):
        open_dataset(str(image_folder(tmp_path / "p", n=4)), "train", (8, 8), data_format="tfrecord")


# --- the one Registry class (edgekd/registry.py) every kind uses -------------------------------------------------------

def _registries():
    """Every module-level Registry of edgekd, found by importing the packages that hold them."""
    import importlib

    from edgekd.registry import Registry

    found = {}
    for module in ("edgekd.tasks", "edgekd.distill.registry", "edgekd.data.formats", "edgekd.export.formats",
                   "edgekd.models.teacher_kinds", "edgekd.bench.runners.base"):
        mod = importlib.import_module(module)
        found.update({f"{module}.{k}": v for k, v in vars(mod).items() if isinstance(v, Registry)})
    return found


REGISTRIES = _registries()


def test_every_kind_has_a_registry():
    kinds = {r.kind for r in REGISTRIES.values()}
    assert {"task", "method", "projection", "--data-format", "export format", "precision", "teacher kind", "backend"} <= kinds


def _typo(name: str) -> str:
    return name[:-1] + ("x" if name[-1] != "x" else "y")  # one letter off


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_an_unknown_name_is_one_line_with_the_choices_and_a_close_match(key):
    reg = REGISTRIES[key]
    names = reg.names()
    assert names, f"{key} is empty"
    wrong = _typo(max(names, key=len))
    with pytest.raises(EdgekdError) as e:
        reg.get(wrong)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"unknown {reg.kind} {wrong!r}; use ")
    assert all(n in msg for n in names)
    if len(names) > 3:  # a short list shown whole is its own hint
        assert msg.endswith(f"; did you mean {max(names, key=len)}?")
    assert reg.get(names[0]) is reg.get(names[0])  # a lazy entry is imported once


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_an_alias_reaches_its_entry_and_is_listed_only_when_asked(key):
    reg = REGISTRIES[key].copy()
    first = reg.names()[0]
    reg.register(first, reg.entries[first], aliases=("another-spelling",))
    assert reg.get("another-spelling") is reg.get(first) and reg.canonical("another-spelling") == first
    assert "another-spelling" in reg and "another-spelling" not in reg.names()
    assert reg.names(aliases=True)[-1] == "another-spelling"
    assert "another-spelling" not in REGISTRIES[key]  # the copy is independent


def test_lazy_entries_and_order():
    import json

    from edgekd.registry import Registry

    reg = Registry("thing")
    reg.register("dumps", "json:dumps")
    reg.register("catch-all", object())
    reg.register("loads", "json:loads", before="catch-all")
    assert reg.entries["dumps"] == "json:dumps"  # listing imports nothing
    assert reg.names() == ["dumps", "loads", "catch-all"] and reg.get("dumps") is json.dumps
    with pytest.raises(EdgekdError, match=r"^unknown thing 'lods'; use one of: dumps, loads, catch-all$"):
        reg.get("lods")  # three names: no guess
