"""The Prometheus exporter-toolkit web configuration: TLS and basic auth (bcrypt)."""

from __future__ import annotations

import functools
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from exporter.errors import ConfigError

_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
             "max_version", "cipher_suites", "curve_preferences", "prefer_server_cipher_suites",
             "cert", "key", "client_allowed_sans"}
_CLIENT_AUTH = {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"}


@dataclass(frozen=True)
class WebConfig:
    """TLS files and basic-auth users from --web.config.file."""

    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    users: dict[str, bytes] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS."""
        return self.cert_file is not None


def load_web_config(path: str | Path) -> WebConfig:
    """Read and validate a web config file; every problem in one ConfigError."""
    problems: list[str] = []
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError((f"{path}: {exc}",)) from exc
    if not isinstance(data, dict):
        raise ConfigError((f"{path}: expected a mapping",))
    problems.extend(_unknown_keys(data))
    base = Path(path).parent
    tls = data.get("tls_server_config") or {}
    users_raw = data.get("basic_auth_users") or {}
    for key in tls:
        if key not in _TLS_KEYS:
            problems.append(f"tls_server_config.{key}: unknown key")

    def resolve(key: str) -> str | None:
        value = tls.get(key)
        if value is None:
            return None
        resolved = str(base / value) if not os.path.isabs(str(value)) else str(value)
        if not os.path.exists(resolved):
            problems.append(f"tls_server_config.{key}: file {resolved} not found")
        return resolved

    cert, key_file, ca = resolve("cert_file"), resolve("key_file"), resolve("client_ca_file")
    if (cert is None) != (key_file is None):
        problems.append("tls_server_config: cert_file and key_file go together")
    auth = str(tls.get("client_auth_type", "NoClientCert"))
    if auth not in _CLIENT_AUTH:
        problems.append(f"tls_server_config.client_auth_type: unknown value {auth!r}")
    users = _users(users_raw, problems)
    if problems:
        raise ConfigError(tuple(f"{path}: {p}" for p in problems))
    return WebConfig(cert, key_file, ca, auth, users)


def _unknown_keys(data: dict[str, object]) -> list[str]:
    allowed = ("tls_server_config", "basic_auth_users", "http_server_config")
    return [f"{key}: unknown key" for key in data if key not in allowed]


def _users(raw: object, problems: list[str]) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    if not isinstance(raw, dict):
        problems.append("basic_auth_users: expected a mapping of user: bcrypt hash")
        return users
    for user, hashed in raw.items():
        if not isinstance(hashed, str) or not hashed.startswith("$2"):
            problems.append(f"basic_auth_users.{user}: expected a bcrypt hash")
        else:
            users[str(user)] = hashed.encode()
    return users


class TlsContext:
    """An SSL context that re-reads the certificate files when they change."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._stamp: tuple[float, ...] = ()
        self._context = self._build()

    def _files(self) -> list[str]:
        return [f for f in (self.config.cert_file, self.config.key_file,
                            self.config.client_ca_file) if f]

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        cert, key = self.config.cert_file, self.config.key_file
        if cert is None or key is None:
            raise ValueError("TLS needs cert_file and key_file")
        context.load_cert_chain(cert, key)
        auth = self.config.client_auth_type
        if self.config.client_ca_file:
            context.load_verify_locations(self.config.client_ca_file)
        if auth in ("RequireAndVerifyClientCert", "RequireAnyClientCert"):
            context.verify_mode = ssl.CERT_REQUIRED
        elif auth in ("VerifyClientCertIfGiven", "RequestClientCert"):
            context.verify_mode = ssl.CERT_OPTIONAL
        self._stamp = tuple(os.stat(f).st_mtime for f in self._files())
        return context

    def current(self) -> ssl.SSLContext:
        """The context, rebuilt if a certificate file changed (old one kept on error)."""
        with self._lock:
            try:
                stamp = tuple(os.stat(f).st_mtime for f in self._files())
                if stamp != self._stamp:
                    self._context = self._build()
            except (OSError, ssl.SSLError):
                pass
            return self._context


def check_basic_auth(config: WebConfig, header: str | None) -> bool:
    """True when no users are configured or the Authorization header matches one."""
    if not config.users:
        return True
    import base64

    import bcrypt

    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    hashed = config.users.get(user)
    # An unknown user is checked against a dummy hash of the same cost, so a wrong user name
    # takes as long as a wrong password (no timing leak on user names).
    try:
        ok = bcrypt.checkpw(password.encode(), hashed or _dummy_hash(config))
    except ValueError:
        return False
    return bool(ok and hashed is not None)


@functools.cache
def _dummy_hash_for_cost(cost: int) -> bytes:
    import bcrypt

    return bytes(bcrypt.hashpw(b"not a password", bcrypt.gensalt(cost)))


def _dummy_hash(config: WebConfig) -> bytes:
    first = next(iter(config.users.values()))
    try:
        cost = int(first.split(b"$")[2])
    except (IndexError, ValueError):
        cost = 10
    return _dummy_hash_for_cost(cost)
