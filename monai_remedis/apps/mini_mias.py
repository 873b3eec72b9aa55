"""mini-MIAS (Mammographic Image Analysis Society): the database's naming convention for patients.

The database numbers the left and right mammograms of each woman consecutively (mdb001/mdb002, mdb003/mdb004,
...); :func:`mini_mias_patient_id` maps a reference or file name to that pair, so that a patient-level split keeps
both breasts of a woman together (``patient_from: mini-mias`` in the mammography bundle and the ``datalist`` CLI).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["mini_mias_patient_id"]

_MIAS_REF = re.compile(r"mdb(\d{3})", re.IGNORECASE)


def mini_mias_patient_id(ref_or_path: str | Path) -> str:
    """Patient (woman) of a mini-MIAS image: ``mdb001``/``mdb002`` -> ``"mdb001-002"``.

    Args:
        ref_or_path: a reference (``"mdb023"``) or any file name/path containing one
            (``".../benign/mdb001.png"``, ``"mdb001_benign.pgm"``).

    Returns:
        ``"mdbNNN-MMM"`` with NNN odd and MMM = NNN + 1.

    Raises:
        ValueError: no ``mdbNNN`` reference in the name, or number 0.
    """
    match = _MIAS_REF.search(Path(str(ref_or_path)).name) or _MIAS_REF.search(str(ref_or_path))
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"not a mini-MIAS reference (mdbNNN, NNN >= 1): {ref_or_path!r}")
    first = 2 * ((int(match.group(1)) + 1) // 2) - 1
    return f"mdb{first:03d}-{first + 1:03d}"
