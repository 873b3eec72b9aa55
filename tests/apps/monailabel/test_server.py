"""The app behind MONAI Label's real REST server on 127.0.0.1: label, train, infer and ask for the next image.

What a 3D Slicer or OHIF client does, over HTTP: ``PUT /datastore/label`` (class label files), ``POST /train/cxr``
(training in a server subprocess, polled through ``GET /train/``), ``POST /infer/cxr``, ``POST /activelearning/...``.
The server is started and stopped by the test; every answer is checked against what the served model computes.
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

import numpy as np
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


def _check_prediction(result: dict) -> np.ndarray:
    """Probabilities of both classes in [0, 1], summing to 1, the prediction their argmax; returns them."""
    assert list(result["probabilities"]) == CXR_CLASSES, result
    probs = np.array([result["probabilities"][c] for c in CXR_CLASSES])
    assert np.all((probs >= 0) & (probs <= 1)) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert result["prediction"] == CXR_CLASSES[int(probs.argmax())]
    return probs


def _unit_embedding(url: str, image: str) -> np.ndarray:
    """The served backbone's features of one image through the REST infer endpoint, scaled to unit length."""
    features = np.array(_infer(url, image, {"embedding": True})["embedding"], dtype=np.float64)
    assert features.shape == (512,) and np.all(np.isfinite(features)) and features.std() > 0
    return features / np.linalg.norm(features)


def _train_in_background(url: str, params: dict) -> dict:
    """``POST /train/cxr`` as 3D Slicer's Train button does (a server subprocess), polled until it ends."""
    r = httpx.post(f"{url}/train/cxr", json=params, timeout=60)
    assert r.status_code == 200, r.text
    task_id = r.json()["id"]
    deadline = time.monotonic() + REQUEST_TIMEOUT_S
    while time.monotonic() < deadline:
        task = httpx.get(f"{url}/train/", timeout=30).json()
        assert task["id"] == task_id, task
        if task["status"] not in ("SUBMITTED", "RUNNING"):
            assert task["status"] == "DONE", "\n".join(task.get("details", []))
            return task
        time.sleep(2)
    pytest.fail(f"training not done after {REQUEST_TIMEOUT_S} s")


def test_rest_label_train_infer_and_next_image(server: tuple[str, dict[str, int], Path]) -> None:
    url, truth, model_dir = server
    info = httpx.get(f"{url}/info/", timeout=30).json()
    assert info["models"]["cxr"]["type"] == "classification"
    assert info["models"]["cxr"]["labels"] == {"normal": 0, "pneumonia": 1} and "cxr" in info["trainers"]
    assert {"cxr_coverage", "cxr_uncertainty"} <= set(info["strategies"])
    stats = httpx.get(f"{url}/datastore/", params={"output": "stats"}, timeout=30).json()
    assert (stats["total"], stats["completed"]) == (len(truth), 0)

    r = httpx.post(f"{url}/infer/cxr", params={"image": "not_in_the_datastore", "output": "json"}, timeout=60)
    assert r.status_code != 200  # an unknown image is an error, never a uniform answer

    image = sorted(truth)[0]
    before = _infer(url, image, {"embedding": True})
    assert before["trained"] is False and len(before["embedding"]) == 512
    assert _check_prediction(before) == pytest.approx([0.5, 0.5], abs=1e-6)  # the encoder with a zero head

    labelled = sorted(truth)[1:9]
    for image_id in labelled:  # what a client uploads when an annotator picks a class
        name = CXR_CLASSES[truth[image_id]]
        r = httpx.put(
            f"{url}/datastore/label",
            params={"image": image_id, "tag": "final"},
            files={"label": (f"{image_id}.json", json.dumps({"label": name}), "application/json")},
            data={"params": json.dumps({"label": name})},
            timeout=30,
        )
        assert r.status_code == 200, r.text
    assert httpx.get(f"{url}/datastore/", params={"output": "stats"}, timeout=30).json()["completed"] == 8

    _train_in_background(url, {"max_epochs": 1, "min_steps": 4})
    assert (model_dir / "cxr" / "classifier.pt").is_file()
    train_stats = httpx.get(f"{url}/info/", timeout=30).json()["train_stats"]["cxr"]
    counts = {c: sum(CXR_CLASSES[truth[i]] == c for i in labelled) for c in CXR_CLASSES}
    assert train_stats["num_labels"] == 8 and train_stats["class_counts"] == counts

    after = _infer(url, image, {})
    assert after["trained"] is True and after["weights"] == str(model_dir / "cxr" / "classifier.pt")
    assert _check_prediction(after)[1] != pytest.approx(0.5, abs=1e-4)

    from monailabel.client import MONAILabelClient  # the client 3D Slicer's MONAI Label module bundles

    _, slicer_view = MONAILabelClient(url).infer("cxr", image, {})
    slicer_view = json.loads(slicer_view) if isinstance(slicer_view, bytes | str) else slicer_view  # JSON-only reply
    assert slicer_view["probabilities"] == pytest.approx(after["probabilities"])

    unlabelled = set(truth) - set(labelled)
    r = httpx.post(f"{url}/activelearning/cxr_coverage", json={"count": 5}, timeout=REQUEST_TIMEOUT_S)
    assert r.status_code == 200, r.text
    pick = r.json()
    ids, scores = [p["id"] for p in pick["ranking"]], [p["score"] for p in pick["ranking"]]
    assert pick["method"] == "coverage" and pick["id"] == ids[0] and len(set(ids)) == 5 and set(ids) <= unlabelled
    assert scores[0] > 0 and scores == sorted(scores, reverse=True)  # greedy k-center distances never grow
    top = _unit_embedding(url, ids[0])
    nearest = min(np.linalg.norm(top - _unit_embedding(url, i)) for i in labelled)
    assert scores[0] == pytest.approx(nearest, abs=1e-4)  # the served model's embedding space, over REST

    r = httpx.post(f"{url}/activelearning/cxr_uncertainty", json={"count": 5}, timeout=REQUEST_TIMEOUT_S)
    assert r.status_code == 200, r.text
    pick = r.json()
    scores = [p["score"] for p in pick["ranking"]]
    assert pick["method"] == "uncertainty" and {p["id"] for p in pick["ranking"]} <= unlabelled
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= np.log(2) + 1e-6
    probs = _check_prediction(_infer(url, pick["id"], {}))
    assert scores[0] == pytest.approx(float(-(probs * np.log(probs)).sum()), abs=1e-4)  # entropy of the served answer
