"""The MONAI Label app's tasks for REMEDIS bundles (imported beside ``main.py``, as MONAI Label apps do).

``configs`` (a config per modality bundle), ``runtime`` (the served model), ``finetune`` (the adapter to the bundle's
fine-tune stage), ``labels`` (class labels in the datastore) and ``selection`` (ranking rules) need no monailabel;
``infer``, ``train`` and ``strategy`` are the MONAI Label task classes built on them.
"""
