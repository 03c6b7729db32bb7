"""edgekd: cross-task knowledge distillation to a measured edge deployment.

The package imports nothing heavy at top level: ``edgekd bench`` must run on a
device that has only numpy and onnxruntime (docs/architecture.md, "The deployment contract").
"""

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it (tool.setuptools.dynamic)
