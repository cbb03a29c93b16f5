"""--web.config.file: TLS with self-made certificates (re-read when they change), client
certificates and bcrypt basic auth, exercised with real TLS clients against the real server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import bcrypt
import pandas as pd
import pytest
import requests
from certs import make_ca, make_leaf

from exporter.app import App
from exporter.config import parse_config
from exporter.webconfig import load_web_config


def _app(tmp_path: Path, web_yml: str) -> App:
    (tmp_path / "logs").mkdir(exist_ok=True)
    pd.DataFrame({"x": [float(i) for i in range(50)]}).to_parquet(tmp_path / "ref.parquet")
    config = parse_config({"models": [{
        "name": "m", "logs": {"path": str(tmp_path / "logs" / "*.jsonl")},
        "reference": {"path": str(tmp_path / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"}]}]}, base_dir=tmp_path)
    (tmp_path / "web.yml").write_text(web_yml)
    app = App(config, "127.0.0.1:0", load_web_config(tmp_path / "web.yml"))
    app.start()
    return app


@pytest.fixture
def pki(tmp_path: Path):  # type: ignore[no-untyped-def]
    ca, ca_cert, ca_key = make_ca(tmp_path)
    server = make_leaf(tmp_path, "server", ca_cert, ca_key, server=True)
    client = make_leaf(tmp_path, "client", ca_cert, ca_key, server=False)
    return ca, ca_cert, ca_key, server, client


class TestTls:
    """The exporter serves HTTPS with the configured certificate."""

    def test_metrics_are_served_over_tls_and_plain_http_is_refused(self, tmp_path: Path,
                                                                   pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        app = _app(tmp_path, f"tls_server_config:\n  cert_file: {server.cert}\n"
                             f"  key_file: {server.key}\n")
        try:
            url = f"https://127.0.0.1:{app.web.port}/metrics"
            response = requests.get(url, verify=str(ca.cert), timeout=5)
            assert response.status_code == 200
            assert "drift_exporter_build_info" in response.text
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(f"http://127.0.0.1:{app.web.port}/metrics", timeout=5)
        finally:
            app.stop()

    def test_a_replaced_certificate_is_used_without_restart(self, tmp_path: Path,
                                                             pki) -> None:  # type: ignore[no-untyped-def]
        ca, _ca_cert, _ca_key, server, _ = pki
        app = _app(tmp_path, f"tls_server_config:\n  cert_file: {server.cert}\n"
                             f"  key_file: {server.key}\n")
        try:
            url = f"https://127.0.0.1:{app.web.port}/-/healthy"
            assert requests.get(url, verify=str(ca.cert), timeout=5).status_code == 200
            other_dir = tmp_path / "other"
            other_dir.mkdir()
            other_ca, other_cert, other_key = make_ca(other_dir, "other-ca")
            renewed = make_leaf(other_dir, "server", other_cert, other_key, server=True)
            server.cert.write_bytes(renewed.cert.read_bytes())
            server.key.write_bytes(renewed.key.read_bytes())
            later = time.time() + 2
            os.utime(server.cert, (later, later))
            os.utime(server.key, (later, later))
            response = requests.get(url, verify=str(other_ca.cert), timeout=5)
            assert response.status_code == 200
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(url, verify=str(ca.cert), timeout=5)
        finally:
            app.stop()

    def test_client_certificates_are_required_when_configured(self, tmp_path: Path,
                                                              pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, client = pki
        app = _app(tmp_path, f"tls_server_config:\n  cert_file: {server.cert}\n"
                             f"  key_file: {server.key}\n  client_ca_file: {ca.cert}\n"
                             "  client_auth_type: RequireAndVerifyClientCert\n")
        try:
            url = f"https://127.0.0.1:{app.web.port}/metrics"
            ok = requests.get(url, verify=str(ca.cert), cert=(str(client.cert), str(client.key)),
                              timeout=5)
            assert ok.status_code == 200
            with pytest.raises(requests.exceptions.RequestException):
                requests.get(url, verify=str(ca.cert), timeout=5)
        finally:
            app.stop()


class TestBasicAuth:
    """bcrypt users: 401 without or with wrong credentials, 200 with the right ones."""

    def test_only_the_right_user_and_password_get_metrics(self, tmp_path: Path) -> None:
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        app = _app(tmp_path, f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        try:
            url = f"http://127.0.0.1:{app.web.port}/metrics"
            assert requests.get(url, timeout=5).status_code == 401
            assert requests.get(url, auth=("prometheus", "wrong"), timeout=5).status_code == 401
            assert requests.get(url, auth=("nobody", "s3cret"), timeout=5).status_code == 401
            response = requests.get(url, auth=("prometheus", "s3cret"), timeout=5)
            assert response.status_code == 200
            assert requests.get(url, timeout=5).headers["WWW-Authenticate"].startswith("Basic")
        finally:
            app.stop()

    def test_an_unknown_user_costs_as_much_time_as_a_wrong_password(self, tmp_path: Path) -> None:
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(10)).decode()
        app = _app(tmp_path, f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        try:
            url = f"http://127.0.0.1:{app.web.port}/metrics"

            def best(auth: tuple[str, str]) -> float:
                times = []
                for _ in range(5):
                    started = time.perf_counter()
                    requests.get(url, auth=auth, timeout=10)
                    times.append(time.perf_counter() - started)
                return min(times)

            wrong_password = best(("prometheus", "nope"))
            unknown_user = best(("nobody", "nope"))
            # bcrypt cost 10 takes tens of ms; an unchecked unknown user would take ~1 ms.
            assert unknown_user > 0.5 * wrong_password
        finally:
            app.stop()
