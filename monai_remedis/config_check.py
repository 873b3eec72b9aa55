"""Override keys checked against the bundle config, with a did-you-mean.

MONAI's bundle runner adds any unknown ``--key value`` to the config as a new, unused key, so ``--max_epoch 1``
(for ``max_epochs``) trains the default number of epochs without a word. :func:`check_override_keys` refuses such a
key and suggests the nearest config keys; ``monai-remedis run`` and, through the hook in
:func:`check_bundle_argv`, ``python -m monai.bundle run`` call it before anything is built.

A key that this stage's files lack but a sibling config file of the bundle defines (``--ssl_epochs`` given to the
``pretrain`` stage, as one command line reused for every stage) is accepted: it is a real setting, just not used
by this stage.

Nested keys (``--datalist#train``, ``--finetune_optim#max_epochs``) are checked level by level.

A value of the wrong kind for a key whose default is a plain number or boolean is refused too
(:func:`check_override_values`): ``--max_epochs three`` would fail deep inside a stage with "invalid literal for
int()", and ``--amp false`` on ``python -m monai.bundle run`` would pass the string ``'false'``, which Python reads
as true, so AMP would silently turn on (``monai-remedis run`` reads ``true``/``false`` as booleans itself).

``python -m monai.bundle run`` cannot set a key to None: fire turns ``None`` into Python's None, which MONAI drops
(the default stays, silently), and ``null`` into the string ``'null'``. :func:`check_bundle_argv` refuses both with
the form that works, ``'$None'`` (``monai-remedis run`` maps ``None``/``null`` to it itself).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

RUN_ARGUMENTS = frozenset(
    {"run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file"}
)
"""Keyword arguments of ``monai.bundle.run`` itself: not config keys."""
TRACKING_KEYS = frozenset(
    {"tracking_uri", "experiment_name", "run_name", "save_execute_config", "is_not_rank0", "output_dir"}
)
"""Keys ``--tracking mlflow`` adds to the config (MONAI's ``DEFAULT_MLFLOW_SETTINGS``): set them with it."""


NULL_VALUES = frozenset({"None", "null"})
"""Override values ``python -m monai.bundle run`` cannot pass as None (dropped, or kept as a string)."""


class NullOverrideError(ValueError):
    """``--key None``/``--key null`` on ``python -m monai.bundle run``; the message gives the ``'$None'`` form."""


class OverrideValueError(ValueError):
    """An override's value is not of the kind its key's default is (a number, an integer, True/False)."""


class UnknownOverrideError(KeyError):
    """An override names no key of the config; the message suggests the nearest keys."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the message as written
        return str(self.args[0])


def _suggest(key: str, known: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(key, list(dict.fromkeys(str(k) for k in known)), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(f'--{prefix}{c}' for c in close)}?" if close else ""


def _unknown_path(key: str, config: Mapping[str, Any], siblings: Iterable[str] = ()) -> tuple[str, str] | None:
    """``(path so far, suggestion)`` when ``key`` (``a#b#c``) does not exist in ``config``, else None."""
    node: Any = config
    parts = key.split("#")
    for depth, part in enumerate(parts):
        found, child = _child(node, part)
        if not found:
            prefix = "#".join(parts[:depth])
            if isinstance(node, Mapping):
                known = [*node, *siblings] if depth == 0 else node
                hint = _suggest(part, known, f"{prefix}#" if prefix else "")
            elif isinstance(node, list):
                hint = f" '{prefix}' is a list of {len(node)} entries."
            else:
                hint = f" '{prefix}' is a value, not a section."
            return "#".join(parts[: depth + 1]), hint
        node = child
    return None


def _child(node: Any, part: str) -> tuple[bool, Any]:
    """``(True, node[part])`` for a section's key or a list's index (``-1`` too), else ``(False, None)``."""
    if isinstance(node, Mapping) and part in node:
        return True, node[part]
    if isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
        return True, node[int(part)]
    return False, None


def check_override_keys(
    overrides: Iterable[str],
    config: Mapping[str, Any],
    files: Sequence[str] = (),
    sibling_keys: Iterable[str] = (),
) -> None:
    """Refuse override keys the config does not have.

    Args:
        overrides: the override keys (``max_epochs``, ``finetune_optim#max_epochs``).
        config: the merged config the overrides apply to.
        files: the config files, named in the message.
        sibling_keys: top-level keys of the bundle's other config files (accepted, unused by this stage).

    Raises:
        UnknownOverrideError: naming the first unknown key, the files, and the closest known keys.
    """
    siblings = set(sibling_keys)
    for key in overrides:
        if key in RUN_ARGUMENTS or key.startswith("_meta_") or key in TRACKING_KEYS:
            continue
        if key.split("#", 1)[0] not in config and key.split("#", 1)[0] in siblings:
            continue
        unknown = _unknown_path(key, config, siblings)
        if unknown is not None:
            where = f" in {', '.join(files)}" if files else ""
            raise UnknownOverrideError(
                f"unknown override --{key}: the config has no key '{unknown[0]}'{where}.{unknown[1]} "
                "An unknown key would be added to the config and silently ignored."
            )


EXPRESSION_PREFIXES = ("$", "@", "%")
"""Override values that MONAI evaluates or references: their kind is known only once resolved."""


def _default_of(key: str, config: Mapping[str, Any]) -> Any:
    """The raw default of ``key`` (``a#b``) in ``config``, or None when there is none."""
    node: Any = config
    for part in key.split("#"):
        found, node = _child(node, part)
        if not found:
            return None
    return node


def _expected_kind(default: Any) -> tuple[str, tuple[type, ...]] | None:
    """What an override of a key with this default must be: a description and the accepted types."""
    if isinstance(default, bool):
        return "True or False", (bool,)
    if isinstance(default, int):
        return "an integer", (int,)
    if isinstance(default, float):
        return "a number", (int, float)
    return None  # strings, lists, sections, expressions: not checked


def check_override_values(overrides: Mapping[str, Any], config: Mapping[str, Any], files: Sequence[str] = ()) -> None:
    """Refuse an override whose value is not of the kind of its key's default.

    Only keys whose default is a plain boolean, integer or number are checked, and values that are expressions
    (``$...``, ``@...``) are left to MONAI.

    Args:
        overrides: override key -> value as parsed (``3``, ``'three'``, ``False``, ``'false'``).
        config: the merged raw config the overrides apply to.
        files: the config files, named in the message.

    Raises:
        OverrideValueError: naming the key, the value given, the kind expected and the default.
    """
    for key, value in overrides.items():
        if key in RUN_ARGUMENTS or key in TRACKING_KEYS or key.startswith("_meta_"):
            continue
        if isinstance(value, str) and value.startswith(EXPRESSION_PREFIXES):
            continue
        default = _default_of(key, config)
        expected = _expected_kind(default)
        if expected is None:
            continue
        description, types = expected
        if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
            continue
        where = f" (in {', '.join(files)})" if files else ""
        hint = " (As a string it would read as true.)" if bool in types and isinstance(value, str) else ""
        raise OverrideValueError(
            f"--{key} {value!r}: expected {description}, like its default {default!r}{where}.{hint}"
        )


def merged_config(files: Sequence[str]) -> dict[str, Any]:
    """The raw (unresolved) config of ``files`` merged as ``monai.bundle`` merges them."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(list(files))
    return parser.get()


def sibling_keys(files: Sequence[str]) -> set[str]:
    """Top-level keys of every YAML/JSON config in the folders of ``files`` (the bundle's other stages)."""
    from monai.bundle import ConfigParser

    keys: set[str] = set()
    for folder in {Path(f).parent for f in files}:
        for path in sorted(folder.glob("*")):
            if path.suffix in (".yaml", ".yml", ".json") and path.name != "metadata.json":
                try:
                    content = ConfigParser.load_config_file(str(path))
                except Exception:  # noqa: BLE001,S112 - an unreadable sibling only narrows what is accepted
                    continue
                if isinstance(content, Mapping):
                    keys.update(str(k) for k in content)
    return keys


def _argv_overrides(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``({override key: value as typed}, config files)`` of a ``python -m monai.bundle run ...`` command line."""
    overrides, files = {}, []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--"):
            key, eq, value = token[2:].partition("=")
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            if key == "config_file":
                files = _file_list(value)
            else:
                overrides[key] = value
        i += 1
    return overrides, files


def _file_list(value: str) -> list[str]:
    import ast

    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = [v.strip(" '\"") for v in value.strip("[]").split(",")] if value.startswith("[") else value
    return [str(f) for f in parsed] if isinstance(parsed, (list, tuple)) else [str(parsed)]


def check_bundle_argv(argv: Sequence[str]) -> None:
    """Check the overrides of ``python -m monai.bundle run`` (``argv`` without the program name).

    Raises:
        NullOverrideError: a value is ``None`` or ``null`` (MONAI would drop it or pass the string).
        UnknownOverrideError: as :func:`check_override_keys`.
        OverrideValueError: as :func:`check_override_values`.
    """
    if not argv or argv[0] != "run":
        return
    overrides, files = _argv_overrides(argv[1:])
    nulls = [key for key, value in overrides.items() if value in NULL_VALUES and key not in RUN_ARGUMENTS]
    if nulls:
        given = ", ".join(f"--{k} {overrides[k]}" for k in nulls)
        fixed = " ".join(f"--{k} '$None'" for k in nulls)
        raise NullOverrideError(
            f"{given}: python -m monai.bundle run drops None and passes null as the string 'null'; write {fixed} "
            "(monai-remedis run accepts None and null)."
        )
    keys = list(overrides)
    if keys and files:
        config = merged_config(files)
        check_override_keys(keys, config, files, sibling_keys(files))
        from fire.parser import DefaultParseValue  # the values as monai.bundle's fire will pass them

        check_override_values({k: DefaultParseValue(v) for k, v in overrides.items()}, config, files)
