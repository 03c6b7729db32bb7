"""User-facing errors: one line that names the problem and the fix.

The CLI prints ``error: <message>`` and exits with code 2 for any
:class:`EdgekdError`; nothing else should reach the user as a traceback.
"""


class EdgekdError(Exception):
    """A mistake in the user's input (or environment) that edgekd can explain."""

    exit_code = 2


class DivergenceError(EdgekdError):
    """Training produced a NaN or infinite loss."""


class MissingDependencyError(EdgekdError):
    """An optional runtime (TensorRT, a GPU, CUDA in onnxruntime) is not available."""
