"""``python -m monai_remedis``: see :mod:`monai_remedis.cli`."""

from __future__ import annotations

import sys

from monai_remedis.cli import main

sys.exit(main())
