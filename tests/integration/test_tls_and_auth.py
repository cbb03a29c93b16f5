"""--web.config.file: TLS with self-made certificates (re-read when they change), client
certificates and bcrypt basic auth, exercised with real TLS clients against the real server."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import socket
import ssl
import textwrap
import time
from pathlib import Path

import bcrypt
import pandas as pd
import pytest
import requests
from certs import Pair, make_ca, make_leaf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import free_port, in_process_app, model_config, run_cli, write_config

from exporter.webconfig import load_web_config


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
        app = in_process_app(tmp_path, f"tls_server_config:\n  cert_file: {server.cert}\n"
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

    def test_a_silent_client_does_not_stall_the_handshakes_of_others(self, tmp_path: Path,
                                                                      pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        app = in_process_app(tmp_path, _tls_yml(server))
        try:
            with socket.create_connection(("127.0.0.1", app.web.port), timeout=5):
                started = time.monotonic()
                response = requests.get(f"https://127.0.0.1:{app.web.port}/-/healthy",
                                        verify=str(ca.cert), timeout=3)
                assert response.status_code == 200
                assert time.monotonic() - started < 2
        finally:
            app.stop()

    def test_a_replaced_certificate_is_used_without_restart(self, tmp_path: Path,
                                                             pki) -> None:  # type: ignore[no-untyped-def]
        ca, _ca_cert, _ca_key, server, _ = pki
        app = in_process_app(tmp_path, f"tls_server_config:\n  cert_file: {server.cert}\n"
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
        app = in_process_app(tmp_path, f"tls_server_config:\n  cert_file: {server.cert}\n"
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
        app = in_process_app(tmp_path, f"basic_auth_users:\n  prometheus: '{hashed}'\n")
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
        app = in_process_app(tmp_path, f"basic_auth_users:\n  prometheus: '{hashed}'\n")
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


def _tls_client(port: int, ca: Path, *, version: ssl.TLSVersion | None = None,
                ciphers: str | None = None, curve: str | None = None,
                cert: tuple[Path, Path] | None = None) -> tuple[str | None, str | None]:
    """Handshake, GET /-/healthy; return the negotiated (TLS version, cipher) after a 200.

    Raises ssl.SSLError / OSError when the server refuses the handshake or closes the
    connection (a TLS 1.3 server checks client certificates after the client's handshake)."""
    context = ssl.create_default_context(cafile=str(ca))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if curve is not None:
        context.set_ecdh_curve(curve)
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        negotiated, cipher = tls.version(), tls.cipher()
        tls.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(f"no 200 answer: {answer[:80]!r}")
        return negotiated, cipher[0] if cipher else None


def _tls_yml(server: Pair, extra: str = "") -> str:
    return (f"tls_server_config:\n  cert_file: {server.cert}\n  key_file: {server.key}\n"
            + extra)


def _client_with_sans(directory: Path, stem: str, ca_cert: x509.Certificate,
                      ca_key: ec.EllipticCurvePrivateKey, sans: list[x509.GeneralName]) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pair = Pair(directory / f"{stem}.crt", directory / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return pair


class TestTlsSettings:
    """Every tls_server_config key changes what a real TLS client can negotiate."""

    def test_an_inline_certificate_and_key_are_served_over_tls(self, tmp_path: Path,
                                                               pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        cert = textwrap.indent(server.cert.read_text(), "    ")
        key = textwrap.indent(server.key.read_text(), "    ")
        app = in_process_app(tmp_path, f"tls_server_config:\n  cert: |\n{cert}  key: |\n{key}")
        try:
            url = f"https://127.0.0.1:{app.web.port}/metrics"
            assert requests.get(url, verify=str(ca.cert), timeout=5).status_code == 200
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(f"http://127.0.0.1:{app.web.port}/metrics", timeout=5)
        finally:
            app.stop()

    def test_min_version_tls13_refuses_a_tls12_client(self, tmp_path: Path,
                                                      pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        app = in_process_app(tmp_path, _tls_yml(server, "  min_version: TLS13\n"))
        try:
            assert _tls_client(app.web.port, ca.cert)[0] == "TLSv1.3"
            with pytest.raises((ssl.SSLError, OSError)):
                _tls_client(app.web.port, ca.cert, version=ssl.TLSVersion.TLSv1_2)
        finally:
            app.stop()

    def test_max_version_tls12_refuses_a_tls13_client(self, tmp_path: Path,
                                                      pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        app = in_process_app(tmp_path, _tls_yml(server, "  max_version: TLS12\n"))
        try:
            assert _tls_client(app.web.port, ca.cert)[0] == "TLSv1.2"
            with pytest.raises((ssl.SSLError, OSError)):
                _tls_client(app.web.port, ca.cert, version=ssl.TLSVersion.TLSv1_3)
        finally:
            app.stop()

    def test_cipher_suites_limit_tls12_to_the_listed_suites(self, tmp_path: Path,
                                                            pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        app = in_process_app(tmp_path, _tls_yml(server, "  max_version: TLS12\n  cipher_suites:\n"
                                              "    - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n"))
        try:
            assert _tls_client(app.web.port, ca.cert) == ("TLSv1.2",
                                                          "ECDHE-ECDSA-AES256-GCM-SHA384")
            with pytest.raises((ssl.SSLError, OSError)):
                _tls_client(app.web.port, ca.cert, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        finally:
            app.stop()

    @pytest.mark.parametrize(("prefer", "chosen"), [
        ("true", "ECDHE-ECDSA-AES256-GCM-SHA384"), ("false", "ECDHE-ECDSA-AES128-GCM-SHA256")])
    def test_prefer_server_cipher_suites_decides_whose_order_wins(
            self, tmp_path: Path, pki, prefer: str, chosen: str) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        app = in_process_app(tmp_path, _tls_yml(server, "  max_version: TLS12\n  cipher_suites:\n"
                                              "    - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n"
                                              "    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n"
                                              f"  prefer_server_cipher_suites: {prefer}\n"))
        try:
            client_order = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
            assert _tls_client(app.web.port, ca.cert, ciphers=client_order)[1] == chosen
        finally:
            app.stop()

    def test_curve_preferences_restrict_the_key_exchange_curve(self, tmp_path: Path,
                                                               pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        app = in_process_app(tmp_path, _tls_yml(server, "  curve_preferences: [CurveP384]\n"))
        try:
            assert _tls_client(app.web.port, ca.cert, curve="secp384r1")[0] == "TLSv1.3"
            with pytest.raises((ssl.SSLError, OSError)):
                _tls_client(app.web.port, ca.cert, curve="prime256v1")
        finally:
            app.stop()

    def test_client_allowed_sans_admit_only_a_listed_client_certificate(
            self, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
        ca, ca_cert, ca_key, server, _ = pki
        good = _client_with_sans(tmp_path, "good", ca_cert, ca_key,
                                 [x509.DNSName("scraper.example")])
        other = _client_with_sans(tmp_path, "other", ca_cert, ca_key,
                                  [x509.DNSName("intruder.example")])
        app = in_process_app(tmp_path, _tls_yml(server, f"  client_ca_file: {ca.cert}\n"
                                              "  client_auth_type: RequireAndVerifyClientCert\n"
                                              "  client_allowed_sans: [scraper.example]\n"))
        try:
            assert _tls_client(app.web.port, ca.cert, cert=(good.cert, good.key))
            with pytest.raises((ssl.SSLError, OSError)):
                _tls_client(app.web.port, ca.cert, cert=(other.cert, other.key))
        finally:
            app.stop()


class TestTlsRefusals:
    """A web config asking for TLS that cannot be honoured stops the exporter with exit 2."""

    @pytest.mark.parametrize("tls", [
        "  min_version: TLS13\n",
        "  client_auth_type: RequireAndVerifyClientCert\n",
        "  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: RequireAnyClientCert\n",
        "  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: VerifyClientCertIfGiven\n",
        "  cert_file: {cert}\n  key_file: {key}\n  curve_preferences: [CurveP256, X25519]\n",
    ], ids=["version_without_cert", "client_auth_without_cert", "unverified_client_cert",
            "client_auth_without_ca", "two_curves"])
    def test_the_exporter_refuses_to_start(self, tmp_path: Path, pki, tls: str) -> None:  # type: ignore[no-untyped-def]
        _, _, _, server, _ = pki
        (tmp_path / "logs").mkdir()
        pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tmp_path / "ref.parquet")
        config = write_config(tmp_path, {"models": [model_config(
            "m", tmp_path / "logs" / "*.jsonl", tmp_path / "ref.parquet",
            [{"name": "x", "type": "numerical"}])]})
        web = tmp_path / "web.yml"
        web.write_text("tls_server_config:\n" + tls.format(cert=server.cert, key=server.key))
        result = run_cli("run", f"--config.file={config}", f"--web.config.file={web}",
                         f"--web.listen-address=127.0.0.1:{free_port()}", timeout=30)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "tls_server_config" in result.stderr
        assert "Traceback" not in result.stderr


class TestHttpServerConfig:
    """http_server_config.headers are added to every answer."""

    def test_configured_headers_are_on_every_response(self, tmp_path: Path) -> None:
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        app = in_process_app(tmp_path,
                             "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
                             "    Content-Security-Policy: default-src 'self'\n"
                             f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        try:
            base = f"http://127.0.0.1:{app.web.port}"
            for response in (requests.get(f"{base}/metrics", timeout=5),
                             requests.get(f"{base}/", auth=("prometheus", "s3cret"), timeout=5),
                             requests.get(f"{base}/nowhere", auth=("prometheus", "s3cret"),
                                          timeout=5)):
                assert response.headers["X-Frame-Options"] == "deny", response.status_code
                assert response.headers["Content-Security-Policy"] == "default-src 'self'"
        finally:
            app.stop()


class TestBasicAuthCache:
    """A verified password is remembered; a wrong one stays as slow as bcrypt."""

    def test_thirty_authenticated_scrapes_cost_one_bcrypt_check(self, tmp_path: Path) -> None:
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(12)).decode()
        started = time.perf_counter()
        bcrypt.checkpw(b"s3cret", hashed.encode())
        one_check = time.perf_counter() - started
        app = in_process_app(tmp_path, f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        try:
            url = f"http://127.0.0.1:{app.web.port}/-/healthy"
            with requests.Session() as session:
                started = time.perf_counter()
                for _ in range(30):
                    response = session.get(url, auth=("prometheus", "s3cret"), timeout=10)
                    assert response.status_code == 200
                thirty = time.perf_counter() - started
                started = time.perf_counter()
                assert session.get(url, auth=("prometheus", "wrong"), timeout=10).status_code \
                    == 401
                wrong = time.perf_counter() - started
            # Without the cache 30 requests cost 30 checks; 15 leaves room for a loaded machine.
            assert thirty < one_check * 15, f"30 scrapes {thirty:.2f}s, one bcrypt {one_check:.2f}s"
            assert wrong > one_check * 0.5, f"wrong password {wrong:.3f}s"
        finally:
            app.stop()


class TestReloadAndSwap:
    """POST /-/reload calls the lifecycle hook; set_web_config swaps TLS for new connections."""

    def test_reload_answers_403_without_a_hook_and_follows_its_result(self,
                                                                      tmp_path: Path) -> None:
        results = [True, False]
        app = in_process_app(tmp_path, "")
        try:
            url = f"http://127.0.0.1:{app.web.port}/-/reload"
            answer = requests.post(url, timeout=5)
            assert answer.status_code == 403
            assert "Lifecycle API is not enabled." in answer.text
            app.web.reload = lambda: results.pop(0)
            assert requests.post(url, timeout=5).status_code == 200
            assert requests.put(url, timeout=5).status_code == 500
            assert requests.get(url, timeout=5).status_code == 405
        finally:
            app.stop()

    def test_a_new_web_config_turns_tls_on_for_the_next_connections(
            self, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
        ca, _, _, server, _ = pki
        app = in_process_app(tmp_path, "")
        try:
            assert requests.get(f"http://127.0.0.1:{app.web.port}/-/healthy",
                                timeout=5).status_code == 200
            (tmp_path / "tls.yml").write_text(_tls_yml(server))
            app.web.set_web_config(load_web_config(tmp_path / "tls.yml"))
            assert requests.get(f"https://127.0.0.1:{app.web.port}/-/healthy",
                                verify=str(ca.cert), timeout=5).status_code == 200
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(f"http://127.0.0.1:{app.web.port}/-/healthy", timeout=5)
        finally:
            app.stop()

    def test_a_kept_alive_connection_is_closed_once_the_web_config_changes(
            self, tmp_path: Path) -> None:
        app = in_process_app(tmp_path, "")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", app.web.port, timeout=5)
            connection.request("GET", "/-/healthy")
            assert connection.getresponse().read() == b"Healthy\n"
            hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
            (tmp_path / "users.yml").write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
            app.web.set_web_config(load_web_config(tmp_path / "users.yml"))
            connection.request("GET", "/-/healthy")
            with pytest.raises(http.client.RemoteDisconnected):
                connection.getresponse()
            connection.close()
            assert requests.get(f"http://127.0.0.1:{app.web.port}/-/healthy",
                                timeout=5).status_code == 401
        finally:
            app.stop()
