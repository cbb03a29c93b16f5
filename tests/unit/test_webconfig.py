"""--web.config.file: validation, basic auth with bcrypt, TLS context reloading."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest

from exporter.errors import ConfigError
from exporter.webconfig import WebConfig, check_basic_auth, load_web_config


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
