"""Distillation as drop-in pieces for your own training loop.

>>> from edgekd.distill import Projector, fitnet_loss, spectral_loss
>>> P = Projector(teacher_channels, student_channels)          # inverted: teacher -> student
>>> loss = task_loss + w * fitnet_loss(z_s, P(z_t)) + spectral_loss(z_s, r=2)

See the README's "Python API" section for a complete loop.
"""

from .at import at_loss, attention_map
from .distiller import DISTANCES, Distiller
from .ensemble import ProjectorEnsemble, ensemble_loss
from .fitnet import fitnet_loss
from .pkt import pkt_loss
from .projector import Projector, inverted, traditional
from .spectral import SpectralRegulariser, spectral_loss, spectral_loss_exact

__all__ = [
    "Projector", "ProjectorEnsemble", "Distiller", "DISTANCES", "inverted", "traditional",
    "fitnet_loss", "at_loss", "attention_map", "pkt_loss", "ensemble_loss",
    "spectral_loss", "spectral_loss_exact", "SpectralRegulariser",
]
