"""`pyfw playground`'s server: every endpoint, bounds, the security rules, separate runs per tab,
and the export's command repeating the page's run bit for bit."""

from __future__ import annotations

import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import load_backend
from pyfw import cli, io, playground


@pytest.fixture(params=["py", "rs"])
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    srv = playground.make_server("127.0.0.1", 0, load_backend(request.param))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(srv: Any, method: str, path: str, body: Any = None, headers: Any = None) -> tuple:
    port = srv.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
    res = conn.getresponse()
    raw = res.read()
    conn.close()
    kind = res.getheader("Content-Type", "")
    return res.status, (json.loads(raw) if kind.startswith("application/json") else raw)


SMALL = {"dataset": "circle", "points": "100", "networkShape": "3", "batchSize": "10"}


def test_page_and_static_files(server: Any) -> None:
    status, page = call(server, "GET", "/")
    assert status == 200 and b"play-pause-button" in page and b"http" not in page.replace(b"http-equiv", b"")
    for name in ("app.js", "style.css"):
        assert call(server, "GET", "/static/" + name)[0] == 200
    for path in ("/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/nope.js", "/etc/passwd",
                 "/static//etc/passwd"):
        assert call(server, "GET", path)[0] == 404, path


def test_host_and_origin_rules(server: Any) -> None:
    port = server.server_address[1]
    assert call(server, "GET", "/", headers={"Host": f"evil.example:{port}"})[0] == 403
    assert call(server, "GET", "/", headers={"Host": f"localhost:{port}"})[0] == 200
    assert call(server, "POST", "/api/run", {"settings": SMALL}, {"Origin": "http://evil.example"})[0] == 403
    assert call(server, "POST", "/api/run", {"settings": SMALL}, {"Origin": f"http://localhost:{port}"})[0] == 200
    assert call(server, "POST", "/api/run", {"settings": SMALL})[0] == 200  # no Origin: curl


@pytest.mark.parametrize("bad", [
    {"noise": "60"}, {"percTrainData": "5"}, {"batchSize": "0"}, {"networkShape": "4,40"},
    {"networkShape": "1,1,1,1,1,1,1,1,1"}, {"learningRate": "nan"}, {"learningRate": "-1"}, {"seed": "-3"},
    {"dataset": "nope"}, {"activation": "softmax"}, {"x": "false", "y": "false"}, {"regularization": "L3"},
    {"problem": "regression", "loss": "crossentropy"}, {"points": "100000"}, {"dropout": "1"}, {"classes": "99"},
])
def test_bounds(server: Any, bad: dict) -> None:
    status, body = call(server, "POST", "/api/run", {"settings": {**SMALL, **bad}})
    assert status == 400 and isinstance(body["error"], str)


def test_bad_bodies(server: Any) -> None:
    assert call(server, "POST", "/api/run", b"{not json")[0] == 400
    assert call(server, "POST", "/api/run", b"[1]")[0] == 400
    assert call(server, "POST", "/api/run", b"x" * (playground.MAX_BODY + 1))[0] == 413
    assert call(server, "GET", "/api/run/nope")[0] == 404
    key = call(server, "POST", "/api/run", {"settings": SMALL})[1]["id"]
    assert call(server, "POST", "/api/run/" + key, {"action": "explode"})[0] == 400
    assert call(server, "GET", "/api/info")[0] == 200


def test_controls_export_and_the_command_repeats_the_run(server: Any, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    settings = {**SMALL, "noise": "10", "regularization": "L2", "regularizationRate": "0.001", "seed": "7",
                "xSquared": "true", "learningRate": "0.1"}
    status, snap = call(server, "POST", "/api/run", {"settings": settings})
    assert status == 200 and snap["epoch"] == 0 and len(snap["output"]) == playground.GRID ** 2
    key = snap["id"]
    assert len(snap["neurons"]) == 1 and len(snap["neurons"][0]) == 3
    for _ in range(3):
        snap = call(server, "POST", f"/api/run/{key}", {"action": "step"})[1]
    assert snap["epoch"] == 3 and [h[0] for h in snap["history"]] == [0, 1, 2, 3]
    pts = call(server, "GET", f"/api/run/{key}/points")[1]
    assert len(pts["train"]) == 50 and len(pts["test"]) == 50
    ex = call(server, "GET", f"/api/run/{key}/export")[1]
    assert ex["epoch"] == 3 and ex["command"].startswith("pyfw train --task circle")
    status, model_bytes = call(server, "GET", f"/api/run/{key}/model")
    page_model = tmp_path / "page.safetensors"
    page_model.write_bytes(model_bytes)
    assert io.load_model(page_model) is not None
    # the exported command, run here, writes the same file
    argv = shlex.split(ex["command"])[1:]
    argv[argv.index("model.safetensors")] = str(tmp_path / "cli.safetensors")
    assert cli.main(argv + ["--quiet"]) == 0, capsys.readouterr().err
    assert (tmp_path / "cli.safetensors").read_bytes() == model_bytes
    # play, then pause: the epochs went on
    call(server, "POST", f"/api/run/{key}", {"action": "play"})
    time.sleep(0.3)
    snap = call(server, "POST", f"/api/run/{key}", {"action": "pause"})[1]
    assert snap["epoch"] > 3 and snap["playing"] is False
    snap = call(server, "POST", f"/api/run/{key}", {"action": "reset"})[1]
    assert snap["epoch"] == 0


def test_tabs_have_their_own_runs(server: Any) -> None:
    a = call(server, "POST", "/api/run", {"settings": SMALL})[1]["id"]
    b = call(server, "POST", "/api/run", {"settings": {**SMALL, "dataset": "xor"}})[1]["id"]
    call(server, "POST", f"/api/run/{a}", {"action": "step"})
    assert call(server, "GET", f"/api/run/{a}")[1]["epoch"] == 1
    assert call(server, "GET", f"/api/run/{b}")[1]["epoch"] == 0
    results: list = []

    def tab() -> None:
        key = call(server, "POST", "/api/run", {"settings": SMALL})[1]["id"]
        results.append(call(server, "POST", f"/api/run/{key}", {"action": "step"})[1]["train_loss"])

    threads = [threading.Thread(target=tab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1  # the same settings: the same bits


def test_runs_are_capped(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(playground, "MAX_RUNS", 2)
    keys = [call(server, "POST", "/api/run", {"settings": SMALL})[1]["id"] for _ in range(3)]
    assert len(server.runs.runs) == 2 and keys[0] not in server.runs.runs


def test_export_at_epoch_0_gives_no_command(server: Any) -> None:
    """At epoch 0 no ``pyfw train`` command repeats the page's run (it trains one epoch or more)."""
    key = call(server, "POST", "/api/run", {"settings": SMALL})[1]["id"]
    ex = call(server, "GET", f"/api/run/{key}/export")[1]
    assert ex["epoch"] == 0 and ex["command"] is None and ex["python"] is None
    call(server, "POST", f"/api/run/{key}", {"action": "step"})
    ex = call(server, "GET", f"/api/run/{key}/export")[1]
    assert " --epochs 1 " in ex["command"] and "epochs=1)" in ex["python"]
    with pytest.raises(ValueError, match="at least one epoch"):
        playground.command_of(playground.config_of(SMALL)[0], 0)


def _start(args: list, env: Any = None) -> tuple:
    """``pyfw playground ARGS`` in a subprocess, and the address it prints once it serves."""
    proc = subprocess.Popen([sys.executable, "-m", "pyfw", "playground", "--port", "0", "--backend", "py", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    line = proc.stdout.readline()
    assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, line.split()[-4]


def test_ctrl_c_stops_with_status_130() -> None:
    proc, url = _start([])
    try:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/info")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        err = proc.stderr.read()
        assert err.strip() == "pyfw: interrupted" and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_failed_request_is_one_line(capsys: pytest.CaptureFixture) -> None:
    """A request that fails where the handler cannot answer (a client gone, a stopping server) prints
    at most one line, never socketserver's traceback."""
    srv = playground.make_server("127.0.0.1", 0)
    try:
        for stopping, exc, lines in ((False, ValueError("boom"), 1), (False, ConnectionResetError(), 0),
                                     (True, ValueError("late"), 0)):
            srv.stopping = stopping
            try:
                raise exc
            except Exception:
                srv.handle_error(None, ("127.0.0.1", 1))
            err = capsys.readouterr().err
            assert len(err.splitlines()) == lines and "Traceback" not in err and "----" not in err, err
    finally:
        srv.server_close()


def test_open_opens_the_page_in_the_browser(tmp_path: Path) -> None:
    """``--open`` hands the printed address to the web browser (here a fake one named by BROWSER)."""
    seen = tmp_path / "opened.txt"
    fake = tmp_path / "fake-browser"
    fake.write_text(f"#!{sys.executable}\nimport sys\nopen({str(seen)!r}, 'w').write(sys.argv[1])\n")
    fake.chmod(0o755)
    proc, url = _start(["--open"], {"BROWSER": str(fake), "DISPLAY": "", "WAYLAND_DISPLAY": ""})
    try:
        deadline = time.monotonic() + 20
        while not (seen.exists() and seen.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen.read_text() == url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
