"""What each verb of the CLI does, once cli.py has parsed its options into a settings object.

One module per verb or group (distill, compare, export, bench, teacher, data, doctor); cli.py only wires
click to them.  This floor sits just below the CLI: it may import every floor beneath it, nothing imports it
but cli.py.

Importing it registers the word lists that later floors own with the profile schema (the bench backends, the
export formats and precisions, the teacher kinds: ``config.register_key_words``), so every command checks those
keys of a profile as it loads it.  All three modules are torch-free.
"""

from ..bench.runners import base as _backends  # noqa: F401  (registers bench.backend's words)
from ..export import formats as _formats  # noqa: F401  (export.format, export.precision)
from ..models import teacher_kinds as _teacher_kinds  # noqa: F401  (distill.teacher's help)
