"""Errors a user reads: the cause as the last line, the full traceback in a log file (or with ``--debug``).

A failing bundle stage raises deep inside MONAI's config machinery, so the traceback is 60 lines of chained
exceptions ending in ``Failed to evaluate ConfigExpression``. :func:`report_error` prints instead::

    monai-remedis: full traceback in /tmp/monai-remedis-error-20261205T083000.log (rerun with --debug to print it)
    monai-remedis: while evaluating '$@finetune.run()'
    monai-remedis: error: InvalidInputError: image '/data/x.nii.gz' has 3 NaN/Inf value(s) ...

``monai-remedis run`` uses it directly (``--debug`` re-raises); ``python -m monai.bundle run`` gets the same through
:func:`install_excepthook` (``MONAI_REMEDIS_DEBUG=1`` prints the traceback before the summary).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO

DEBUG_ENV = "MONAI_REMEDIS_DEBUG"
_WRAPPER_PREFIXES = ("Failed to evaluate", "Failed to instantiate", "Component to instantiate must")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return chain


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of the chain: the one that says what went wrong (not MONAI's wrappers)."""
    chain = _chain(exc)
    for candidate in reversed(chain):
        if not str(candidate).startswith(_WRAPPER_PREFIXES):
            return candidate
    return chain[-1]


def _expression(exc: BaseException) -> str | None:
    """The config expression MONAI was evaluating, from its ``Failed to evaluate ConfigExpression`` wrapper."""
    for candidate in _chain(exc):
        text = str(candidate)
        if text.startswith("Failed to evaluate"):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if len(lines) < 2:
                return None
            return re.sub(r"__local_refs\[['\"]([^'\"]+)['\"]\]", r"@\1", lines[1]).strip("'\"")
    return None


def summary(exc: BaseException) -> str:
    """One line: the root cause's type and message (multi-line messages joined)."""
    cause = root_cause(exc)
    message = " ".join(line.strip() for line in str(cause).splitlines() if line.strip())
    return f"{type(cause).__name__}: {message}" if message else type(cause).__name__


def write_log(exc: BaseException, folder: str | Path | None = None) -> Path:
    """Write the full traceback of ``exc`` to a new log file and return its path."""
    folder = Path(folder or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"monai-remedis-error-{datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    path.write_text("".join(traceback.format_exception(exc)))
    return path


def report_error(
    exc: BaseException, stream: IO[str] | None = None, debug: bool = False, prog: str = "monai-remedis"
) -> int:
    """Print the short report of ``exc`` (log path, expression, cause last); returns exit status 1."""
    stream = stream or sys.stderr
    if debug:
        traceback.print_exception(exc, file=stream)
    else:
        print(
            f"{prog}: full traceback in {write_log(exc)} (rerun with --debug or {DEBUG_ENV}=1 to print it)", file=stream
        )
    expression = _expression(exc)
    if expression:  # MONAI shows references with its internal '::' separator; users write '#'
        expression = re.sub(r"@[\w:#]+", lambda ref: ref.group(0).replace("::", "#"), expression)
        print(f"{prog}: while evaluating '{expression}'", file=stream)
    print(f"{prog}: error: {summary(exc)}", file=stream, flush=True)
    return 1


def install_excepthook() -> None:
    """Make uncaught exceptions end with the cause (used when running as ``python -m monai.bundle``)."""
    previous: Callable = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, exc, tb)
            return
        report_error(exc.with_traceback(tb), debug=os.environ.get(DEBUG_ENV, "") not in ("", "0"))

    sys.excepthook = hook


def guard_bundle_cli(argv: list[str] | None = None) -> None:
    """Hooks for ``python -m monai.bundle run``: the short error report and the override-key check.

    An unknown override key exits at once (status 1) with the did-you-mean message, a ``None``/``null`` value with
    the ``'$None'`` form that works, a value of the wrong kind (``--amp false``) with the kind expected.
    """
    from monai_remedis.config_check import (
        NullOverrideError,
        OverrideValueError,
        UnknownOverrideError,
        check_bundle_argv,
    )

    install_excepthook()
    try:
        check_bundle_argv(sys.argv[1:] if argv is None else argv)
    except (UnknownOverrideError, NullOverrideError, OverrideValueError) as exc:
        print(f"monai-remedis: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except Exception:  # noqa: BLE001 - the check must never break a run it cannot parse
        return


def running_bundle_cli() -> bool:
    """True when this process is ``python -m monai.bundle ...``."""
    return bool(sys.argv) and sys.argv[0].replace("\\", "/").endswith("monai/bundle/__main__.py")
