"""A settings field that describes its own command-line option: one default, written once.

The settings dataclasses of ``export``, ``bench`` and ``fit`` (export/job.py, export/pipeline.py,
bench/settings.py, fit.py) declare each field with :func:`option`; edgekd/commands/options.py turns
those fields into the verbs' click options, as edgekd/config.py's schema does for training's.  This
module imports neither click nor anything heavy: the settings stay usable from a script and a device.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, field, fields
from typing import Any, Callable


def option(default: Any = None, help: str | Callable[[], str] = "", *, flag: str | None = None, type: type | None = None,
           lo: float | None = None, hi: float | None = None, choices: Callable[[], list] | tuple | None = None,
           metavar: str | None = None, parse: Callable[[str], Any] | None = None, path: bool = False,
           nargs: int | None = None) -> Field:
    """A field whose ``default`` is also its option's.

    ``help`` (text, or a function composing it from a registry) is the option's help; ``flag`` its name
    [``--field-name``]; ``type`` the value's type when the default is None; ``lo``/``hi`` the least and largest
    value; ``choices`` the values it takes; ``parse`` turns the text into the value (a ValueError is the user's
    mistake); ``path`` marks a file or folder.  A bool field is a switch: ``flag`` set when the default is True
    (``--quiet`` sets ``show_progress`` False).  A tuple default makes a repeatable option unless ``parse`` reads it.
    """
    meta = {"help": help, "flag": flag, "type": type, "lo": lo, "hi": hi, "choices": choices, "metavar": metavar,
            "parse": parse, "path": path, "nargs": nargs}
    return field(default=default, metadata=meta)  # immutable defaults only (a tuple, not a list): shared by every instance


def is_option(f: Field) -> bool:
    """Whether a settings field is an option of its verb (declared with :func:`option` and a help)."""
    return bool(f.metadata.get("help")) and f.default is not MISSING


def least_values(cls) -> dict[str, float]:
    """``{field: least value}`` of the fields that declare one (``lo``): what :meth:`check` refuses below."""
    return {f.name: f.metadata["lo"] for f in fields(cls) if f.metadata.get("lo") is not None}
