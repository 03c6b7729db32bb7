"""docs/architecture.md says a distance is one file plus one registration line: follow it literally."""

from __future__ import annotations

import sys

import pytest
import torch

from edgekd.config import validate_profile
from edgekd.distill import registry
from edgekd.distill.distiller import Distiller
from edgekd.errors import EdgekdError

COSINE = '''
import torch.nn.functional as F


def cosine_loss(s, t):
    """1 - cosine similarity per position, averaged."""
    return (1 - F.cosine_similarity(s, t, dim=1)).mean()
'''


@pytest.fixture
def cosine_distance(tmp_path, monkeypatch):
    (tmp_path / "cosine_kd.py").write_text(COSINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry._DISTANCES, "cosine", registry._DISTANCES["fitnet"])  # restored after the test
    registry.register_distance("cosine", "1 - cosine similarity per position", "cosine_kd:cosine_loss")
    yield "cosine"
    sys.modules.pop("cosine_kd", None)


def test_a_registered_distance_is_accepted_everywhere(cosine_distance):
    assert "cosine" in registry.list_distances()
    cfg = validate_profile({"distill": {"method": "cosine"}}, "a profile")  # the config check reads the registry
    assert cfg["distill"]["method"] == "cosine"
    for projection in registry.list_projections(chosen=False):
        d = Distiller("cosine", projection, student_channels=8, teacher_channels=16)
        zs = torch.randn(2, 8, 3, 4, requires_grad=True)
        loss = d(zs, torch.randn(2, 16, 3, 4))["distill"]
        loss.backward()
        assert torch.isfinite(loss) and zs.grad.abs().sum() > 0


def test_without_its_registration_the_name_is_refused():
    assert "cosine" not in registry.list_distances()
    with pytest.raises(EdgekdError, match="cosine"):
        validate_profile({"distill": {"method": "cosine"}}, "a profile")
