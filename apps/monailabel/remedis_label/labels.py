"""Class labels in a MONAI Label datastore: one small label file per image, tag ``final``.

MONAI Label keeps one label object per image and tag (``labels/final/<image id><ext>`` in a local datastore, plus the
label info in ``datastore_v2.json``). For classification the label object is a JSON file ``{"label": "pneumonia"}``
(a class name or index; ``.txt`` with the bare name or index works too), saved like any label:

    curl -X PUT "http://127.0.0.1:8000/datastore/label?image=<image id>&tag=final" \\
         -F "label=@pneumonia.json" -F 'params={"label": "pneumonia"}'

The ``label`` key of the label info (``params`` above) is read when the file holds no class (e.g. a client that can
only upload images).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

LABEL_TAG = "final"
"""MONAI Label's tag for labels a person approved; training reads only these."""


class LabelError(ValueError):
    """A datastore label that names no known class (the message names the image and the classes)."""


def class_index(value: Any, class_names: Sequence[str]) -> int:
    """The class index of ``value``: an index (int or digit string) or a class name (case-insensitive).

    Raises:
        LabelError: listing the class names when ``value`` is neither.
    """
    names = [str(n).lower() for n in class_names]
    text = str(value).strip()
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    if text.lower() in names:
        return names.index(text.lower())
    raise LabelError(
        f"label '{value}' is not a class: use an index 0-{len(names) - 1} or one of {', '.join(class_names)}."
    )


def read_label_value(path: str | Path) -> Any | None:
    """The class stored in a label file (``.json`` ``{"label": ...}`` or ``.txt``); None for other files."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        return data.get("label", data.get("class")) if isinstance(data, Mapping) else data
    if path.suffix.lower() == ".txt":
        return path.read_text().strip() or None
    return None


def write_label_file(path: str | Path, class_name: str) -> Path:
    """Write the label file a client uploads for one image: ``{"label": class_name}``."""
    path = Path(path)
    path.write_text(json.dumps({"label": class_name}))
    return path


def labelled_items(datastore: Any, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Training items ``{"image", "label": index, "id"}`` of every image with a ``final`` label.

    Args:
        datastore: a MONAI Label ``Datastore`` (``datalist()`` pairs each labelled image with its label file).
        class_names: the bundle's classes (``channel_def``), in index order.

    Raises:
        LabelError: naming the image whose label is no class.
    """
    ids = image_ids_by_path(datastore)
    items = []
    for entry in datastore.datalist():
        image_id = ids.get(str(Path(entry["image"]).resolve()), Path(entry["image"]).name)
        value = read_label_value(entry["label"])
        if value is None:
            value = (datastore.get_label_info(image_id, LABEL_TAG) or {}).get("label")
        if value is None:
            raise LabelError(f"label of '{entry['image']}' holds no class (a JSON {{\"label\": name}} file).")
        try:
            label = class_index(value, class_names)
        except LabelError as exc:
            raise LabelError(f"{entry['image']}: {exc}") from exc
        items.append({"image": entry["image"], "label": label, "id": image_id})
    return items


def image_ids_by_path(datastore: Any) -> dict[str, str]:
    """Resolved image path -> datastore image id, for every image in ``datastore``."""
    return {str(Path(datastore.get_image_uri(i)).resolve()): i for i in datastore.list_images()}
