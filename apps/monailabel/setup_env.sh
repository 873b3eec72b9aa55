#!/usr/bin/env bash
# Build the virtual environment the MONAI Label app runs in. monailabel stays out of the core install: it adds ~75
# packages to a core install and pins numpy to 1.26 (through pydicom-seg).
#
#   bash apps/monailabel/setup_env.sh [VENV]          # default VENV: <repo>/.venv/monailabel (git-ignored)
#   SYSTEM_SITE=1 bash apps/monailabel/setup_env.sh   # reuse the torch/monai already installed for the core project
#   PYTHON=python3.11 bash apps/monailabel/setup_env.sh
#
# Pins: monailabel 0.8.5 imports with dicomweb-client 0.59.3 and pynetdicom 2.0.2. pydicom is pinned to 3.0.2 (not the
# 2.4.5 monailabel is usually paired with) because monai-remedis reads DICOM with pydicom 3 (pydicom.pixels); the one
# pydicom-2 name monailabel's pydicom-seg imports is served by env/remedis_pydicom_compat.py, installed below.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${1:-$repo/.venv/monailabel}
python=${PYTHON:-python3}

echo "building $venv from $repo"
"$python" -m venv ${SYSTEM_SITE:+--system-site-packages} "$venv"
vpy="$venv/bin/python"
"$vpy" -m pip install -q --upgrade pip
"$vpy" -m pip install -q torch==2.14.1 torchvision==0.29.1
"$vpy" -m pip install -q -e "$repo"
"$vpy" -m pip install -q monailabel==0.8.5 pydicom==3.0.2 dicomweb-client==0.59.3 pynetdicom==2.0.2 \
    torch==2.14.1 torchvision==0.29.1 httpx pytest

site=$("$vpy" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cp "$here/env/remedis_pydicom_compat.py" "$site/"
echo "import remedis_pydicom_compat" > "$site/remedis_pydicom_compat.pth"

"$vpy" - <<'PY'
import importlib.metadata as md

import monai_remedis.data  # noqa: F401  (reads DICOM with pydicom 3)
import monailabel.app  # noqa: F401  (imports pydicom-seg through the compat shim)

print("ok:", ", ".join(f"{p} {md.version(p)}" for p in ("monailabel", "monai", "torch", "pydicom", "numpy")))
PY
echo "run the server:  $venv/bin/python -m monailabel.main start_server --app $here --studies <image folder> --conf models cxr ..."
