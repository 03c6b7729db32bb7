"""The registry of on-disk dataset formats: detect a dataset's format from its path (and the task), and open it.

Each format is one module in this package (its reader and its ``detect(path)`` rule), registered
at the end of this file by ``"module:function"`` paths: listing the names (the CLI's ``--help``)
imports neither numpy nor the readers.  Detection tries the formats in registration order, so a
more specific layout is registered before a looser one (pix2pix before image-folder).

``image-folder`` (plain images, colourisation) and ``imagefolder`` (torchvision's class folders,
classification) are two formats, not two spellings of one: they read different layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import EdgekdError
from ...lazy import Target
from ...lazy import resolve as _resolve
from ...registry import Registry



class _EveryTask(tuple):
    """The tasks of a format that serves whichever task is registered (a task is never listed here, so the
    data floor needs no import of the tasks above it): every name is in it."""

    def __contains__(self, task) -> bool:
        return True

    def __repr__(self) -> str:
        return "EVERY_TASK"


EVERY_TASK = _EveryTask()


@dataclass(frozen=True)
class DataFormat:
    """``detect(path) -> bool``; ``open(path, split, n, **options) -> reader``, where ``options`` are the
    keyword options (e.g. ``direction``) that this format takes from :func:`detect_and_open`."""

    name: str
    summary: str
    tasks: tuple[str, ...]  # the tasks that can learn from it (EVERY_TASK: any registered one)
    detect: Target
    open: Target
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def looks_like(self, path: Path) -> bool:
        return bool(_resolve(self.detect)(path))

    def create(self, path: Path, split: str, n=None, **options):
        return _resolve(self.open)(path, split, n, **{k: v for k, v in options.items() if k in self.options})


DATA_FORMATS = Registry("--data-format")


def register_data_format(name: str, summary: str, tasks, detect: Target, open: Target, aliases=(), options=()) -> DataFormat:
    """Add (or replace) a format; ``aliases`` are other names ``--data-format`` accepts for it."""
    fmt = DataFormat(name, summary, tasks if isinstance(tasks, _EveryTask) else tuple(tasks), detect, open, tuple(aliases),
                     tuple(options))
    return DATA_FORMATS.register(name, fmt, aliases=fmt.aliases)


def list_data_formats(task: str | None = None) -> list[str]:
    """The canonical names, in detection order; with ``task``, those the task can learn from."""
    return [f.name for f in DATA_FORMATS.values() if task is None or task in f.tasks]


def get_data_format(name: str) -> DataFormat:
    return DATA_FORMATS.get(name)


def create_data_format(name: str, path: Path, split: str, n=None, **options):
    """Open ``path`` for ``split`` as format ``name`` (or one of its aliases)."""
    return get_data_format(name).create(path, split, n, **options)


def detect_format(path: Path, task: str | None = None) -> str:
    if path.is_dir() and not any(path.iterdir()):
        raise EdgekdError(f"data folder {path} is empty; put a dataset there or use --data synthetic")
    # A task no format names (none yet) may try them all.
    candidates = (list_data_formats(task) or list_data_formats()) if task else list_data_formats()
    for name in candidates:
        if DATA_FORMATS.get(name).looks_like(path):
            return name
    what = f" for the {task} task" if task else ""
    raise EdgekdError(
        f"cannot tell the dataset format of {path}{what}; name it with --data-format (one of: {', '.join(candidates)}) "
        "or see the README's Data section for the layouts"
    )


def detect_and_open(path: Path, split: str, n=None, data_format: str = "auto", task: str | None = None, direction: str = "AtoB",
                    depth_scale: float = 0.0):
    name = detect_format(path, task) if data_format == "auto" else data_format
    return create_data_format(name, path, split, n, direction=direction, depth_scale=depth_scale)


def matching_formats(path: Path) -> list[str]:
    """Every registered format whose layout ``path`` fits (``edgekd data inspect`` without ``--task``)."""
    return [name for name in list_data_formats() if DATA_FORMATS.get(name).looks_like(path)]


# The synthetic scenes carry every built-in task's target; a task needing other labels finds them missing.
register_data_format("edgekd-scenes", "scenes written by edgekd data synth (edgekd-data.json)", EVERY_TASK,
                     "edgekd.data.formats.edgekd_scenes:detect", "edgekd.data.formats.edgekd_scenes:SceneFolder")
register_data_format("nyu-mat", "NYU Depth v2 nyu_depth_v2_labeled.mat", ("depth",),
                     "edgekd.data.formats.nyu_mat:detect", "edgekd.data.formats.nyu_mat:NYUv2Mat")
register_data_format("depth-list", "rgb,depth pairs in train.csv/test.csv (depth PNG in mm)", ("depth",),
                     "edgekd.data.formats.depth_list:detect", "edgekd.data.formats.depth_list:DepthList",
                     options=("depth_scale",))
# NYUv2's 894 raw classes need a 13/40-class mapping first: nyu-mat is not a segmentation format.
register_data_format("voc", "VOC-style JPEGImages + SegmentationClass palette PNGs", ("segmentation",),
                     "edgekd.data.formats.voc:detect", "edgekd.data.formats.voc:VOCSegmentation")
register_data_format("label-maps", "images/<split>/ + annotations/<split>/ label PNGs (COCO-stuff style)", ("segmentation",),
                     "edgekd.data.formats.label_maps:detect", "edgekd.data.formats.label_maps:LabelMaps")
register_data_format("pix2pix", "aligned A|B images in <split>/", ("translation",),
                     "edgekd.data.formats.pix2pix:detect", "edgekd.data.formats.pix2pix:Pix2Pix", options=("direction",))
register_data_format("image-folder", "any folder of images (colourisation)", ("colourisation",),
                     "edgekd.data.formats.plain_images:detect", "edgekd.data.formats.plain_images:ImageFolderPlain")
register_data_format("imagefolder", "<split>/<class>/*.jpg class folders (classification)", ("classification",),
                     "edgekd.data.formats.class_folders:detect", "edgekd.data.formats.class_folders:ImageFolderClasses")
