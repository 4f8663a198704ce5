"""Plugins: each collector, analyzer, channel and log source is one module plus one registry line.

A plugin module holds three things (STYLE.md, "A plugin is one module"):

* its **config class**: a frozen dataclass of ``schema.opt`` fields (defaults,
  validation, the help text the reference shows), and optionally a
  ``problems(path) -> List[Problem]`` method for checks across its fields;
* its **factory**: builds the plugin from *its own section* (never the whole
  configuration) plus whatever its kind's context carries;
* its code.

Each package keeps a registry: one tuple of :class:`Plugin` entries, in the
order the plugins run. The configuration's section classes (``[collector]``,
``[analyzer]``, ``[alerting]``, ``[collector.log]``'s sources) are *derived*
from these tuples by :func:`sections_class`, so the schema, ``check-config``
and the "enabled" logic cannot disagree with what the registry builds, and a
new plugin needs no edit anywhere else.

This module is the bottom layer: it imports nothing of the agent but
:mod:`sysops_agent.schema`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Generic, List, Optional, Sequence, Tuple, Type, TypeVar

from sysops_agent.schema import Problem, opt

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass(frozen=True)
class Plugin(Generic[F]):
    """One registry entry: the name (the config section's key), its config class, its factory."""

    name: str
    config_cls: Type[Any]
    create: F

    def default_config(self) -> Any:
        return self.config_cls()


def sections_class(
    class_name: str,
    plugins: Sequence[Plugin[Any]],
    *,
    extra: Sequence[Tuple[str, Any, Any]] = (),
    base: Optional[Type[Any]] = None,
    doc: str = "",
    module: str = __name__,
) -> Type[Any]:
    """A frozen dataclass with one field per plugin (its config class), after ``extra`` fields.

    ``extra`` are ``(name, type, opt(...))`` fields that belong to the table
    itself rather than to one plugin (``[alerting] dedup_window_secs``). A
    ``base`` (a frozen dataclass) gives the table its own keys and methods
    instead: the derived class is a subclass, so it is still a ``base``.
    """
    names = [name for name, _tp, _field in extra] + [p.name for p in plugins]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:  # pragma: no cover - a registry bug, caught by the import of the registry
        raise ValueError(f"{class_name}: duplicate section names {sorted(duplicates)}")
    spec: List[Tuple[str, Any, Any]] = list(extra)
    for p in plugins:
        spec.append((p.name, p.config_cls, opt(factory=p.config_cls)))
    bases = (base,) if base is not None else ()
    cls = dataclasses.make_dataclass(class_name, spec, bases=bases, frozen=True)
    cls.__doc__ = doc or f"Sections of {class_name}, one per registered plugin."
    cls.__module__ = module
    return cls


def section(sections: Any, name: str, cls: Type[T]) -> T:
    """The section ``name`` of a derived sections object, typed as ``cls`` (checked)."""
    value = getattr(sections, name)
    if not isinstance(value, cls):  # pragma: no cover - a wiring bug
        raise TypeError(f"section {name!r} is a {type(value).__name__}, not a {cls.__name__}")
    return value


def is_enabled(section_config: Any) -> bool:
    """A section without an ``enabled`` key is always on."""
    return bool(getattr(section_config, "enabled", True))


def section_problems(plugins: Sequence[Plugin[Any]], sections: Any, prefix: str) -> List[Problem]:
    """Every plugin section's own cross-field checks (``problems(path)``), for enabled sections."""
    out: List[Problem] = []
    for p in plugins:
        value = getattr(sections, p.name)
        check = getattr(value, "problems", None)
        if check is not None and is_enabled(value):
            out.extend(check(f"{prefix}.{p.name}"))
    return out


def fields_of(cls: Type[Any]) -> List[Tuple[str, Any, Any]]:
    """``cls``'s fields as ``extra`` entries for :func:`sections_class` (same defaults and checks)."""
    import typing

    hints = typing.get_type_hints(cls)
    out: List[Tuple[str, Any, Any]] = []
    for f in dataclasses.fields(cls):
        copy: Any
        if f.default_factory is not dataclasses.MISSING:
            copy = dataclasses.field(default_factory=f.default_factory, metadata=f.metadata)
        else:
            copy = dataclasses.field(default=f.default, metadata=f.metadata)
        out.append((f.name, hints[f.name], copy))
    return out


def project(obj: Any, cls: Type[T]) -> T:
    """The ``cls`` part of a derived sections object (the fields that ``fields_of(cls)`` added)."""
    return cls(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
