"""--web.config.file: validation, basic auth with bcrypt, TLS context reloading."""

from __future__ import annotations

import base64
import ssl
import time
from pathlib import Path

import bcrypt
import pytest

from exporter import webconfig
from exporter.errors import ConfigError
from exporter.webconfig import WebConfig, check_basic_auth, client_san_allowed, load_web_config


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TestLoadWebConfig:
    """The exporter-toolkit format is validated with every problem listed."""

    def test_every_problem_is_reported_at_once(self, tmp_path: Path) -> None:
        path = tmp_path / "web.yml"
        path.write_text("tls_server_config:\n  cert_file: missing.crt\n  bogus: 1\n"
                        "basic_auth_users:\n  alice: plaintext\nextra: 1\n")
        with pytest.raises(ConfigError) as info:
            load_web_config(path)
        text = "\n".join(info.value.problems)
        assert "extra: unknown key" in text
        assert "tls_server_config.bogus: unknown key" in text
        assert "cert_file: file" in text
        assert "key_file (or key) is required" in text
        assert "basic_auth_users.alice: expected a bcrypt hash" in text

    def test_bcrypt_users_are_loaded(self, tmp_path: Path) -> None:
        hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
        path = tmp_path / "web.yml"
        path.write_text(f"basic_auth_users:\n  alice: '{hashed}'\n")
        assert load_web_config(path).users == {"alice": hashed.encode()}


class TestBasicAuth:
    """Only a known user with the right password passes."""

    config = WebConfig(users={"alice": bcrypt.hashpw(b"secret", bcrypt.gensalt(4))})

    def test_the_right_password_passes(self) -> None:
        assert check_basic_auth(self.config, _basic("alice", "secret"))

    def test_a_wrong_password_an_unknown_user_and_no_header_fail(self) -> None:
        assert not check_basic_auth(self.config, _basic("alice", "wrong"))
        assert not check_basic_auth(self.config, _basic("mallory", "secret"))
        assert not check_basic_auth(self.config, None)
        assert not check_basic_auth(self.config, "Bearer abc")

    def test_without_users_everyone_passes(self) -> None:
        assert check_basic_auth(WebConfig(), None)


def _problems(tmp_path: Path, text: str) -> str:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_web_config(path)
    return "\n".join(info.value.problems)


class TestRefusedKeys:
    """A key that cannot be honoured is a usage error naming the key, never ignored."""

    @pytest.mark.parametrize(("text", "expected"), [
        ("tls_server_config:\n  min_version: TLS13\n", "cert_file (or cert) is required"),
        ("tls_server_config: {}\n", "cert_file (or cert) is required"),
        ("tls_server_config:\n  client_allowed_sans: [a]\n", "cert_file (or cert) is required"),
        ("tls_server_config:\n  cert: x\n  cert_file: web.yml\n  key: y\n",
         "cert and cert_file are exclusive"),
        ("tls_server_config:\n  cert: x\n  key: y\n  min_version: TLS14\n",
         "min_version: unknown value 'TLS14'"),
        ("tls_server_config:\n  cert: x\n  key: y\n  min_version: TLS13\n"
         "  max_version: TLS12\n", "min_version is above max_version"),
        ("tls_server_config:\n  cert: x\n  key: y\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
         "TLS 1.3 suites are not configurable"),
        ("tls_server_config:\n  cert: x\n  key: y\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
         "unknown or insecure suite"),
        ("tls_server_config:\n  cert: x\n  key: y\n  curve_preferences: [CurveP256, X25519]\n",
         "only one curve can be set"),
        ("tls_server_config:\n  cert: x\n  key: y\n  curve_preferences: [P256]\n",
         "unknown curve 'P256'"),
        ("tls_server_config:\n  cert: x\n  key: y\n  client_auth_type: RequestClientCert\n",
         "RequestClientCert (accept a client certificate without verifying it)"),
        ("tls_server_config:\n  cert: x\n  key: y\n"
         "  client_auth_type: RequireAndVerifyClientCert\n", "client_ca_file: required"),
        ("tls_server_config:\n  cert: x\n  key: y\n  client_ca_file: web.yml\n",
         "client_auth_type is NoClientCert"),
        ("tls_server_config:\n  cert: x\n  key: y\n  client_allowed_sans: [a]\n",
         "client_allowed_sans: needs client_auth_type"),
        ("tls_server_config:\n  cert: x\n  key: y\n  prefer_server_cipher_suites: maybe\n",
         "prefer_server_cipher_suites: expected true or false"),
        ("http_server_config:\n  headers:\n    Authorization: x\n", "this header cannot be set"),
        ("http_server_config:\n  headers:\n    Content-Type: text/html\n",
         "this header cannot be set"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
         "expected one of deny, sameorigin"),
        ("http_server_config:\n  http2: sometimes\n", "http2: expected true or false"),
        ("http_server_config:\n  keepalive: true\n", "http_server_config.keepalive: unknown"),
    ], ids=["version_without_cert", "empty_section", "sans_without_cert", "cert_twice",
            "unknown_version", "min_above_max", "tls13_suite", "insecure_suite", "two_curves",
            "unknown_curve", "unverified_client_cert", "client_auth_without_ca",
            "ca_without_client_auth", "sans_without_verification", "prefer_not_bool",
            "authorization_header", "content_type_header", "bad_frame_option", "http2_not_bool",
            "unknown_http_key"])
    def test_the_problem_is_named(self, tmp_path: Path, text: str, expected: str) -> None:
        assert expected in _problems(tmp_path, text)

    def test_an_unreadable_inline_certificate_is_a_config_error(self, tmp_path: Path) -> None:
        text = _problems(tmp_path, "tls_server_config:\n  cert: not a pem\n  key: nor this\n")
        assert "cannot build a TLS context" in text


class TestAcceptedKeys:
    """Keys the exporter implements are loaded into the WebConfig."""

    def test_headers_are_loaded_in_their_canonical_spelling_and_blank_means_unset(
            self, tmp_path: Path) -> None:
        path = tmp_path / "web.yml"
        path.write_text("http_server_config:\n  http2: false\n  headers:\n"
                        "    x-content-type-options: nosniff\n    X-XSS-Protection: ''\n")
        config = load_web_config(path)
        assert config.headers == (("X-Content-Type-Options", "nosniff"),)
        assert config.http2 is False
        assert not config.tls


class TestClientSans:
    """client_allowed_sans compares DNS names, e-mails, URIs exactly and IPs canonically."""

    config = WebConfig(cert="x", key="y", client_allowed_sans=("scraper.example", "2001:db8::1"))

    def test_a_listed_dns_name_or_ip_passes(self) -> None:
        assert client_san_allowed(self.config, {"subjectAltName": (("DNS", "scraper.example"),)})
        assert client_san_allowed(self.config, {
            "subjectAltName": (("IP Address", "2001:DB8:0:0:0:0:0:1"),)})

    def test_an_unlisted_or_missing_san_fails(self) -> None:
        assert not client_san_allowed(self.config, {"subjectAltName": (("DNS", "other"),)})
        assert not client_san_allowed(self.config, {})
        assert not client_san_allowed(self.config, None)


class TestBasicAuthCache:
    """Verified passwords are remembered (bounded); wrong ones are never remembered."""

    def test_a_verified_password_is_checked_again_in_microseconds(self) -> None:
        config = WebConfig(users={"alice": bcrypt.hashpw(b"secret", bcrypt.gensalt(10))})
        started = time.perf_counter()
        assert check_basic_auth(config, _basic("alice", "secret"))
        first = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(100):
            assert check_basic_auth(config, _basic("alice", "secret"))
        hundred = time.perf_counter() - started
        started = time.perf_counter()
        assert not check_basic_auth(config, _basic("alice", "wrong"))
        wrong = time.perf_counter() - started
        assert hundred < first, (first, hundred)
        assert wrong > first / 3, (first, wrong)

    def test_a_changed_hash_is_not_served_from_the_cache(self) -> None:
        old = WebConfig(users={"bob": bcrypt.hashpw(b"old", bcrypt.gensalt(4))})
        new = WebConfig(users={"bob": bcrypt.hashpw(b"new", bcrypt.gensalt(4))})
        assert check_basic_auth(old, _basic("bob", "old"))
        assert not check_basic_auth(new, _basic("bob", "old"))

    def test_the_cache_is_bounded(self) -> None:
        users = {f"u{i}": bcrypt.hashpw(b"pw", bcrypt.gensalt(4)) for i in range(300)}
        config = WebConfig(users=users)
        for user in users:
            assert check_basic_auth(config, _basic(user, "pw"))
        assert len(webconfig._verified) <= webconfig._VERIFIED_MAX


class TestGoNames:
    """Go's cipher suite and curve names map onto names this OpenSSL knows."""

    @pytest.mark.parametrize("go_name", sorted(webconfig._CIPHERS))
    def test_each_cipher_suite_is_exactly_one_openssl_suite(self, go_name: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers(webconfig._CIPHERS[go_name])
        names = [c["name"] for c in context.get_ciphers() if not c["name"].startswith("TLS_")]
        assert names == [webconfig._CIPHERS[go_name]]

    @pytest.mark.parametrize("go_name", sorted(webconfig._CURVES))
    def test_each_curve_is_known_to_openssl(self, go_name: str) -> None:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ecdh_curve(webconfig._CURVES[go_name])
