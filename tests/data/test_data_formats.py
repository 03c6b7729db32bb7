"""Tiny fixtures in each real on-disk format, read back; a two-step CLI run of every task."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FAST_TEACHER, run_cli
from edgekd.data import open_dataset
from edgekd.data.formats import detect_format
from edgekd.errors import EdgekdError
from edgekd.tasks import list_tasks

STEPS = ["--image-size", "64", "64", "--train-size", "4", "--val-size", "2", "--batch-size", "2", "--epochs", "1",
         "--max-steps", "2", "--workers", "0", "--device", "cpu", "--quiet"]


def rgb(h, w, seed):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


@pytest.fixture
def nyu_mat(tmp_path):
    import h5py

    n, h, w = 6, 12, 16
    imgs = np.stack([rgb(h, w, i) for i in range(n)])  # (N, H, W, 3)
    depth = np.random.default_rng(0).uniform(0.5, 9.5, (n, h, w)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 40, (n, h, w)).astype(np.uint16)
    p = tmp_path / "nyu_depth_v2_labeled.mat"
    with h5py.File(p, "w") as f:  # MATLAB's column-major layout, as h5py sees it
        f["images"] = imgs.transpose(0, 3, 2, 1)
        f["depths"] = depth.transpose(0, 2, 1)
        f["labels"] = labels.transpose(0, 2, 1)
    (tmp_path / "train.txt").write_text("1 3 4 6\n")  # 1-based, as in splits.mat
    (tmp_path / "test.txt").write_text("2 5\n")
    return p, imgs, depth, labels


def test_nyu_mat_axes_and_official_split(nyu_mat):
    p, imgs, depth, labels = nyu_mat
    tr = open_dataset(str(p), "train", (12, 16), task="depth")
    te = open_dataset(str(p), "val", (12, 16), task="depth")
    assert tr.format == "nyu-mat" and len(tr) == 4 and len(te) == 2 and tr.official
    s = te[1]  # the 5th image (index 4)
    assert s["image"].shape == (12, 16, 3) and np.array_equal(s["image"], imgs[4])
    assert np.allclose(s["depth"], depth[4]) and np.array_equal(s["labels"], labels[4].astype(np.uint8))


def test_nyu_splits_mat(nyu_mat):
    scipy_io = pytest.importorskip("scipy.io")
    p = nyu_mat[0]
    (p.parent / "train.txt").unlink()
    scipy_io.savemat(str(p.parent / "splits.mat"), {"trainNdxs": np.array([[1], [2]]), "testNdxs": np.array([[3], [4], [5], [6]])})
    assert len(open_dataset(str(p), "train", (12, 16), task="depth")) == 2
    assert len(open_dataset(str(p), "val", (12, 16), task="depth")) == 4


def test_eigen_crop_follows_the_training_resolution():
    from edgekd.data.formats.nyu_mat import EIGEN_CROP
    from edgekd.train.build import task_args_for

    class Src:
        eval_crop_fraction = (EIGEN_CROP[0] / 480, EIGEN_CROP[1] / 480, EIGEN_CROP[2] / 640, EIGEN_CROP[3] / 640)

    cfg = {"model": {"task": "depth"}, "data": {"max_depth": 10.0, "image_size": [240, 320]}}
    assert task_args_for(cfg, Src())["eval_crop"] == [22, 236, 20, 300]


def depth_list_tree(root):
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 3), ("test", 2)):
        rows = ["rgb,depth"]
        for i in range(n):
            Image.fromarray(rgb(8, 10, i)).save(root / f"{split}{i}.jpg")
            Image.fromarray(np.full((8, 10), 2500 + i, np.uint16)).save(root / f"{split}{i}_d.png")
            rows.append(f"{split}{i}.jpg,{split}{i}_d.png")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_depth_list_csv(tmp_path):
    depth_list_tree(tmp_path)
    assert detect_format(tmp_path, "depth") == "depth-list"
    tr, te = open_dataset(str(tmp_path), "train", (8, 10), task="depth"), open_dataset(str(tmp_path), "val", (8, 10), task="depth")
    assert len(tr) == 3 and len(te) == 2
    assert te[1]["depth"][0, 0] == pytest.approx(2.501)  # millimetres -> metres


def voc_tree(root, n=6, size=(20, 24)):
    root = root / "VOCdevkit" / "VOC2012"
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / d).mkdir(parents=True)
    ids = [f"2007_{i:06d}" for i in range(n)]
    for i, k in enumerate(ids):
        Image.fromarray(rgb(*size, i)).save(root / "JPEGImages" / f"{k}.jpg")
        lab = np.full(size, i % 21, np.uint8)
        lab[0, :] = 255  # void border
        m = Image.fromarray(lab, mode="P")
        m.putpalette([c for j in range(256) for c in (j, 255 - j, (7 * j) % 256)])
        m.save(root / "SegmentationClass" / f"{k}.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids[:4]))
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids[4:]))
    return root.parent


def test_voc_palette_masks(tmp_path):
    root = voc_tree(tmp_path)
    ds = open_dataset(str(root), "val", (20, 24), task="segmentation")
    assert ds.format == "voc" and len(ds) == 2 and len(ds.classes) == 21
    s = ds[1]
    assert s["labels"][0, 0] == 255 and s["labels"][5, 5] == 5 and s["image"].shape == (20, 24, 3)


def label_maps_tree(root):
    for split in ("train2017", "val2017"):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rgb(10, 10, i)).save(root / "images" / split / f"{i:012d}.jpg")
            lab = np.full((10, 10), 181 if i == 2 else i, np.uint8)
            lab[0] = 255
            Image.fromarray(lab).save(root / "annotations" / split / f"{i:012d}.png")
    return root


def test_label_maps_coco_stuff_style(tmp_path):
    label_maps_tree(tmp_path)
    ds = open_dataset(str(tmp_path), "train", (10, 10), task="segmentation")
    assert ds.format == "label-maps" and len(ds.classes) == 182 and ds[2]["labels"][5, 5] == 181


def pix2pix_tree(root):
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        for i in range(3):
            a = np.zeros((16, 16, 3), np.uint8)
            a[..., 0] = 200
            b = np.zeros((16, 16, 3), np.uint8)
            b[..., 2] = 200
            Image.fromarray(np.concatenate([a, b], 1)).save(root / split / f"{i}.png")
    return root


def test_pix2pix_directions(tmp_path):
    root = pix2pix_tree(tmp_path)
    s = open_dataset(str(root), "train", (16, 16), task="translation")[0]
    assert s["image"][0, 0, 0] == 200 and s["target_image"][0, 0, 2] == 200 and s["image"].shape == (16, 16, 3)
    s = open_dataset(str(root), "train", (16, 16), task="translation", direction="BtoA")[0]
    assert s["image"][0, 0, 2] == 200


def image_folder(root, n=30):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rgb(12, 12, i)).save(root / f"photo{i}.jpg")
    return root


def test_plain_image_folder_split_is_deterministic_and_disjoint(tmp_path):
    root = image_folder(tmp_path / "photos")
    tr = open_dataset(str(root), "train", (12, 12), task="colourisation")
    va = open_dataset(str(root), "val", (12, 12), task="colourisation")
    assert tr.format == "image-folder" and len(tr) + len(va) == 30 and len(va) >= 1
    assert not set(tr.items) & set(va.items)


def imagefolder_tree(root):
    for split in ("train", "val"):
        for c, colour in (("cat", 0), ("dog", 2)):
            (root / split / c).mkdir(parents=True)
            for i in range(3):
                a = np.zeros((12, 12, 3), np.uint8)
                a[..., colour] = 255
                Image.fromarray(a).save(root / split / c / f"{i}.png")
    return root


def test_imagefolder_classes(tmp_path):
    root = imagefolder_tree(tmp_path / "cls")
    ds = open_dataset(str(root), "train", (12, 12), task="classification")
    assert ds.format == "imagefolder" and ds.classes == ["cat", "dog"] and len(ds) == 6
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"][0, 0, 0 if s["label"] == 0 else 2] == 255


def test_corrupt_and_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgekdError, match="is empty"):
        open_dataset(str(tmp_path / "empty"), "train", (8, 8), task="colourisation")
    root = image_folder(tmp_path / "bad", n=3)
    (root / "photo1.jpg").write_bytes(b"not a jpeg")
    ds = open_dataset(str(root), "train", (8, 8), data_format="image-folder")
    with pytest.raises(EdgekdError, match="cannot read image"):
        [ds[i] for i in range(len(ds))]


def test_data_inspect(tmp_path):
    root = voc_tree(tmp_path)
    res = run_cli(["data", "inspect", root, "--task", "segmentation"])
    assert '"format": "voc"' in res.output and '"samples": 4' in res.output and "aeroplane" in res.output


# task -> (a tiny dataset in a real on-disk format, extra options, a metric it logs); a registered task missing here fails
TASK_DATA = {
    "depth": (lambda t: nyu_mat_cli(t), FAST_TEACHER, "d1"),
    "segmentation": (lambda t: voc_tree(t), FAST_TEACHER, "miou"),
    "colourisation": (lambda t: image_folder(t / "photos"), FAST_TEACHER, "psnr"),
    "translation": (lambda t: pix2pix_tree(t / "maps"), FAST_TEACHER, "psnr"),
    "classification": (lambda t: imagefolder_tree(t / "cls"), ["--teacher", "none", "--spectral", "8"], "top1"),
}


@pytest.mark.parametrize("task", list_tasks())
def test_two_step_run_of_every_task(tmp_path, task):
    assert task in TASK_DATA, f"add task {task!r} to TASK_DATA: a tiny dataset in one of its on-disk formats"
    make, extra, key = TASK_DATA[task]
    data = make(tmp_path)
    out = tmp_path / "run"
    run_cli(["distill", "--task", task, "--data", data, *extra, *STEPS, "--out", out])
    import json

    m = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert key in m and np.isfinite(m[key])


# tasks another test already trains from synthetic scenes (not run twice: the suite's time)
SYNTHETIC_ELSEWHERE = {"depth": "tests/cli/test_cli_distill.py", "segmentation": "tests/cli/test_cli_distill.py"}


def test_synthetic_scenes_provide_every_task(tmp_path):
    for task in [t for t in list_tasks() if t not in SYNTHETIC_ELSEWHERE]:
        run_cli(["distill", "--task", task, "--teacher", "none", *STEPS, "--out", tmp_path / task])


def nyu_mat_cli(tmp_path):
    import h5py

    p = tmp_path / "nyu.mat"
    with h5py.File(p, "w") as f:
        f["images"] = np.stack([rgb(64, 64, i) for i in range(6)]).transpose(0, 3, 2, 1)
        f["depths"] = np.random.default_rng(0).uniform(0.5, 9.5, (6, 64, 64)).astype(np.float32)
    (tmp_path / "train.txt").write_text("1 2 3 4")
    (tmp_path / "test.txt").write_text("5 6")
    return p


def test_torchvision_mobilenetv2_weights_map_onto_timm(tmp_path):
    import torchvision

    from edgekd.models import create_teacher

    tv = torchvision.models.mobilenet_v2()
    for m in tv.modules():  # non-trivial BatchNorm statistics, so a wrong mapping shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    f = tmp_path / "mobilenet_v2.pth"
    torch.save(tv.state_dict(), f)
    t = create_teacher("mobilenetv2_100", "", str(f))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = tv.eval().features[:18](x)  # everything up to the 320-channel stage, before conv_head
    assert torch.allclose(t(x), ref, atol=1e-4)


def test_timm_state_dict_teacher(tmp_path):
    import timm

    from edgekd.models import create_teacher

    m = timm.create_model("resnet18")
    f = tmp_path / "r18.pth"
    torch.save(m.state_dict(), f)
    t = create_teacher("resnet18", "", str(f))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(t(x), m.eval().forward_features(x), atol=1e-5)


# ----------------------------------------------------------------- issue #26, finding 5: data that cannot be right
def depth_list_8bit(root, values=(50, 120, 250)):
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 3), ("test", 2)):
        rows = []
        for i in range(n):
            Image.fromarray(rgb(8, 10, i)).save(root / f"{split}{i}.jpg")
            Image.fromarray(np.full((8, 10), values[i], np.uint8)).save(root / f"{split}{i}_d.png")
            rows.append(f"{split}{i}.jpg,{split}{i}_d.png")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_8bit_depth_pngs_are_refused_without_a_scale(tmp_path):
    root = depth_list_8bit(tmp_path / "d8")
    with pytest.raises(EdgekdError, match=r"8-bit depth PNG \(values 50-50\).*--depth-scale"):
        open_dataset(str(root), "train", (8, 10), task="depth")
    ds = open_dataset(str(root), "train", (8, 10), task="depth", depth_scale=0.04)
    assert ds[1]["depth"][0, 0] == pytest.approx(120 * 0.04)
    res = run_cli(["distill", "--task", "depth", "--data", root, "--teacher", "none", *STEPS, "--out", tmp_path / "run"], expect=2)
    assert "--depth-scale" in res.output and not (tmp_path / "run" / "last.pt").exists()


def test_data_inspect_range_over_all_samples_and_every_format(tmp_path):
    root = depth_list_tree(tmp_path / "dl")
    Image.fromarray(np.full((8, 10), 9168, np.uint16)).save(root / "train2_d.png")  # the deepest scene is not the first
    import json

    info = json.loads(run_cli(["data", "inspect", root]).output)
    assert info["train"]["depth_range_m"] == [pytest.approx(2.5), pytest.approx(9.168)]
    assert info["train"]["read"] == "all 3 samples"
    assert "depth-list" in info["formats"] and info["format"] == "depth-list"
    # a folder of photos fits image-folder; a pix2pix layout fits pix2pix and image-folder alike: both are listed
    maps = json.loads(run_cli(["data", "inspect", pix2pix_tree(tmp_path / "maps")]).output)
    assert {"pix2pix", "image-folder"} <= set(maps["formats"])


def test_small_validation_split_and_squashed_photos_are_warned(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(20):
        Image.fromarray(rgb(48, 64, i)).save(root / f"photo{i}.jpg")
    res = run_cli(["distill", "--task", "colourisation", "--data", root, "--teacher", "none", *STEPS, "--out", tmp_path / "run"])
    err = res.stderr if hasattr(res, "stderr") else res.output
    assert "the validation split of" in err and "has 2 images" in err and "at least 8" in err and "--val-size 2" in err
    assert "are 48x64 (width/height 1.33) and are resized to 64x64 (1.00): squashed" in err and "--image-size 64 96" in err
