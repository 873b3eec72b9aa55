"""Let pydicom-seg 0.4.1 (a monailabel 0.8.5 dependency) import under pydicom 3, which monai-remedis needs.

pydicom-seg imports ``SegmentationStorage`` from ``pydicom._storage_sopclass_uids``, a private pydicom 2 module that
pydicom 3 replaced by public names in ``pydicom.uid``. monai-remedis reads DICOM with ``pydicom.pixels`` (pydicom 3),
and monailabel imports pydicom-seg at start-up (for DICOM SEG output, which classification never writes). This finder
serves the old module name from ``pydicom.uid`` only when pydicom itself has no such module; nothing is imported
until someone asks for it. ``setup_env.sh`` installs it into the app's venv with a ``.pth`` line.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

OLD_NAME = "pydicom._storage_sopclass_uids"


class _SopClassUidsLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        import pydicom.uid

        for name in dir(pydicom.uid):
            if name.endswith("Storage") or name.endswith("Model"):
                setattr(module, name, getattr(pydicom.uid, name))


class _SopClassUidsFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201
        if fullname != OLD_NAME:
            return None
        for finder in sys.meta_path:  # pydicom 2 still ships the module: use it
            if finder is not self and finder.find_spec(fullname, path, target) is not None:  # type: ignore[call-arg]
                return None
        return importlib.util.spec_from_loader(fullname, _SopClassUidsLoader())


if not any(isinstance(f, _SopClassUidsFinder) for f in sys.meta_path):
    sys.meta_path.append(_SopClassUidsFinder())
