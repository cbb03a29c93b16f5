"""Every line the exporter writes to stderr is a log line (issue 13, item 16): with
``--log.format=json`` each one parses as JSON, whatever clients and numpy do."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

from harness import free_port, start_exporter, wait_until
from test_http_resources import small_config


def not_json(text: str) -> list[str]:
    """The lines of ``text`` that are not one JSON object each."""
    bad = []
    for line in text.splitlines():
        try:
            if not isinstance(json.loads(line), dict):
                bad.append(line)
        except ValueError:
            bad.append(line)
    return bad


def reset(port: int, data: bytes) -> None:
    """Connect, send ``data`` and abort the connection with a TCP reset."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if data:
            sock.sendall(data)


class TestJsonLogLines:
    def test_reset_connections_leave_only_json_lines_on_stderr(self, tmp_path: Path) -> None:
        process = start_exporter(tmp_path, small_config(tmp_path), free_port(),
                                 extra=("--log.format=json", "--log.level=debug"))
        try:
            process.wait_ready()
            for _ in range(20):
                reset(process.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                reset(process.port, b"GET /met")
                reset(process.port, b"")
            wait_until(lambda: "connection error" in process.stderr(), 10,
                       what="a logged connection error")
            assert process.get("/-/healthy").status_code == 200
        finally:
            code, _ = process.stop(signal.SIGTERM)
        text = process.stderr()
        assert code == 0, text
        assert not_json(text) == [], text[-3000:]
        assert "Traceback" not in text

    def test_warnings_and_uncaught_thread_errors_are_json_log_lines(self) -> None:
        script = (
            "import threading, warnings, numpy as np\n"
            "from exporter.logs import setup_logging\n"
            "setup_logging('info', 'json')\n"
            "np.log(np.array([-1.0]))\n"
            "np.mean(np.array([]))\n"
            "warnings.warn('plain python warning')\n"
            "def boom(): raise RuntimeError('thread failed')\n"
            "t = threading.Thread(target=boom); t.start(); t.join()\n")
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert not_json(result.stderr) == [], result.stderr
        records = [json.loads(line) for line in result.stderr.splitlines()]
        categories = {r.get("category") for r in records}
        assert {"RuntimeWarning", "UserWarning"} <= categories, records
        assert any("thread failed" in str(r.get("exc")) for r in records), records

    def test_a_configuration_error_is_one_json_line_with_every_problem(
            self, tmp_path: Path) -> None:
        config = tmp_path / "bad.yml"
        config.write_text("models:\n  - name: 'bad name'\n    bogus: 1\n")
        result = subprocess.run(
            ["drift-exporter", "run", f"--config.file={config}", "--log.format=json"],
            capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        record = json.loads(lines[0])
        assert record["level"] == "error"
        assert record["msg"] == "configuration error"
        assert record["count"] >= 3  # name, unknown key, missing logs, ...
        assert "models[0].bogus" in record["problems"]
