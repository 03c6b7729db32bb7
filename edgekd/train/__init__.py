"""Training (``edgekd distill`` and the ``edgekd compare`` grid); torch is imported by the modules, not here.

* :mod:`.build`: the parts of a run from a resolved config (data, models, optimiser, schedule, DDP);
* :mod:`.step`: one training step (teacher features, forward, backward, optimiser), :mod:`.compile` wraps it;
* :mod:`.loop`: :class:`~edgekd.train.loop.Trainer`, the epoch loop, logs and checkpoints;
* :mod:`.calibrate` / :mod:`.strength`: gradient ratios of the loss terms and ``auto`` weights;
* :mod:`.grid`: the comparison grid (cells x seeds) behind ``edgekd compare``.
"""
