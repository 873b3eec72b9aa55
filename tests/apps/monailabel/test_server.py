"""The app behind MONAI Label's real REST server on 127.0.0.1: label, train, infer and ask for the next image.

What a 3D Slicer or OHIF client does, over HTTP: ``PUT /datastore/label`` (class label files), ``POST /train/cxr``,
``POST /infer/cxr``, ``POST /activelearning/cxr_coverage``. The server is started and stopped by the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.monailabel
pytest.importorskip("monailabel", reason="monailabel not installed: run with the app's venv (docs/monailabel.md)")
httpx = pytest.importorskip("httpx")

CXR_CLASSES = ["normal", "pneumonia"]
START_TIMEOUT_S = 240
REQUEST_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(
    tmp_path: Path, app_copy: Path, cxr_encoder: Path, cxr_studies: tuple[Path, dict[str, int]]
) -> Iterator[tuple[str, dict[str, int], Path]]:
    """``monailabel start_server`` on a free local port; yields (base URL, true labels, model folder)."""
    studies, truth = cxr_studies
    port, model_dir, log = _free_port(), tmp_path / "model", tmp_path / "server.log"
    conf = {"models": "cxr", "cxr_encoder": str(cxr_encoder), "model_dir": str(model_dir)}
    cmd = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app_copy), "--studies", str(studies)]
    cmd += [a for k, v in conf.items() for a in ("--conf", k, v)] + ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/info/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not up after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield url, truth, model_dir
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the server and any training child it started
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def _infer(url: str, image: str, params: dict) -> dict:
    r = httpx.post(
        f"{url}/infer/cxr",
        params={"image": image, "output": "json"},
        data={"params": json.dumps(params)},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_rest_label_train_infer_and_next_image(server: tuple[str, dict[str, int], Path], tmp_path: Path) -> None:
    url, truth, model_dir = server
    info = httpx.get(f"{url}/info/", timeout=30).json()
    assert info["models"]["cxr"]["type"] == "classification" and "cxr_coverage" in info["strategies"]

    image = sorted(truth)[0]
    before = _infer(url, image, {"embedding": True})
    assert before["trained"] is False and set(before["probabilities"]) == set(CXR_CLASSES)
    assert len(before["embedding"]) == 512

    for image_id in sorted(truth)[1:9]:  # what a client uploads when an annotator picks a class
        name = CXR_CLASSES[truth[image_id]]
        r = httpx.put(
            f"{url}/datastore/label",
            params={"image": image_id, "tag": "final"},
            files={"label": (f"{image_id}.json", json.dumps({"label": name}), "application/json")},
            data={"params": json.dumps({"label": name})},
            timeout=30,
        )
        assert r.status_code == 200, r.text
    r = httpx.post(
        f"{url}/train/cxr",
        params={"run_sync": True},
        json={"max_epochs": 1, "min_steps": 4},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    assert (model_dir / "cxr" / "classifier.pt").is_file()

    after = _infer(url, image, {})
    assert after["trained"] is True and sum(after["probabilities"].values()) == pytest.approx(1.0)
    assert after["probabilities"]["pneumonia"] != pytest.approx(0.5, abs=1e-4)

    from monailabel.client import MONAILabelClient  # the client 3D Slicer's MONAI Label module bundles

    _, slicer_view = MONAILabelClient(url).infer("cxr", image, {})
    slicer_view = json.loads(slicer_view) if isinstance(slicer_view, bytes | str) else slicer_view  # JSON-only reply
    assert slicer_view["probabilities"] == pytest.approx(after["probabilities"])

    r = httpx.post(f"{url}/activelearning/cxr_coverage", json={"count": 5}, timeout=REQUEST_TIMEOUT_S)
    assert r.status_code == 200, r.text
    pick = r.json()
    labelled = set(sorted(truth)[1:9])
    assert pick["id"] in truth and pick["id"] not in labelled and pick["method"] == "coverage"
    assert len(pick["ranking"]) == 5 and not {p["id"] for p in pick["ranking"]} & labelled
