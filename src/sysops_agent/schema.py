"""A small typed-config loader: TOML tables -> dataclasses, with every problem reported.

Each config section is a dataclass whose fields carry their default and, in
``metadata``, their constraints (``min``, ``max``, ``choices``), whether they
hold a secret (``secret=True``) and a one-line help text. :func:`build`
walks the raw TOML data against those dataclasses and collects a
:class:`Problem` for each unknown key, wrong type or out-of-range value —
all of them, not just the first — falling back to the default for each bad
value so that the caller can decide whether to refuse or carry on.

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Optional[T]``,
``List[T]``, ``Dict[str, T]`` and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, TypeVar, Union

T = TypeVar("T")

#: a ``<key>_file`` secret (a URL, a token, a password) is far smaller than this
MAX_SECRET_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, with the key path that holds it."""

    path: str
    message: str
    fatal: bool = False
    #: advice rather than an error (``check-config`` still exits 0): a rule that matches nothing
    warning: bool = False
    #: the file that holds the key, when it is not the main file (``include``)
    source: str = ""
    #: the current user lacks a permission (``config_checks.path_problems``): true for this user only
    permission: bool = False

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{self.source}: {text}" if self.source else text


def opt(
    default: Any = MISSING,
    *,
    factory: Optional[Callable[[], Any]] = None,
    min: Optional[float] = None,
    max: Optional[float] = None,
    choices: Optional[Tuple[Any, ...]] = None,
    secret: bool = False,
    help: str = "",
    validate: Optional[Callable[[Any], Optional[str]]] = None,
) -> Any:
    """Declare a config field with its default and constraints."""
    meta = {
        "min": min,
        "max": max,
        "choices": choices,
        "secret": secret,
        "help": help,
        "validate": validate,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union:
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in inner)
    if origin in (list, List):
        return f"a list of {_describe(args[0])}s"
    if origin in (dict, Dict):
        return f"a table of {_describe(args[1])}s"
    if is_dataclass(tp):
        return "a table"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(tp, str(tp))


def _fmt(value: Any, secret: bool = False) -> str:
    if secret:  # the value of a secret key is never echoed, even when it is malformed
        kind = {list: "list", dict: "table", int: "integer", float: "number", bool: "boolean"}
        name = kind.get(type(value), type(value).__name__)
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name} (value not shown: secret)"
    if type(value) is object:  # the sentinel of a list item or table entry: it is dropped
        return "nothing (the entry is dropped)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Builder:
    """Holds the problems found while building one configuration."""

    def __init__(self) -> None:
        self.problems: List[Problem] = []
        #: paths of every field declared ``secret`` that holds a non-empty value
        self.secret_values: Dict[str, str] = {}
        #: the secrets among them read from a ``<key>_file`` (not written in the config)
        self.secret_files: Dict[str, str] = {}

    def problem(self, path: str, message: str, fatal: bool = False) -> None:
        self.problems.append(Problem(path, message, fatal))

    def build(self, cls: Type[T], data: Any, path: str, base: Optional[T] = None) -> T:
        """Build a dataclass ``cls`` from ``data``; ``base`` supplies defaults if given."""
        if not isinstance(data, dict):
            self.problem(path, f"expected a table, got {_fmt(data)}")
            data = {}
        hints = typing.get_type_hints(cls)
        kwargs: Dict[str, Any] = {}
        known = set()
        for f in fields(cls):  # type: ignore[arg-type]
            if not f.init:
                continue
            known.add(f.name)
            fpath = f"{path}.{f.name}" if path else f.name
            if base is not None:
                default = getattr(base, f.name)
            elif f.default is not MISSING:
                default = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:  # pragma: no cover - every config field has a default
                raise TypeError(f"{cls.__name__}.{f.name} has no default")
            file_key = f"{f.name}_file"
            # a section that declares ``<key>_file`` itself reads that file its own way
            from_file = (
                f.metadata.get("secret")
                and hints[f.name] is str
                and file_key in data
                and file_key not in hints
            )
            if from_file:
                known.add(file_key)
            if from_file and f.name in data:
                self.problem(
                    fpath, f"give either {f.name} or {file_key}, not both; using {file_key}"
                )
            if from_file:
                value = self._secret_file(data[file_key], f"{fpath}_file", default)
                if value:
                    self.secret_files[fpath] = data[file_key]
            elif f.name in data:
                value = self.convert(hints[f.name], data[f.name], fpath, default, f.metadata)
            else:
                value = default
            if f.metadata.get("secret"):
                if isinstance(value, str) and value:
                    self.secret_values[fpath] = value
                elif isinstance(value, dict):
                    for k, v in value.items():
                        if isinstance(v, str) and v:
                            self.secret_values[f"{fpath}.{k}"] = v
            kwargs[f.name] = value
        for key in data:
            if key not in known:
                kpath = f"{path}.{key}" if path else key
                self.problem(kpath, f"unknown key (known keys here: {', '.join(sorted(known))})")
        return cls(**kwargs)

    def _secret_file(self, file: Any, path: str, default: str) -> str:
        """The secret held by ``file`` (``<key>_file``: Prometheus' and Alertmanager's form).

        The whole file, without its trailing newline. A file other users can
        read is refused like a literal secret in a readable config; a systemd
        credential (``${CREDENTIALS_DIRECTORY}/NAME``) is private to the unit.
        """
        import os
        import stat

        if not isinstance(file, str) or not file or "\x00" in file:
            self.problem(path, f"expected the path of a file holding the secret, got {_fmt(file)}")
            return default
        try:
            with open(file, "rb") as f:
                mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
                data = f.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as e:
            self.problem(path, f"cannot read {file}: {e.strerror or e}", fatal=True)
            return default
        if len(data) > MAX_SECRET_FILE_BYTES:
            self.problem(path, f"{file} is over {MAX_SECRET_FILE_BYTES} bytes: not a secret")
            return default
        if mode & 0o007:
            self.problem(
                path,
                f"{file} holds a secret but is mode {mode:04o}, readable by every user. "
                f"Fix it with: chmod o-rwx {file}",
                fatal=True,
            )
            return default
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(path, f"{file} is not UTF-8 text")
            return default
        return text.rstrip("\r\n")

    def convert(self, tp: Any, value: Any, path: str, default: Any, meta: Any = None) -> Any:
        meta = meta or {}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is Union:
            inner = [a for a in args if a is not type(None)]
            if len(inner) == 1:
                return self.convert(inner[0], value, path, default, meta)
            raise TypeError(f"unsupported union {tp}")  # pragma: no cover
        if origin in (list, List):
            if not isinstance(value, list):
                self.problem(
                    path,
                    f"expected {_describe(tp)}, got {_fmt(value, meta.get('secret', False))}; "
                    "using the default",
                )
                return default
            out = []
            for i, item in enumerate(value):
                sentinel = object()
                conv = self.convert(args[0], item, f"{path}[{i}]", sentinel, meta)
                if conv is not sentinel:
                    out.append(conv)
            return out
        if origin in (dict, Dict):
            if not isinstance(value, dict):
                self.problem(
                    path,
                    f"expected {_describe(tp)}, got {_fmt(value, meta.get('secret', False))}; "
                    "using the default",
                )
                return default
            result = {}
            base_map = default if isinstance(default, dict) else {}
            for k, item in value.items():
                sentinel = object()
                item_default = base_map.get(k, sentinel)
                item_cls: Any = args[1]
                if is_dataclass(item_cls):
                    base = item_default if item_default is not sentinel else None
                    result[k] = self.build(item_cls, item, f"{path}.{k}", base)  # type: ignore[arg-type]
                else:
                    conv = self.convert(args[1], item, f"{path}.{k}", item_default, meta)
                    if conv is not sentinel:
                        result[k] = conv
            merged = dict(base_map)
            merged.update(result)
            return merged
        if is_dataclass(tp):
            return self.build(tp, value, path, default if is_dataclass(default) else None)  # type: ignore[arg-type,unused-ignore]
        return self._scalar(tp, value, path, default, meta)

    def _scalar(self, tp: Any, value: Any, path: str, default: Any, meta: Any) -> Any:
        ok: bool
        raw = value
        if tp is bool:
            ok = isinstance(value, bool)
        elif tp is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif tp is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                try:
                    value = float(value)
                except OverflowError:  # an integer of 400 digits
                    value = math.inf
                if not math.isfinite(value):
                    ok = False
        elif tp is str:
            ok = isinstance(value, str)
        else:  # pragma: no cover - schema error, not user error
            raise TypeError(f"unsupported config type {tp}")
        if not ok:
            self.problem(
                path,
                f"expected {_describe(tp)}, got {_fmt(raw, meta.get('secret', False))}; "
                f"using the default {_fmt(default)}",
            )
            return default
        lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
        if lo is not None and value < lo:
            self.problem(
                path, f"{_fmt(raw)} is below the minimum {lo}; using the default {_fmt(default)}"
            )
            return default
        if hi is not None and value > hi:
            self.problem(
                path, f"{_fmt(raw)} is above the maximum {hi}; using the default {_fmt(default)}"
            )
            return default
        if choices is not None and value not in choices:
            expected = ", ".join(repr(c) for c in choices)
            self.problem(
                path, f"{_fmt(raw)} is not one of {expected}; using the default {_fmt(default)}"
            )
            return default
        check = meta.get("validate")
        if check is not None:
            err = check(value)
            if err:
                self.problem(path, f"{err}; using the default {_fmt(default)}")
                return default
        return value
