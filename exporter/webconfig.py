"""The Prometheus exporter-toolkit web configuration: TLS, basic auth (bcrypt), HTTP headers.

Every key of the format is either applied or refused (SPEC 4): a configuration that asks for
TLS or client certificates is never served over plain HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import os
import ssl
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.errors import ConfigError

_TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                 "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Go's tls.CipherSuites() names for TLS 1.2 (the ones exporter-toolkit accepts) -> OpenSSL names.
_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
_TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                 "TLS_CHACHA20_POLY1305_SHA256"}
_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1",
           "X25519": "X25519"}
# client_auth_type -> verify mode. RequestClientCert and RequireAnyClientCert accept a client
# certificate without verifying it in Go; Python's ssl verifies every certificate it gets, so
# those two cannot be honoured and are refused rather than silently made stricter or looser.
_CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
_UNVERIFIED_AUTH = {"RequestClientCert", "RequireAnyClientCert", "RequireClientCert"}
# exporter-toolkit allows exactly these response headers, some with a fixed set of values.
_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None, "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": None,
    "Content-Security-Policy": None}
_TLS_KEYS = {"cert_file", "key_file", "cert", "key", "client_auth_type", "client_ca_file",
             "client_allowed_sans", "min_version", "max_version", "cipher_suites",
             "curve_preferences", "prefer_server_cipher_suites"}


@dataclass(frozen=True)
class WebConfig:
    """TLS settings, basic-auth users and response headers from --web.config.file."""

    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = None  # inline PEM
    key: str | None = None  # inline PEM
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    curve_preferences: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    http2: bool = True
    users: dict[str, bytes] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS."""
        return self.cert_file is not None or self.cert is not None


def load_web_config(path: str | Path) -> WebConfig:
    """Read and validate a web config file; every problem in one ConfigError."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError((f"{path}: {exc}",)) from exc
    if not isinstance(data, dict):
        raise ConfigError((f"{path}: expected a mapping",))
    problems: list[str] = []
    allowed = ("tls_server_config", "basic_auth_users", "http_server_config")
    problems.extend(f"{key}: unknown key" for key in data if key not in allowed)
    tls = _mapping(data, "tls_server_config", problems)
    http = _mapping(data, "http_server_config", problems)
    settings = _tls_settings(tls, Path(path).parent, problems) if "tls_server_config" in data \
        else {}
    settings.update(_http_settings(http, problems))
    users = _users(data.get("basic_auth_users") or {}, problems)
    config = WebConfig(users=users, **settings)  # type: ignore[arg-type]
    if not problems and config.tls:
        try:  # the files and PEM texts must make a working context, now rather than per client
            build_context(config)
        except (OSError, ssl.SSLError, ValueError) as exc:
            problems.append(f"tls_server_config: cannot build a TLS context: {exc}")
    if problems:
        raise ConfigError(tuple(f"{path}: {p}" for p in problems))
    return config


def _mapping(data: dict[str, object], key: str, problems: list[str]) -> dict[str, object]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: expected a mapping")
        return {}
    return value


def _strings(tls: dict[str, object], key: str, problems: list[str]) -> tuple[str, ...]:
    value = tls.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"tls_server_config.{key}: expected a list of strings")
        return ()
    return tuple(value)


def _tls_settings(tls: dict[str, object], base: Path,
                  problems: list[str]) -> dict[str, object]:
    for key in tls:
        if key not in _TLS_KEYS:
            problems.append(f"tls_server_config.{key}: unknown key")
    for key in ("cert_file", "key_file", "cert", "key", "client_ca_file", "client_auth_type",
                "min_version", "max_version"):
        if tls.get(key) is not None and not isinstance(tls[key], str):
            problems.append(f"tls_server_config.{key}: expected a string")

    def resolve(key: str) -> str | None:
        value = tls.get(key)
        if not isinstance(value, str) or not value:
            return None
        resolved = value if os.path.isabs(value) else str(base / value)
        if not os.path.exists(resolved):
            problems.append(f"tls_server_config.{key}: file {resolved} not found")
        return resolved

    out: dict[str, object] = {
        "cert_file": resolve("cert_file"), "key_file": resolve("key_file"),
        "client_ca_file": resolve("client_ca_file"),
        "cert": tls.get("cert") or None, "key": tls.get("key") or None}
    for pem, path in (("cert", "cert_file"), ("key", "key_file")):
        if out[pem] is not None and out[path] is not None:
            problems.append(f"tls_server_config: {pem} and {path} are exclusive; give one")
    has_cert = out["cert"] is not None or out["cert_file"] is not None
    has_key = out["key"] is not None or out["key_file"] is not None
    if not has_cert:
        # Any TLS key without a certificate would otherwise mean plain HTTP (SPEC 4).
        problems.append("tls_server_config: cert_file (or cert) is required; without it the "
                        "exporter would serve plain HTTP (remove the section for plain HTTP)")
    elif not has_key:
        problems.append("tls_server_config: key_file (or key) is required with the certificate")
    _client_auth(tls, out, problems)
    _versions(tls, out, problems)
    _ciphers_and_curves(tls, out, problems)
    return out


def _client_auth(tls: dict[str, object], out: dict[str, object], problems: list[str]) -> None:
    auth = str(tls.get("client_auth_type") or "NoClientCert")
    out["client_auth_type"] = auth
    if auth in _UNVERIFIED_AUTH:
        problems.append(f"tls_server_config.client_auth_type: {auth} (accept a client "
                        "certificate without verifying it) is not supported; use "
                        "VerifyClientCertIfGiven or RequireAndVerifyClientCert with "
                        "client_ca_file")
    elif auth not in _CLIENT_AUTH:
        problems.append(f"tls_server_config.client_auth_type: unknown value {auth!r}; expected "
                        f"one of {', '.join(sorted(_CLIENT_AUTH))}")
    elif auth != "NoClientCert" and out["client_ca_file"] is None:
        problems.append(f"tls_server_config.client_ca_file: required with client_auth_type "
                        f"{auth} (the CA that signs the client certificates)")
    elif auth == "NoClientCert" and out["client_ca_file"] is not None:
        problems.append("tls_server_config.client_ca_file: given but client_auth_type is "
                        "NoClientCert; set client_auth_type: RequireAndVerifyClientCert")
    sans = _strings(tls, "client_allowed_sans", problems)
    out["client_allowed_sans"] = sans
    if sans and auth not in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        problems.append("tls_server_config.client_allowed_sans: needs client_auth_type "
                        "RequireAndVerifyClientCert (or VerifyClientCertIfGiven)")


def _versions(tls: dict[str, object], out: dict[str, object], problems: list[str]) -> None:
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        value = str(tls.get(key) or default)
        out[key] = value
        if value not in _TLS_VERSIONS:
            problems.append(f"tls_server_config.{key}: unknown value {value!r}; expected one "
                            f"of {', '.join(_TLS_VERSIONS)}")
    low, high = _TLS_VERSIONS.get(str(out["min_version"])), _TLS_VERSIONS.get(
        str(out["max_version"]))
    if low is not None and high is not None and low > high:
        problems.append("tls_server_config: min_version is above max_version")


def _ciphers_and_curves(tls: dict[str, object], out: dict[str, object],
                        problems: list[str]) -> None:
    suites = _strings(tls, "cipher_suites", problems)
    out["cipher_suites"] = suites
    for suite in suites:
        if suite in _TLS13_SUITES:
            problems.append(f"tls_server_config.cipher_suites: {suite} is a TLS 1.3 suite; "
                            "TLS 1.3 suites are not configurable (in Go either), remove it")
        elif suite not in _CIPHERS:
            problems.append(f"tls_server_config.cipher_suites: unknown or insecure suite "
                            f"{suite!r}; expected some of {', '.join(_CIPHERS)}")
    curves = _strings(tls, "curve_preferences", problems)
    out["curve_preferences"] = curves
    for curve in curves:
        if curve not in _CURVES:
            problems.append(f"tls_server_config.curve_preferences: unknown curve {curve!r}; "
                            f"expected one of {', '.join(_CURVES)}")
    if len(curves) > 1:
        problems.append("tls_server_config.curve_preferences: only one curve can be set (Python's "
                        "ssl module restricts key exchange to a single named curve); got "
                        f"{', '.join(curves)}")
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        problems.append("tls_server_config.prefer_server_cipher_suites: expected true or false")
        prefer = True
    out["prefer_server_cipher_suites"] = prefer


def _http_settings(http: dict[str, object], problems: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in http:
        if key not in ("headers", "http2"):
            problems.append(f"http_server_config.{key}: unknown key")
    http2 = http.get("http2", True)
    if not isinstance(http2, bool):
        problems.append("http_server_config.http2: expected true or false")
    else:
        out["http2"] = http2
    raw = http.get("headers") or {}
    if not isinstance(raw, dict):
        problems.append("http_server_config.headers: expected a mapping of header: value")
        return out
    canonical = {name.lower(): name for name in _HEADERS}
    headers: list[tuple[str, str]] = []
    for name, value in raw.items():
        known = canonical.get(str(name).lower())
        if known is None:
            problems.append(f"http_server_config.headers.{name}: this header cannot be set; "
                            f"allowed: {', '.join(_HEADERS)}")
            continue
        text = "" if value is None else str(value)
        values = _HEADERS[known]
        if any(ch in text for ch in "\r\n\0"):
            problems.append(f"http_server_config.headers.{name}: line breaks are not allowed")
        elif values is not None and text.lower() not in values:
            problems.append(f"http_server_config.headers.{name}: expected one of "
                            f"{', '.join(values)}, got {text!r}")
        elif text:  # blank means unset, as in exporter-toolkit
            headers.append((known, text))
    out["headers"] = tuple(headers)
    return out


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


@contextlib.contextmanager
def _pem_path(inline: str | None, path: str | None) -> Iterator[str | None]:
    """A path for ssl to read: the file itself, or the inline PEM in a private temporary file
    (an in-memory file on Linux) that exists only while the context loads it."""
    if inline is None:
        yield path
        return
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("drift-exporter-pem", os.MFD_CLOEXEC)
        try:
            os.write(fd, inline.encode())
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, name = tempfile.mkstemp(prefix="drift-exporter-", suffix=".pem")  # mode 0600
    try:
        os.write(fd, inline.encode())
        os.close(fd)
        yield name
    finally:
        os.unlink(name)


def build_context(config: WebConfig) -> ssl.SSLContext:
    """The server SSL context for a WebConfig with TLS, every TLS setting applied."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[config.min_version]
    context.maximum_version = _TLS_VERSIONS[config.max_version]
    with _pem_path(config.cert, config.cert_file) as cert, \
            _pem_path(config.key, config.key_file) as key:
        if cert is None or key is None:
            raise ValueError("TLS needs a certificate and its key")
        context.load_cert_chain(cert, key)
    if config.client_ca_file:
        context.load_verify_locations(config.client_ca_file)
    context.verify_mode = _CLIENT_AUTH[config.client_auth_type]
    if config.cipher_suites:
        context.set_ciphers(":".join(_CIPHERS[s] for s in config.cipher_suites))
    if config.curve_preferences:
        context.set_ecdh_curve(_CURVES[config.curve_preferences[0]])
    if config.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # Only HTTP/1.1 is spoken; announcing it makes an h2-capable client settle on it at once.
    context.set_alpn_protocols(["http/1.1"])
    return context


class TlsContext:
    """An SSL context that is rebuilt when the certificate files change."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._stamp = self._files_stamp()
        self._context = build_context(config)

    def _files_stamp(self) -> tuple[float, ...]:
        files = [f for f in (self.config.cert_file, self.config.key_file,
                             self.config.client_ca_file) if f]
        return tuple(os.stat(f).st_mtime for f in files)

    def current(self) -> ssl.SSLContext:
        """The context, rebuilt if a certificate file changed (old one kept on error)."""
        with self._lock:
            try:
                stamp = self._files_stamp()
                if stamp != self._stamp:
                    self._context = build_context(self.config)
                    self._stamp = stamp
            except (OSError, ssl.SSLError, ValueError):
                pass
            return self._context


def client_san_allowed(config: WebConfig, peer: Mapping[str, Any] | None) -> bool:
    """Whether the verified client certificate has a SAN listed in client_allowed_sans
    (DNS name, IP address, e-mail or URI, compared exactly; IPs in canonical form)."""
    if not config.client_allowed_sans:
        return True
    allowed = {_canonical_san(s) for s in config.client_allowed_sans}
    entries = (peer or {}).get("subjectAltName") or ()
    return any(isinstance(e, tuple) and len(e) == 2 and _canonical_san(str(e[1])) in allowed
               for e in entries)


def _canonical_san(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


_VERIFIED_MAX = 256
_verified: OrderedDict[bytes, None] = OrderedDict()
_verified_lock = threading.Lock()


def check_basic_auth(config: WebConfig, header: str | None) -> bool:
    """True when no users are configured or the Authorization header matches one.

    A successful bcrypt check is remembered (keyed by a SHA-256 of user, password and hash,
    as exporter-toolkit does) so a scraper's repeated requests cost microseconds; wrong
    passwords are never remembered and stay as slow as bcrypt makes them."""
    if not config.users:
        return True
    credentials = _credentials(header)
    if credentials is None:
        return False
    user, password = credentials
    hashed = config.users.get(user)
    if hashed is not None:
        key = hashlib.sha256(b"\0".join((user.encode(), password.encode(), hashed))).digest()
        with _verified_lock:
            if key in _verified:
                _verified.move_to_end(key)
                return True
    import bcrypt

    # An unknown user is checked against a dummy hash of the same cost, so a wrong user name
    # takes as long as a wrong password (no timing leak on user names).
    try:
        ok = bcrypt.checkpw(password.encode(), hashed or _dummy_hash(config))
    except ValueError:
        return False
    if not ok or hashed is None:
        return False
    with _verified_lock:
        _verified[key] = None
        while len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return True


def _credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


_dummy_hashes: dict[int, bytes] = {}


def _dummy_hash(config: WebConfig) -> bytes:
    import bcrypt

    first = next(iter(config.users.values()))
    try:
        cost = int(first.split(b"$")[2])
    except (IndexError, ValueError):
        cost = 10
    if cost not in _dummy_hashes:
        _dummy_hashes[cost] = bytes(bcrypt.hashpw(b"not a password", bcrypt.gensalt(cost)))
    return _dummy_hashes[cost]
