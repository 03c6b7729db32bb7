"""The registries of distances and projections: one place that says what ``--method`` and ``--projection`` accept.

Torch-free on purpose: the CLI's ``--help`` and the configuration check list these names, and
``edgekd bench`` runs where torch is absent.  So each distance is registered by name with its loss
and its projector as ``"module:function"`` paths, imported only when a :class:`Distiller` is built.
Adding a distance is one new file (the loss, and a projector if it needs its own) plus one
``register_distance`` line at the end of this module; the tests over the registry then cover it.

The small fixed choices of the distillation term (feature normalisations, the spectral norms and
scopes) live here too, for the same reason; ``distiller.py`` and ``spectral.py`` use these tuples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..lazy import Target
from ..lazy import resolve as _resolve
from ..registry import Registry

NORMALIZATIONS = ("none", "layernorm", "batchnorm")  # see distiller.normalize_features
SPECTRAL_NORMS = ("fro2", "fro", "spectral")  # see spectral.py's module docstring
SPECTRAL_SCOPES = ("batch", "image")



@dataclass(frozen=True)
class Distance:
    """A distance ``d(s, t)`` between two feature maps, and the projector it is trained with.

    ``loss(s, t) -> scalar tensor``; ``projector(in_channels, out_channels, projection) -> nn.Module``
    where ``projection`` is the :class:`Projection` in use (a projector may depend on the direction).
    """

    name: str
    summary: str
    loss: Target
    projector: Target = "edgekd.distill.projector:single_projector"

    def loss_fn(self) -> Callable:
        return _resolve(self.loss)

    def create_projector(self, in_channels: int, out_channels: int, projection: "Projection"):
        return _resolve(self.projector)(in_channels, out_channels, projection)


@dataclass(frozen=True)
class Projection:
    """Which side the projector maps: ``"teacher"`` (to the student's channels) or ``"student"`` (to the teacher's);
    or ``"chosen"``: a rule (``chooser``, ``"module:function"``) picks one of those two from the features before
    training (``auto``), and the run then uses the chosen projection throughout."""

    name: str
    summary: str
    maps: str
    chooser: Target | None = None

    def choose(self, zs: list, zt: list, threshold: float) -> dict:
        """The choice (``{"chosen": name, ...measurement}``) from per-batch student and teacher features."""
        return _resolve(self.chooser)(zs, zt, threshold)

    def channels(self, student_channels: int, teacher_channels: int) -> tuple[int, int]:
        """The projector's (in, out) channels."""
        if self.maps == "teacher":
            return teacher_channels, student_channels
        return student_channels, teacher_channels

    def pair(self, projector, zs, zt):
        """The two maps the distance compares: ``(Z_s, P(Z_t))`` or ``(P(Z_s), Z_t)``."""
        return (zs, projector(zt)) if self.maps == "teacher" else (projector(zs), zt)


DISTANCES = Registry("method")
PROJECTIONS = Registry("projection", choices=lambda names: ", ".join(names[:-1]) + " or " + names[-1])
_DISTANCES, _PROJECTIONS = DISTANCES.entries, PROJECTIONS.entries  # the dicts themselves (tests patch them)


def register_distance(name: str, summary: str, loss: Target, projector: Target | None = None) -> Distance:
    """Add (or replace) a distance; ``projector`` defaults to one :class:`~edgekd.distill.projector.Projector`."""
    distance = Distance(name, summary, loss) if projector is None else Distance(name, summary, loss, projector)
    return DISTANCES.register(name, distance)


def list_distances() -> list[str]:
    return DISTANCES.names()


def get_distance(name: str, what: str = "method") -> Distance:
    return DISTANCES.get(name, what)


def create_distance(name: str) -> Callable:
    """The loss function ``d(s, t)`` of distance ``name``."""
    return get_distance(name).loss_fn()


def register_projection(name: str, summary: str, maps: str, chooser: Target | None = None) -> Projection:
    if maps not in ("teacher", "student", "chosen"):
        raise ValueError(f"a projection maps 'teacher' or 'student' features (or is 'chosen' by a rule), not {maps!r}")
    if (maps == "chosen") != (chooser is not None):
        raise ValueError("a 'chosen' projection needs a chooser, and only it has one")
    return PROJECTIONS.register(name, Projection(name, summary, maps, chooser))


def list_projections(chosen: bool = True) -> list[str]:
    """Every projection name; ``chosen=False``: only those with a direction (what a :class:`Distiller` is built with)."""
    return [n for n in PROJECTIONS.names() if chosen or PROJECTIONS.get(n).maps != "chosen"]


def get_projection(name: str) -> Projection:
    return PROJECTIONS.get(name)


def distances_help() -> str:
    """``fitnet: ...; at: ...``: one line per distance for ``--help``."""
    return "; ".join(f"{d.name}: {d.summary}" for d in DISTANCES.values())


register_distance("fitnet", "mean squared error between the maps (FitNets)", "edgekd.distill.fitnet:fitnet_loss")
register_distance("at", "attention maps, mean over channels of x^2 (Zagoruyko & Komodakis)", "edgekd.distill.at:at_loss")
register_distance("pkt", "probability distributions of the batch's pooled features (PKT)", "edgekd.distill.pkt:pkt_loss")
register_distance("ensemble", "1 - cos of pooled features, three projectors averaged (Chen et al.)",
                  "edgekd.distill.ensemble:ensemble_loss", projector="edgekd.distill.ensemble:ensemble_projector")

register_projection("inverted", "teacher features to the student's channels: d(Z_s, P(Z_t))", maps="teacher")
register_projection("traditional", "student features to the teacher's channels: d(P(Z_s), Z_t)", maps="student")
register_projection("auto", "inverted or traditional, chosen before training from the similarity (debiased linear CKA) of "
                            "student and teacher features", maps="chosen", chooser="edgekd.distill.projection_choice:choose_projection")
