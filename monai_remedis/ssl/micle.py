"""MICLe: multi-instance contrastive learning, positives from two images of the same patient.

Reference: Azizi et al., "Big Self-Supervised Models Advance Medical Image Classification", ICCV 2021;
REMEDIS (Azizi et al., Nat. Biomed. Eng. 2023) uses MICLe for dermatology, where patients have several images.
"""

from __future__ import annotations

from monai_remedis.ssl.simclr import SimCLR


class MICLe(SimCLR):
    """MICLe strategy: SimCLR's NT-Xent on views that may come from two different images of one patient.

    The pairing happens in the data: :class:`monai_remedis.data.MultiInstanceDataset` decodes every image once
    and makes ``view_0`` from the item's image and ``view_1`` from another image of the same patient when the
    datalist has ``patient_id`` and the patient has more than one image; otherwise both views come from the same
    image and MICLe is exactly SimCLR. Enable it in a bundle with the ``micle.yaml`` overlay.

    Args:
        backbone: encoder with ``feature_dim``.
        temperature: NT-Xent temperature (0.1, as REMEDIS).
        projection_dim: output dimension of the projection head (128).
        hidden_dim: hidden width of the head (defaults to the backbone's feature dimension).
        gather_distributed: gather negatives across ranks under DDP.

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> model = MICLe(create_backbone("bit_resnet18", in_channels=1))
        >>> image_a, image_b = torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)  # two images per patient
        >>> model([image_a, image_b])["loss"].backward()
    """
