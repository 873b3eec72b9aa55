"""What the stages that made each sweep init said about its backbone, for the report's section on the inits.

Stage 1 and the SSL stage write ``metrics.json`` beside the ``backbone.pt`` they export: the frozen backbone's
representation diagnostics on validation data and, for SSL, the probe's change from its init, the collapse
monitor's warning and the probe-drop warning. The evaluate stage reads them back for each init of its sweep, so
``report.md`` shows whether SSL left a usable backbone next to the fine-tuning results. A ``metrics.json`` is used
only when the SHA-256 it records is the checkpoint's: one left by an earlier run in the same folder describes another
backbone and is reported as such, never shown as this one's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_remedis.engines.fingerprint import file_digest

HEALTH_KEYS = ("representation", "representation_init", "representation_change", "collapse_recovered")
WARNING_KEYS = ("collapse_warning", "representation_warning")


def init_backbone_health(inits: Mapping[str, str | Path | None]) -> dict[str, dict[str, Any]]:
    """``{init: record}`` for every sweep init, from the ``metrics.json`` beside its checkpoint.

    Args:
        inits: the sweep's ``{name: backbone checkpoint or None}`` (None: random init).

    Returns:
        per init ``{"checkpoint", "note"}`` when nothing can be shown (random init, no or unreadable metrics, a
        metrics file of another backbone), else ``{"checkpoint", "stage", "representation", ...}`` with the keys of
        :data:`HEALTH_KEYS` and :data:`WARNING_KEYS` the stage wrote (``stage``: ``"ssl"`` when the file holds
        the SSL stage's comparison with its init).
    """
    return {name: _record(checkpoint) for name, checkpoint in inits.items()}


def _record(checkpoint: str | Path | None) -> dict[str, Any]:
    if not checkpoint:
        return {"checkpoint": None, "note": "random init"}
    path = Path(checkpoint)
    metrics_path = path.parent / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text())
    except FileNotFoundError:
        return {"checkpoint": str(path), "note": f"no metrics.json beside {path.name}"}
    except (OSError, json.JSONDecodeError) as err:
        return {"checkpoint": str(path), "note": f"{metrics_path} is unreadable ({type(err).__name__})"}
    recorded = metrics.get("backbone_sha256")
    if recorded is None:
        return {"checkpoint": str(path), "note": f"{metrics_path} records no backbone_sha256 (written by an older run)"}
    if recorded != file_digest(path):
        return {"checkpoint": str(path), "note": f"{metrics_path} describes another backbone (its sha256 differs)"}
    record: dict[str, Any] = {
        "checkpoint": str(path),
        "stage": "ssl" if "collapse_warning" in metrics else "pretrain",
    }
    record.update({k: metrics[k] for k in (*HEALTH_KEYS, *WARNING_KEYS) if k in metrics})
    return record
