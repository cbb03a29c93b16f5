"""The landing page (SPEC 5) in a real browser, and behind the same basic auth and TLS as /metrics.

The browser is Debian's ``chromium-headless-shell`` (``.ci/run`` installs it): it loads the page
of a running exporter whose column names and categories are hostile markup, its DOM is checked
(a chart per column, names shown as text, nothing loaded from another host: every request to a
non-loopback host goes to a trap proxy that must see none) and screenshots at a desktop's and a
phone's width are saved under the test's temporary directory.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import bcrypt
import numpy as np
import pandas as pd
import pytest
import requests
from certs import make_ca, make_leaf
from harness import append_lines, in_process_app, jsonl_line, model_config

HOSTILE_FEATURE = "<script>alert(\"f\")</script>&'x'"
HOSTILE_CATEGORY = '<img src="http://203.0.113.7/x.png">'
CATEGORIES = ("alpha", "beta", HOSTILE_CATEGORY, "a \"quoted\" & 'single' one",
              *(f"rare-{i}" for i in range(30)))
WINDOW = 400
BROWSER_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser")
BROWSER_SECONDS = 60.0


def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSER_NAMES) if p), None)


@dataclass
class _Dom(HTMLParser):
    """What the checks need from a DOM serialisation: elements, their attributes and texts."""

    tags: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # texts of <span class="name">
    text: list[str] = field(default_factory=list)
    _in_name: bool = False

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record the element; note when a column name's text follows."""
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        self._in_name = tag == "span" and attributes.get("class") == "name"

    def handle_data(self, data: str) -> None:
        """Collect texts (column names separately)."""
        self.text.append(data)
        if self._in_name:
            self.names.append(data)
            self._in_name = False

    def charts(self) -> list[dict[str, str]]:
        """The chart SVGs."""
        return [a for t, a in self.tags if t == "svg" and "chart" in a.get("class", "")]


class _TrapProxy:
    """An HTTP proxy that answers nothing and counts who came: the browser's way out to any
    host but loopback."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with client:
                client.settimeout(2.0)
                try:
                    self.requests.append(client.recv(4096))
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    self.requests.append(b"?")

    def close(self) -> None:
        """Stop accepting."""
        self.sock.close()
        self.thread.join(timeout=5)


def _chromium(browser: str, profile: Path, proxy: int, *args: str) -> subprocess.CompletedProcess[
        str]:
    """One headless Chromium run (as root it needs --no-sandbox); everything not on loopback
    goes through the trap proxy."""
    command = [browser, "--no-sandbox", "--headless", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
               f"--proxy-server=http://127.0.0.1:{proxy}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_SECONDS,
                          check=False)


def _config(tmp_path: Path) -> dict[str, Any]:
    """A model with hostile names: a drifting numerical feature, a categorical one with many
    categories, a quiet one and the prediction; a full window of logs already written."""
    rng = np.random.default_rng(7)
    n = 2000
    weights = np.array([0.3, 0.2, 0.1, 0.1, *([0.3 / 30] * 30)])
    reference = pd.DataFrame({
        HOSTILE_FEATURE: rng.normal(0.0, 1.0, n),
        "country": rng.choice(np.array(CATEGORIES, dtype=object), n, p=weights),
        "quiet": rng.exponential(2.0, n),
        "score": rng.beta(2.0, 5.0, n),
    })
    reference.to_parquet(tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    live = rng.choice(np.array([*CATEGORIES, "never-seen"], dtype=object), WINDOW,
                      p=[0.1, 0.1, 0.3, 0.1, *([0.2 / 30] * 30), 0.2])
    lines = [jsonl_line({HOSTILE_FEATURE: float(rng.normal(2.0, 1.0)), "country": str(live[i]),
                         "quiet": float(rng.exponential(2.0)), "score": float(rng.beta(2, 5))})
             for i in range(WINDOW)]
    append_lines(logs / "app.jsonl", lines)
    features = [{"name": HOSTILE_FEATURE, "type": "numerical"},
                {"name": "country", "type": "categorical"},
                {"name": "quiet", "type": "numerical"}]
    return {"models": [model_config("m-1", logs / "*.jsonl",
                                    tmp_path / "reference.parquet", features,
                                    prediction={"column": "score"}, window={"rows": WINDOW})]}


@pytest.fixture
def page_url(exporter: Any, tmp_path: Path) -> str:
    """The landing page of a running exporter that has a full window."""
    process = exporter(_config(tmp_path))
    process.wait_for_window("m-1", WINDOW, WINDOW)
    return process.url("/")


class TestLandingPageInABrowser:
    """Chromium loads the page: its DOM and how it looks."""

    def test_each_column_has_a_chart_names_are_text_and_nothing_comes_from_another_host(
            self, page_url: str, tmp_path: Path) -> None:
        browser = _browser()
        if browser is None:
            pytest.skip("no Chromium (.ci/run installs Debian's chromium-headless-shell)")
        proxy = _TrapProxy()
        try:
            dumped = _chromium(browser, tmp_path / "profile", proxy.port, "--dump-dom",
                               page_url)
            assert dumped.returncode == 0, dumped.stderr[-3000:]
            shots = {}
            for name, size in (("desktop", "1280,900"), ("phone", "390,844")):
                shots[name] = tmp_path / f"landing-{name}.png"
                run = _chromium(browser, tmp_path / "profile", proxy.port,
                                f"--screenshot={shots[name]}", f"--window-size={size}",
                                "--hide-scrollbars", page_url)
                assert run.returncode == 0, run.stderr[-3000:]
        finally:
            proxy.close()
        dom = _Dom()
        dom.feed(dumped.stdout)
        assert len(dom.charts()) == 4, "a chart per feature and for the prediction"
        assert dom.names[0] == HOSTILE_FEATURE, "the drifting feature first, shown as text"
        assert set(dom.names) == {HOSTILE_FEATURE, "country", "quiet", "score"}
        assert any(HOSTILE_CATEGORY in t for t in dom.text), "the category shown as text"
        tags = {t for t, _ in dom.tags}
        assert not tags & {"script", "img", "iframe", "object", "embed", "link", "image"}
        for tag, attributes in dom.tags:
            for attribute in ("src", "href", "xlink:href", "action", "data"):
                target = attributes.get(attribute, "")
                assert not target or (target.startswith("/") and not target.startswith("//")), (
                    f"<{tag} {attribute}={target!r}> leaves the exporter")
        assert proxy.requests == [], "the browser asked another host for something"
        for shot in shots.values():
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{shot} is no screenshot"




class TestLandingPageProtection:
    """/ is served under the same web config as /metrics."""

    def test_basic_auth_and_tls_guard_the_landing_page_as_they_guard_metrics(
            self, tmp_path: Path) -> None:
        ca, ca_cert, ca_key = make_ca(tmp_path)
        server = make_leaf(tmp_path, "server", ca_cert, ca_key, server=True)
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        app = in_process_app(tmp_path, f"tls_server_config:\n  cert_file: {server.cert}\n"
                             f"  key_file: {server.key}\n"
                             f"basic_auth_users:\n  viewer: {json.dumps(hashed)}\n")
        try:
            url = f"https://127.0.0.1:{app.web.port}/"
            refused = requests.get(url, verify=str(ca.cert), timeout=5)
            assert refused.status_code == 401
            assert "<svg" not in refused.text
            wrong = requests.get(url, verify=str(ca.cert), auth=("viewer", "nope"), timeout=5)
            assert wrong.status_code == 401
            page = requests.get(url, verify=str(ca.cert), auth=("viewer", "s3cret"), timeout=5)
            assert page.status_code == 200
            assert "<svg" in page.text
            assert "script-src" not in page.headers["Content-Security-Policy"]
            assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(f"http://127.0.0.1:{app.web.port}/", timeout=5)
        finally:
            app.stop()
