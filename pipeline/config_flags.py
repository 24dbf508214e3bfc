"""absl flags derived from a config dataclass: each setting is declared once, in the dataclass.

A config dataclass already states each setting's name, type (the annotation),
default and meaning (the ``Attributes:`` section of its Google-style
docstring). ``define_flags`` turns its fields into absl flags, and
``from_flags`` builds the dataclass back from the parsed flags, so a main
holds no per-setting code and ``--flagfile`` presets keep working.

Annotation -> flag:

  ``bool``, ``int``, ``float``, ``str``: ``DEFINE_bool``, ``DEFINE_integer``,
    ``DEFINE_float``, ``DEFINE_string`` (``DEFINE_enum`` if the field's
    metadata names ``choices``).
  ``Literal["a", "b"]``: ``DEFINE_enum``; an ``enum.Enum``: ``DEFINE_enum_class``.
  ``tuple[X, ...]`` or ``tuple[X, X]`` of ``int``/``float``/``str``: ``DEFINE_list``
    (``DEFINE_multi_string`` with ``multi=True``); a fixed length is checked.
  ``X | None``: X's flag; the default may be None.
  A dataclass: its own fields' flags, flattened under the same prefix;
    ``D | None`` adds a bool flag named after the field (off: None).

A field without a default gets a flag whose default is None (the main marks
it required or the dataclass refuses it). Field metadata from
``flag_options`` renames a flag or makes it an enum or a repeated flag.

Flags are attributed to the module that calls ``define_flags`` (this module
disclaims them), so ``--helpshort`` and ``get_key_flags_for_module`` see
them as the main's own.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from absl import flags

# The DEFINE_* calls below belong to the module that calls define_flags.
flags.disclaim_key_flags()

_OPTIONS_KEY = "config_flags"
_SCALAR_DEFINES = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
                   str: flags.DEFINE_string}
_ITEM_TYPES = (int, float, str)
_ENTRY = re.compile(r"(\w+)(?:\s*\([^)]*\))?:\s*(.*)")


def flag_options(*, name: str | None = None, choices: Sequence[str] | None = None,
                 multi: bool = False) -> dict[str, Any]:
    """Field metadata for ``define_flags``: ``dataclasses.field(..., metadata=flag_options(...))``.

    Args:
      name: the flag's name when it differs from the field's (e.g. ``cv_dir`` for ``cv_dirs``).
      choices: makes a ``str`` field an enum flag with these values (e.g. a registry's names).
      multi: a tuple field becomes a repeated flag (``--cv_dir=a --cv_dir=b``) instead of a list.

    Returns:
      The metadata mapping.
    """
    return {_OPTIONS_KEY: {"name": name, "choices": tuple(choices) if choices is not None else None, "multi": multi}}


def attribute_docs(cls: type) -> dict[str, str]:
    """Each attribute's text in the ``Attributes:`` section of ``cls``'s docstring, one line each.

    Args:
      cls: a class with a Google-style docstring.

    Returns:
      ``{attribute name: help text}``; empty without an ``Attributes:`` section.
    """
    lines = (inspect.getdoc(cls) or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    section_indent = _indent(lines[start])
    docs: dict[str, list[str]] = {}
    entry_indent = None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        indent = _indent(line)
        if indent <= section_indent:
            break  # the next section
        entry_indent = indent if entry_indent is None else entry_indent
        match = _ENTRY.fullmatch(line.strip())
        if indent == entry_indent and match:
            docs[match.group(1)] = [match.group(2)]
        elif docs:
            list(docs.values())[-1].append(line.strip())
    return {name: " ".join(words).strip() for name, words in docs.items()}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _options(field: dataclasses.Field) -> dict[str, Any]:
    return field.metadata.get(_OPTIONS_KEY, {"name": None, "choices": None, "multi": False})


def _flag_name(field: dataclasses.Field, prefix: str) -> str:
    return prefix + (_options(field)["name"] or field.name)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """(X, True) for ``X | None`` / ``Optional[X]``, else (annotation, False)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return rest[0], True
    return annotation, False


def _tuple_item(annotation: Any) -> tuple[type, int | None] | None:
    """(item type, fixed length or None) of a supported tuple annotation; None if not a tuple."""
    if typing.get_origin(annotation) is not tuple:
        return None
    args = typing.get_args(annotation)
    if len(args) == 2 and args[1] is Ellipsis:
        item, length = args[0], None
    else:
        item, length = (args[0] if len(set(args)) == 1 else None), len(args)
    if item not in _ITEM_TYPES:
        return None
    return item, length


def _fields(config_cls: type) -> list[tuple[dataclasses.Field, Any]]:
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    hints = typing.get_type_hints(config_cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(config_cls) if f.init]


def _default(field: dataclasses.Field, defaults: Mapping[str, Any]) -> Any:
    if field.name in defaults:
        return defaults[field.name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def define_flags(config_cls: type, flag_values: flags.FlagValues = flags.FLAGS, *, exclude: Collection[str] = (),
                 prefix: str = "") -> list[str]:
    """Defines one absl flag per field of ``config_cls`` (nested dataclasses flattened).

    Args:
      config_cls: a dataclass whose docstring's ``Attributes:`` section documents every flagged field.
      flag_values: where to define them (a fresh ``flags.FlagValues()`` keeps the global FLAGS untouched).
      exclude: field names (at any nesting level) to leave out; the main maps them itself.
      prefix: prepended to every flag name.

    Returns:
      The defined flag names, in field order.

    Raises:
      TypeError: a field's annotation has no flag type (exclude it and map it in the main).
      ValueError: a field has no help text in the docstring.
    """
    names: list[str] = []
    _define_class(config_cls, flag_values, frozenset(exclude), prefix, {}, names)
    return names


def _define_class(config_cls: type, flag_values: flags.FlagValues, exclude: frozenset[str], prefix: str,
                  defaults: Mapping[str, Any], names: list[str]) -> None:
    docs = attribute_docs(config_cls)
    for field, annotation in _fields(config_cls):
        if field.name in exclude:
            continue
        help_text = docs.get(field.name)
        if not help_text:
            raise ValueError(f"{config_cls.__name__}.{field.name} has no entry in the docstring's Attributes section")
        kind, optional = _unwrap_optional(annotation)
        default = _default(field, defaults)
        name = _flag_name(field, prefix)
        if dataclasses.is_dataclass(kind):
            if optional:
                flags.DEFINE_bool(name, default is not None, help_text, flag_values=flag_values)
                names.append(name)
            nested = {} if default is None else {f.name: getattr(default, f.name) for f in dataclasses.fields(kind)}
            _define_class(kind, flag_values, exclude, prefix, nested, names)
            continue
        _define_one(name, kind, default, help_text, _options(field), flag_values, f"{config_cls.__name__}.{field.name}")
        names.append(name)


def _define_one(name: str, kind: Any, default: Any, help_text: str, options: Mapping[str, Any],
                flag_values: flags.FlagValues, where: str) -> None:
    if kind is str and options["choices"]:
        flags.DEFINE_enum(name, default, list(options["choices"]), help_text, flag_values=flag_values)
    elif kind in _SCALAR_DEFINES:
        _SCALAR_DEFINES[kind](name, default, help_text, flag_values=flag_values)
    elif typing.get_origin(kind) is typing.Literal and all(isinstance(v, str) for v in typing.get_args(kind)):
        flags.DEFINE_enum(name, default, list(typing.get_args(kind)), help_text, flag_values=flag_values)
    elif isinstance(kind, type) and issubclass(kind, enum.Enum):
        flags.DEFINE_enum_class(name, default, kind, help_text, flag_values=flag_values, case_sensitive=True)
    elif _tuple_item(kind):
        values = None if default is None else [str(v) for v in default]
        define = flags.DEFINE_multi_string if options["multi"] else flags.DEFINE_list
        define(name, values, help_text, flag_values=flag_values)
    else:
        raise TypeError(f"{where}: no flag type for {kind!r}; exclude the field and map it in the main")


def from_flags(config_cls: type, flag_values: flags.FlagValues = flags.FLAGS, *, prefix: str = "",
               **overrides: Any) -> Any:
    """Builds ``config_cls`` from flags that ``define_flags`` defined and absl parsed.

    Args:
      config_cls: the dataclass given to ``define_flags``.
      flag_values: the parsed flags.
      prefix: the prefix given to ``define_flags``.
      **overrides: top-level field values that win over the flags (excluded fields go here).

    Returns:
      The config. A field with no flag (excluded) and no override keeps its dataclass default.

    Raises:
      ValueError: a list flag's items do not convert to the field's type, or a fixed-length tuple got another
        number of items.
    """
    kwargs = dict(overrides)
    for field, annotation in _fields(config_cls):
        if field.name in kwargs:
            continue
        kind, optional = _unwrap_optional(annotation)
        name = _flag_name(field, prefix)
        if dataclasses.is_dataclass(kind):
            switch = flag_values[name].value if optional and name in flag_values else None
            if switch is False:
                kwargs[field.name] = None
            elif switch or _has_flags(kind, flag_values, prefix):  # else excluded: the default stays
                kwargs[field.name] = from_flags(kind, flag_values, prefix=prefix)
        elif name in flag_values:
            kwargs[field.name] = _convert(flag_values[name].value, kind, name)
    return config_cls(**kwargs)


def _has_flags(config_cls: type, flag_values: flags.FlagValues, prefix: str) -> bool:
    """Whether any field of ``config_cls`` (nested included) has a defined flag."""
    for field, annotation in _fields(config_cls):
        kind, _ = _unwrap_optional(annotation)
        if _flag_name(field, prefix) in flag_values or (
                dataclasses.is_dataclass(kind) and _has_flags(kind, flag_values, prefix)):
            return True
    return False


def _convert(value: Any, kind: Any, name: str) -> Any:
    """A parsed flag value as the field's type: list flags become typed tuples."""
    item = _tuple_item(kind)
    if item is None or value is None:
        return value
    item_type, length = item
    if length is not None and len(value) != length:
        raise ValueError(f"--{name} takes {length} comma-separated values, got {','.join(value)!r}")
    try:
        return tuple(item_type(v) for v in value)
    except ValueError as e:
        raise ValueError(f"--{name}: {e}") from e


def run_command(main: Callable, module: str, argv: list[str] | None = None,
                flags_parser: Callable | None = None) -> None:
    """``absl.app.run(main)`` for a command whose flags and docstring live in ``module`` (its ``cli``).

    ``python -m pkg`` runs ``pkg/__main__.py`` and ``voicegender NAME`` runs
    the dispatcher, neither of which defines the flags; absl's ``--help``
    shows the main module's docstring and the program's key flags, so both
    are pointed at ``module`` here.
    """
    import sys

    from absl import app

    program = (argv or sys.argv)[0]
    main_module = sys.modules.get("__main__")
    if main_module is not None:
        main_module.__doc__ = sys.modules[module].__doc__
    for flag in flags.FLAGS.get_key_flags_for_module(module):
        flags.FLAGS.register_key_flag_for_module(program, flag)
    app.run(main, argv=argv, **({"flags_parser": flags_parser} if flags_parser else {}))


def begin_command(argv: list[str]) -> None:
    """What a flags-only command (train, evaluate, export) checks first: no positional arguments, and
    absl's INFO chatter (TensorFlow's checkpoint and saver lines) off unless ``--verbosity`` is given.

    Raises:
      absl.app.UsageError: positional arguments.
    """
    from absl import app, logging

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
