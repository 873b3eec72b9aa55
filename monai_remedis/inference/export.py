"""A fine-tuned ``classifier.pt`` as a MONAI bundle's ``models/model.pt`` (the state dict ``network_def`` loads).

MONAI's bundle tools look for the weights at ``<bundle_root>/models/model.pt``
(``python -m monai.bundle ckpt_export network_def --ckpt_file models/model.pt ...``, the ``CheckpointLoader`` of
``configs/inference.yaml``). The fine-tune stage calls :func:`export_bundle_model` when its ``export_model`` is set
(``model_file`` in ``base.yaml``: ``<output_dir>/models/model.pt``); for a ``classifier.pt`` of another run::

    python -c "from monai_remedis.inference import export_bundle_model as e; e('runs/a/finetune/classifier.pt', \
'runs/a/models/model.pt')"
"""

from __future__ import annotations

import logging
from pathlib import Path

from monai_remedis.backbones.weights import WeightsLoadError, read_state_dict
from monai_remedis.engines.runtime import atomic_torch_save

logger = logging.getLogger("monai_remedis")


def export_bundle_model(classifier_file: str | Path, model_file: str | Path) -> Path:
    """Write the classifier state dict at ``classifier_file`` to ``model_file`` (atomically), for ``network_def``.

    Args:
        classifier_file: a fine-tune stage's ``classifier.pt`` (state dict of
            :class:`monai_remedis.models.classifier.Classifier`: ``backbone.*``, ``feature_norm.*``, ``head.*``).
        model_file: where to write, usually ``<bundle_root>/models/model.pt``.

    Returns:
        ``model_file``.

    Raises:
        FileNotFoundError: ``classifier_file`` does not exist.
        WeightsLoadError: the file holds no classifier (e.g. a stage-1/2 ``backbone.pt`` without a head).
    """
    state = read_state_dict(classifier_file)
    prefixes = {key.split(".", 1)[0] for key in state}
    if not {"backbone", "head"} <= prefixes:
        raise WeightsLoadError(
            f"{classifier_file}: not a classifier state dict (top-level names {sorted(prefixes)}, need 'backbone' "
            "and 'head'): export the fine-tune stage's classifier.pt, not a stage-1/2 backbone.pt."
        )
    path = atomic_torch_save(state, model_file)
    logger.info("exported %s as the bundle model %s", classifier_file, path)
    return path
