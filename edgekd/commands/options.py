"""The verbs' click options, generated: training's from the profile schema (edgekd/config.py), export's,
bench's and fit's from their settings dataclasses' fields (edgekd/options.py).  Each default is the one
its schema or dataclass declares."""

from __future__ import annotations

from dataclasses import fields

import click

from ..errors import EdgekdError
from ..options import is_option


class FloatOrAuto(click.ParamType):
    """A number, or ``auto`` (set from gradient norms before the first step)."""

    name = "W|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) or value == "auto":
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)


_SHIPPED = None


def profile_defaults(section: str, key: str) -> str:
    """``[jetson 16, mobile 16, server 32]``: a key's default in each shipped profile, for the help text."""
    global _SHIPPED
    if _SHIPPED is None:
        from ..config import list_profiles, load_profile

        try:
            _SHIPPED = {name: load_profile(name) for name in list_profiles()}
        except EdgekdError:  # a broken install still gets its help
            _SHIPPED = {}
    fmt = lambda v: "x".join(map(str, v)) if isinstance(v, list) else ("none" if v in ("", None) else str(v))  # noqa: E731  (256x320)
    vals = {name: fmt(c[section][key]) for name, c in _SHIPPED.items()}
    if not vals:
        return "[the profile's]"
    if len(set(vals.values())) == 1:
        return f"[the profile's: {next(iter(vals.values()))}]"
    return "[the profile's: " + ", ".join(f"{n} {v}" for n, v in vals.items()) + "]"


def data_formats_help() -> str:
    from ..data.formats import list_data_formats

    return ", ".join(list_data_formats())


class LazyHelpOption(click.Option):
    """An option whose help is composed only when help is shown: the shipped profiles' values and a registry's
    names (the tasks import numpy) are read then, which keeps ``import edgekd.cli`` fast."""

    def __init__(self, *args, help_fn=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._help_fn = help_fn

    def get_help_record(self, ctx):
        if self._help_fn is not None:
            self.help, self._help_fn = self._help_fn(), None
        return super().get_help_record(ctx)


def _key_help(section: str, key: str) -> str:
    """The schema's help of a key, with the shipped profiles' values where it says ``{default}``."""
    from ..config import key_help

    text = key_help(section, key, "{default}")
    if "{default}" in text:
        return text.replace("{default}", profile_defaults(section, key))
    return text if text.rstrip().endswith("]") else f"{text} {profile_defaults(section, key)}"  # every option shows its default


def key_option(section: str, key: str):
    """The option that sets ``section.key``: its flag, type and help come from the schema (edgekd/config.py)."""
    from ..config import key_choices, option_keys, section_keys

    flag, dest = next((f, d) for s, k, f, d in option_keys() if (s, k) == (section, key))
    meta = section_keys(section)[key].metadata
    kind, kw = meta["kind"], {"metavar": meta["metavar"]}
    if kind in ("int", "float", "intlist"):
        kw["type"] = float if kind == "float" else int
    if kind == "intlist":
        kw["nargs"] = meta["lo"]
    if kind == "float_auto":
        kw["type"] = FloatOrAuto()
    if kind == "choice" and meta["cli_choice"]:
        kw["type"] = click.Choice(list(key_choices(section, key)))
    return click.option(flag, dest, default=None, cls=LazyHelpOption, help_fn=lambda: _key_help(section, key), **kw)


def _apply(fn, opts):
    for o in reversed(opts):
        fn = o(fn)
    return fn


_TRAINING_KEYS = [("model", "task"), ("model", "student"), ("model", "student_weights"), ("model", "student_tap"), ("data", "data"),
                  ("data", "data_format"), ("data", "direction"), ("data", "depth_scale"), ("train", "epochs"), ("train", "batch_size"),
                  ("train", "lr"), ("train", "warmup_steps"), ("data", "image_size"), ("train", "train_size"), ("train", "val_size"),
                  ("train", "max_steps"), ("train", "workers"), ("train", "seed"), ("train", "device"), ("model", "compile")]
_DISTILL_KEYS = ["teacher", "teacher_weights", "teacher_layer", "teacher_norm", "method", "projection", "teacher_tap", "weight", "grad_ratio",
                 "recalibrate_every", "normalize", "projector_lr", "projector_weight_decay", "projector_shrinkage", "spectral",
                 "spectral_weight", "spectral_norm", "spectral_scope"]


def training_options(fn):
    """Options shared by ``distill`` and ``compare`` (each overrides the profile's key)."""
    return _apply(fn, [
        click.option("--profile", default="jetson", show_default=True, help="Profile name (jetson, mobile, server) or a path to a TOML file."),
        *(key_option(*k) for k in _TRAINING_KEYS),
        click.option("--threads", type=int, default=None,
                     help="CPU threads for torch [half this machine's cores, at most 8; OMP_NUM_THREADS if set]."),
        click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override any profile key (repeatable) [none]."),
    ])


def distill_options(fn):
    """The ``[distill]`` keys ``distill`` sets by option."""
    return _apply(fn, [key_option("distill", k) for k in _DISTILL_KEYS])


def settings_options(*sources):
    """The options of settings dataclasses' fields declared with edgekd.options.option, in field order;
    a source is a class, or ``(class, names)`` for some of its fields."""
    opts = []
    for src in sources:
        cls, names = src if isinstance(src, tuple) else (src, None)
        opts += [_field_option(f) for f in fields(cls) if is_option(f) and (names is None or f.name in names)]
    return lambda fn: _apply(fn, opts)


def _field_option(f):
    m, default = f.metadata, f.default
    kw = {"default": default, "help": m["help"]() if callable(m["help"]) else m["help"]}
    decls = [m["flag"] or "--" + f.name.replace("_", "-"), f.name]
    if isinstance(default, bool):  # a switch: it sets the value its default is not
        return click.option(*decls, is_flag=True, flag_value=not default, **kw)
    kind = m["type"] or (type(default) if default is not None else str)
    if m["choices"] is not None:
        kw["type"] = click.Choice(list(m["choices"]() if callable(m["choices"]) else m["choices"]))
    elif m["path"]:
        kw["type"] = click.Path()
    elif kind in (int, float) and (m["lo"] is not None or m["hi"] is not None):
        kw["type"] = (click.IntRange if kind is int else click.FloatRange)(min=m["lo"], max=m["hi"])
    elif kind in (int, float):
        kw["type"] = kind
    if m["parse"] is not None:
        kw["callback"], kw["default"] = _parser(m["parse"], default), None
    elif isinstance(default, tuple):
        kw["multiple"] = True
    kw.update({k: m[k] for k in ("metavar", "nargs") if m[k] is not None})
    kw["show_default"] = default not in (None, "", ())
    return click.option(*decls, **kw)


def _parser(parse, default):
    """A click callback that reads the option's text with ``parse`` (not given: the field's default)."""

    def callback(ctx, param, value):
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return callback
