"""The HTTP server's bounds (issue 13): listen backlog, handler threads, slow clients, and the
HTTP details a scraper relies on (HEAD, 405, gzip, name[] filtering), on a real process."""

from __future__ import annotations

import gzip
import selectors
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
from harness import (
    STARTED,
    Exporter,
    exporter_command,
    free_port,
    model_config,
    start_exporter,
    write_config,
)

MAX_CONNECTIONS = 128  # exporter.server.MAX_CONNECTIONS
REQUEST_TIMEOUT = 10.0  # exporter.server.REQUEST_TIMEOUT_SECONDS


def small_config(tmp_path: Path) -> dict[str, object]:
    """One model with an empty log directory: the server is what is under test."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    pd.DataFrame({"x": [float(i) for i in range(50)]}).to_parquet(tmp_path / "ref.parquet")
    return {"models": [model_config("m", tmp_path / "logs" / "*.jsonl", tmp_path / "ref.parquet",
                                    [{"name": "x", "type": "numerical"}])]}


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """One exporter shared by the tests of this module."""
    tmp_path = tmp_path_factory.mktemp("resources")
    process = start_exporter(tmp_path, small_config(tmp_path), free_port())
    try:
        process.wait_ready()
        yield process
    finally:
        code, _ = process.stop()
    assert code == 0, process.stderr()


@pytest.fixture
def http(serving: Exporter, request: pytest.FixtureRequest) -> Exporter:
    """The shared exporter, registered so a failing test shows its stderr."""
    request.node.stash.setdefault(STARTED, []).append(serving)
    return serving


def concurrent_gets(port: int, path: str, clients: int, deadline: float) -> dict[str, int]:
    """Open ``clients`` connections at once, each sending one GET; count how they ended
    within ``deadline`` seconds ("200", other status lines, "timeout", "error")."""
    selector = selectors.DefaultSelector()
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    answers: dict[socket.socket, bytes] = {}
    for _ in range(clients):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        answers[sock] = b""
    outcome: dict[str, int] = {}
    end = time.monotonic() + deadline
    open_count = clients
    while open_count and time.monotonic() < end:
        for key, events in selector.select(timeout=max(0.0, end - time.monotonic())):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                if events & selectors.EVENT_WRITE:
                    sock.sendall(request)
                    selector.modify(sock, selectors.EVENT_READ)
                    continue
                chunk = sock.recv(65536)
            except OSError:
                chunk, answers[sock] = b"", b"error"
            if chunk:
                answers[sock] += chunk
                continue
            selector.unregister(sock)
            sock.close()
            open_count -= 1
            status = answers[sock].split(b"\r\n", 1)[0].decode(errors="replace")
            name = "200" if status.startswith("HTTP/1.1 200") else status or "error"
            outcome[name] = outcome.get(name, 0) + 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    if open_count:
        outcome["timeout"] = open_count
    return outcome


def thread_count(pid: int) -> int:
    """Threads of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


class TestLoad:
    def test_400_simultaneous_health_checks_are_all_answered(self, http: Exporter) -> None:
        outcome = concurrent_gets(http.port, "/-/healthy", 400, deadline=5.0)
        assert outcome == {"200": 400}

    def test_200_simultaneous_scrapes_are_all_answered(self, http: Exporter) -> None:
        outcome = concurrent_gets(http.port, "/metrics", 200, deadline=15.0)
        assert outcome == {"200": 200}

    def test_silent_clients_hold_a_bounded_number_of_threads(self, http: Exporter) -> None:
        before = thread_count(http.proc.pid)
        idle = []
        try:
            for _ in range(200):
                sock = socket.create_connection(("127.0.0.1", http.port), timeout=5)
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never end
                idle.append(sock)
            time.sleep(0.5)  # not synchronisation: gives extra threads, if any, time to appear
            assert thread_count(http.proc.pid) <= before + MAX_CONNECTIONS
        finally:
            for sock in idle:
                sock.close()
        assert http.get("/-/healthy").status_code == 200

    def test_silent_connections_take_no_thread_and_delay_no_one(self, http: Exporter) -> None:
        before = thread_count(http.proc.pid)
        silent = []
        try:
            for _ in range(300):
                silent.append(socket.create_connection(("127.0.0.1", http.port), timeout=5))
            started = time.monotonic()
            assert http.get("/-/healthy").status_code == 200
            assert time.monotonic() - started < 1.0
            assert thread_count(http.proc.pid) <= before + 2
        finally:
            for sock in silent:
                sock.close()

    def test_a_client_that_never_finishes_its_headers_is_cut_off(self, http: Exporter) -> None:
        with socket.create_connection(("127.0.0.1", http.port), timeout=5) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            sock.settimeout(REQUEST_TIMEOUT + 5)
            assert sock.recv(1) == b"", "the server closes the connection"
            assert time.monotonic() - started < REQUEST_TIMEOUT + 2


class TestFewDescriptors:
    @pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")
    def test_with_few_descriptors_the_oldest_silent_connection_makes_way(
            self, tmp_path: Path) -> None:
        config = write_config(tmp_path, small_config(tmp_path))
        port = free_port()
        with (tmp_path / "stderr").open("wb") as err:
            proc = subprocess.Popen(
                ["prlimit", "--nofile=300:300", *exporter_command(), "run",
                 f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                stdout=err, stderr=err)
        process = Exporter(proc, port, config, tmp_path / "stderr")
        silent = []
        try:
            process.wait_ready()
            for _ in range(295):  # more descriptors than the limit leaves; ~54 may wait
                silent.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            started = time.monotonic()
            assert process.get("/-/healthy").status_code == 200
            assert time.monotonic() - started < 4.0
        finally:
            for sock in silent:
                sock.close()
            code, _ = process.stop()
        assert code == 0, process.stderr()


class TestHttpDetails:
    def test_head_answers_like_get_without_a_body(self, http: Exporter) -> None:
        for path in ("/metrics", "/-/healthy", "/"):
            head = requests.head(http.url(path), timeout=5)
            assert head.status_code == 200, path
            assert head.content == b""
            assert int(head.headers["Content-Length"]) > 0

    def test_other_methods_answer_405_with_allow(self, http: Exporter) -> None:
        for method in ("DELETE", "POST", "OPTIONS", "PATCH"):
            response = requests.request(method, http.url("/metrics"), timeout=5)
            assert response.status_code == 405, method
            assert response.headers["Allow"] == "GET, HEAD"
        assert requests.delete(http.url("/nowhere"), timeout=5).status_code == 404

    def test_metrics_are_gzipped_when_asked(self, http: Exporter) -> None:
        with requests.get(http.url("/metrics"), headers={"Accept-Encoding": "gzip"},
                          timeout=5, stream=True) as response:
            raw = response.raw.read(decode_content=False)
            assert response.headers["Content-Encoding"] == "gzip"
        assert b"drift_exporter_build_info" in gzip.decompress(raw)
        plain = requests.get(http.url("/metrics"), headers={"Accept-Encoding": "identity"},
                             timeout=5)
        assert "Content-Encoding" not in plain.headers

    def test_name_filtering_keeps_only_the_named_families(self, http: Exporter) -> None:
        text = http.get("/metrics?name[]=drift_window_rows&name[]=drift_exporter_build_info").text
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                 if line and not line.startswith("#")}
        assert names == {"drift_window_rows", "drift_exporter_build_info"}

    def test_pipelined_and_kept_alive_requests_are_all_answered(self, http: Exporter) -> None:
        with socket.create_connection(("127.0.0.1", http.port), timeout=5) as sock:
            request = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
            sock.sendall(request * 3)
            answers = b""
            while answers.count(b"Healthy\n") < 3:
                chunk = sock.recv(4096)
                assert chunk, answers
                answers += chunk
            sock.sendall(request)  # later, on the same (parked) connection
            answers = b""
            while b"Healthy\n" not in answers:
                chunk = sock.recv(4096)
                assert chunk, answers
                answers += chunk

    def test_reload_is_refused_when_the_lifecycle_api_is_off(self, http: Exporter) -> None:
        response = requests.post(http.url("/-/reload"), timeout=5)
        assert response.status_code == 403
        assert response.text.strip() == "Lifecycle API is not enabled."
