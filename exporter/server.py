"""HTTP surface: /metrics, /, /-/healthy, /-/ready, /-/reload, with optional TLS and basic auth.

Resource bounds: a listen backlog of LISTEN_BACKLOG; up to WAITING_MAX connections waiting for
a request without a thread; at most MAX_CONNECTIONS handler threads, each serving a connection
that has sent something; a request's line and headers (and a TLS handshake) must arrive within
REQUEST_TIMEOUT_SECONDS of the connection (or of the previous response on a kept-alive one).
"""

from __future__ import annotations

import contextlib
import gzip
import html
import io
import logging
import math
import resource
import selectors
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from exporter import __version__
from exporter.collector import OpenMetricsView
from exporter.state import ModelState
from exporter.webconfig import TlsContext, WebConfig, check_basic_auth, client_san_allowed

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024
MAX_CONNECTIONS = 128  # handler threads
WAITING_MAX = 1024  # connections held without a thread, waiting for a request
REQUEST_TIMEOUT_SECONDS = 10.0  # TLS handshake, or request line and headers
WRITE_TIMEOUT_SECONDS = 30.0  # sending one response
_TEXT = "text/plain; charset=utf-8"
_GET = ("GET", "HEAD")
_RELOAD = ("POST", "PUT")


@dataclass(frozen=True)
class _Active:
    """The web config in force and its TLS context; swapped whole on reload."""

    config: WebConfig
    tls: TlsContext | None


class _DeadlineReader(io.RawIOBase):
    """Socket reads that fail once a deadline has passed: a client trickling its headers a
    byte at a time cannot hold a connection longer than the deadline allows."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = math.inf

    def readable(self) -> bool:
        """Always: this is a reader."""
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Read what is available, waiting no longer than the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self.sock.settimeout(None if math.isinf(remaining) else remaining)
        return self.sock.recv_into(buffer)


@dataclass
class _Connection:
    """An accepted connection and what it was accepted under."""

    sock: socket.socket
    address: object
    active: _Active
    deadline: float  # when it must have sent (the rest of) a request
    secured: bool = False  # TLS handshake done


class _WaitingRoom:
    """Connections without a thread: new ones until their first bytes arrive, kept-alive ones
    between requests. A connection takes one of the MAX_CONNECTIONS handler threads only when
    it has something to read, so a silent client costs a file descriptor, not a thread, and is
    closed at its deadline."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        for end in (self.wake_r, self.wake_w):
            end.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.lock = threading.Lock()
        self.incoming: list[_Connection] = []
        self.waiting: dict[socket.socket, _Connection] = {}  # oldest first
        self.ready: deque[_Connection] = deque()
        self.drop: list[socket.socket] = []
        self.thread = threading.Thread(target=self._run, name="http-waiting", daemon=True)

    def capacity(self) -> int:
        """WAITING_MAX, or less when the open-file limit would not allow that many."""
        soft = _open_file_limit()
        return max(16, min(WAITING_MAX, (soft - MAX_CONNECTIONS - 64) // 2))

    def size(self) -> int:
        """Connections held (a racy read is fine: it only paces the accept loop)."""
        return len(self.incoming) + len(self.waiting) + len(self.ready)

    def add(self, connection: _Connection) -> None:
        """Hold a connection until it is readable (any thread)."""
        with self.lock:
            self.incoming.append(connection)
        self.wake()

    def wake(self) -> None:
        """Interrupt the wait: a connection came or a thread slot was freed."""
        with contextlib.suppress(OSError):
            self.wake_w.send(b"\0")

    def evict_oldest_silent(self, older_than: float) -> bool:
        """Close the longest-waiting connection if it has waited ``older_than`` seconds."""
        with self.lock:
            for sock, connection in self.waiting.items():
                if connection.deadline - REQUEST_TIMEOUT_SECONDS < time.monotonic() - older_than:
                    self.drop.append(sock)
                    self.wake()
                    return True
                return False
        return False

    def _run(self) -> None:
        while not self.server.closing.is_set():
            try:
                self._once()
            except Exception:  # the room must outlive any one connection's fault
                log.warning("HTTP waiting room error", exc_info=True)
                time.sleep(0.05)  # do not spin if the fault repeats
        for sock in list(self.waiting):
            self._take(sock, ready=False)
        for connection in self.ready:
            self.server.shutdown_request(connection.sock)
        self.selector.close()
        self.wake_r.close()
        self.wake_w.close()

    def _once(self) -> None:
        for key, _ in self.selector.select(0.2):
            if key.fileobj is self.wake_r:
                with contextlib.suppress(OSError):
                    self.wake_r.recv(4096)
                continue
            self._take(key.fileobj, ready=True)  # type: ignore[arg-type]
        with self.lock:
            incoming, self.incoming = self.incoming, []
            dropped, self.drop = self.drop, []
        for sock in dropped:
            self._take(sock, ready=False)
        for connection in incoming:
            pending = isinstance(connection.sock, ssl.SSLSocket) and connection.sock.pending()
            if pending:
                self.ready.append(connection)
                continue
            try:
                self.selector.register(connection.sock, selectors.EVENT_READ)
            except (OSError, ValueError):  # closed meanwhile
                self.server.shutdown_request(connection.sock)
                continue
            with self.lock:
                self.waiting[connection.sock] = connection
        now = time.monotonic()
        for sock, connection in list(self.waiting.items()):
            if connection.deadline > now:
                break  # deadlines grow in arrival order
            self._take(sock, ready=False)
        while self.ready and self.server.slots.acquire(blocking=False):
            self.server.start_worker(self.ready.popleft())

    def _take(self, sock: socket.socket, *, ready: bool) -> None:
        with self.lock:
            connection = self.waiting.pop(sock, None)
        if connection is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)
        if ready:
            self.ready.append(connection)
        else:
            self.server.shutdown_request(sock)


class _Server(HTTPServer):
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily,
                 web: Web) -> None:
        self.address_family = family
        self.web = web
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.closing = threading.Event()
        super().__init__(address, _Handler)  # type: ignore[arg-type]
        self.room = _WaitingRoom(self)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        # A full waiting room first sheds a connection that has been silent for 0.25 s;
        # failing that, accepting pauses and further clients wait in the listen backlog.
        while self.room.size() >= self.room.capacity() and not self.room.evict_oldest_silent(0.25):
            if self.closing.wait(0.01):
                self.shutdown_request(request)
                return
        self.room.add(_Connection(request, client_address, self.web.active,
                                  time.monotonic() + REQUEST_TIMEOUT_SECONDS))

    def start_worker(self, connection: _Connection) -> None:
        """Serve a readable connection on a thread of its own (a slot is already taken)."""
        thread = threading.Thread(target=self._serve, args=(connection,),
                                  name="http-connection", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            self._release()
            self.shutdown_request(connection.sock)

    def _release(self) -> None:
        self.slots.release()
        self.room.wake()

    def _serve(self, connection: _Connection) -> None:
        parked = False
        try:
            if connection.active.tls is not None and not connection.secured:
                connection.sock = self._handshake(connection.sock, connection.address,
                                                  connection.active)
                connection.secured = True
                parked = not connection.sock.pending()  # type: ignore[attr-defined]
            if not parked:
                handler = _Handler(connection.sock, connection.address, self, connection.active)
                parked = handler.parked
            if parked and not self.closing.is_set():
                connection.deadline = time.monotonic() + REQUEST_TIMEOUT_SECONDS
                self.room.add(connection)
            else:
                parked = False
        except _RejectedError:
            pass
        except Exception:  # noqa: BLE001 - one connection's failure is logged, never fatal
            parked = False
            self.handle_error(connection.sock, connection.address)
        finally:
            if not parked:
                self.shutdown_request(connection.sock)
            self._release()

    def _handshake(self, sock: socket.socket, client_address: object,
                   active: _Active) -> socket.socket:
        assert active.tls is not None
        sock.settimeout(REQUEST_TIMEOUT_SECONDS)
        try:
            tls_sock = active.tls.current().wrap_socket(sock, server_side=True,
                                                        do_handshake_on_connect=False)
            tls_sock.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed", extra={"client": _peer(client_address),
                                                     "error": str(exc)})
            sock.close()
            raise _RejectedError from exc
        if not client_san_allowed(active.config, tls_sock.getpeercert()):
            log.warning("client certificate has none of client_allowed_sans; connection closed",
                        extra={"client": _peer(client_address)})
            tls_sock.close()
            raise _RejectedError
        return tls_sock

    def handle_error(self, request: object, client_address: object) -> None:
        """One log line instead of socketserver's traceback on stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | TimeoutError):  # resets, broken pipes: the client's doing
            log.debug("connection error", extra={"client": _peer(client_address),
                                                  "error": repr(exc)})
        else:
            log.warning("request failed", exc_info=True,
                        extra={"client": _peer(client_address)})


def _open_file_limit() -> int:
    try:
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):
        return 1024


def _raise_open_file_limit() -> None:
    """Lift the soft open-file limit to the hard one, as Go programs (exporter-toolkit's
    exporters) do at start: each waiting connection holds a descriptor."""
    with contextlib.suppress(OSError, ValueError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class _RejectedError(Exception):
    """The connection was refused before HTTP (handshake or client certificate)."""


def _peer(client_address: object) -> str:
    if isinstance(client_address, tuple) and len(client_address) >= 2:
        return f"{client_address[0]}:{client_address[1]}"
    return str(client_address)


class Web:
    """The exporter's HTTP server, serving on a background thread."""

    def __init__(self, address: str, registry: CollectorRegistry,
                 states: Callable[[], list[ModelState]], ready: Callable[[], bool],
                 web_config: WebConfig | None = None, *,
                 reload: Callable[[], bool] | None = None) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        self.registry = registry
        self.states = states
        self.ready = ready
        self.reload = reload
        self.active = _Active(WebConfig(), None)
        self.set_web_config(web_config or WebConfig())
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        _raise_open_file_limit()
        self.server = _Server((host, int(port)), family, self)
        self.thread = threading.Thread(target=self.server.serve_forever, name="http",
                                       kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def web_config(self) -> WebConfig:
        """The web config in force."""
        return self.active.config

    def set_web_config(self, config: WebConfig) -> None:
        """Use ``config`` (TLS on or off, users, headers) for connections accepted from now on."""
        # http2 (default true) only allows HTTP/2; this server speaks HTTP/1.1, which every
        # client negotiates (TLS contexts announce only http/1.1 through ALPN).
        tls = TlsContext(config) if config.tls else None
        self.active = _Active(config, tls)  # one reference assignment: atomic for readers

    @property
    def host(self) -> str:
        """The bound host address."""
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server.server_address[1])

    def start(self) -> None:
        """Serve in the background."""
        self.server.room.thread.start()
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if self.server.room.thread.is_alive():
            self.server.room.thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server_version = f"drift-exporter/{__version__}"
    protocol_version = "HTTP/1.1"
    server: _Server

    def __init__(self, request: socket.socket, client_address: object, server: _Server,
                 active: _Active) -> None:
        self.active = active
        self.parked = False  # kept alive with nothing to read: back to the waiting room
        self.reader = _DeadlineReader(request)
        super().__init__(request, client_address, server)  # type: ignore[arg-type]

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self.buffered = io.BufferedReader(self.reader)
        self.rfile = self.buffered

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("http request", extra={"request": format % args,
                                         "client": _peer(self.client_address)})

    def handle(self) -> None:
        """Answer requests while the client has sent more; park the connection when idle."""
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            if not self._buffered():
                self.parked = True
                return
            self.handle_one_request()

    def _buffered(self) -> bool:
        # With the deadline already passed the reader cannot wait on the socket: peek returns
        # bytes already buffered (a pipelined request) or fails at once.
        self.reader.deadline = -math.inf
        try:
            return bool(self.buffered.peek(1))
        except OSError:
            return False

    def handle_one_request(self) -> None:
        """Read one request within the deadline and answer it."""
        self.reader.deadline = time.monotonic() + REQUEST_TIMEOUT_SECONDS
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            if self.server.web.active is not self.active:
                # The web config changed since this connection was accepted (users, TLS,
                # client CA): close it unanswered, as an idle keep-alive connection may be
                # closed, so the client reconnects under the new config.
                self.close_connection = True
                return
            self.reader.deadline = math.inf
            self.connection.settimeout(WRITE_TIMEOUT_SECONDS)
            self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def end_headers(self) -> None:
        for name, value in self.active.config.headers:
            self.send_header(name, value)
        super().end_headers()

    def _dispatch(self) -> None:
        if not check_basic_auth(self.active.config, self.headers.get("Authorization")):
            self._send(401, b"Unauthorized\n", _TEXT,
                       {"WWW-Authenticate": 'Basic realm="drift-exporter"'})
            return
        path = urlsplit(self.path).path
        routes: dict[str, tuple[tuple[str, ...], Callable[[], None]]] = {
            "/metrics": (_GET, self._metrics), "/": (_GET, self._landing),
            "/-/healthy": (_GET, lambda: self._send(200, b"Healthy\n", _TEXT)),
            "/-/ready": (_GET, self._ready), "/-/reload": (_RELOAD, self._reload)}
        route = routes.get(path)
        if route is None:
            self._send(404, b"Not found\n", _TEXT)
        elif self.command not in route[0]:
            self._send(405, b"Method not allowed\n", _TEXT, {"Allow": ", ".join(route[0])})
        else:
            route[1]()
        if self.command not in _GET:  # a body we did not read must not be taken for a request
            self.close_connection = True

    def _metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        source: CollectorRegistry | OpenMetricsView = self.server.web.registry
        names = parse_qs(urlsplit(self.path).query).get("name[]")
        if names:
            source = self.server.web.registry.restricted_registry(names)  # type: ignore[assignment]
        if content_type.startswith("application/openmetrics-text"):
            source = OpenMetricsView(source)
        body = encoder(source)  # type: ignore[arg-type]
        headers = {}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._send(200, body, content_type, headers)

    def _ready(self) -> None:
        if self.server.web.ready():
            self._send(200, b"Ready\n", _TEXT)
        else:
            self._send(503, b"Not ready\n", _TEXT)

    def _landing(self) -> None:
        body = landing_page(self.server.web.states()).encode()
        self._send(200, body, "text/html; charset=utf-8")

    def _reload(self) -> None:
        reload = self.server.web.reload
        if reload is None:
            self._send(403, b"Lifecycle API is not enabled.\n", _TEXT)
        elif reload():
            self._send(200, b"Reloaded\n", _TEXT)
        else:
            self._send(500, b"Reload failed; the running configuration stays in force "
                            b"(see the log)\n", _TEXT)

    def _send(self, code: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def alarm_text(state: ModelState) -> str:
    """The drift alarm of each window of a model: "RAISED (columns)", "down" or "off"."""
    parts = []
    for version in state.versions:
        alarm = version.alarm
        if alarm is None:
            continue
        if not alarm.scales:
            text = "off (reference too small)"
        else:
            text = f"RAISED ({', '.join(alarm.columns)})" if alarm.raised else "down"
        label = " ".join(part for part in (version.name if state.versioned else "",
                                           f"segment {version.segment}" if version.segment
                                           else "") if part)
        parts.append(f"{label}: {text}" if label else text)
    return "; ".join(parts) or "down"


def landing_page(states: list[ModelState]) -> str:
    """The HTML landing page: version, models, window sizes, alarm state, drifting features."""
    rows = []
    for state in states:
        snap = state.snapshot
        window = "not computed yet" if snap is None else f"{snap.window_rows} rows"
        drifting = [c.name for c in snap.features if c.detected] if snap else []
        if snap and snap.prediction is not None and snap.prediction.detected:
            drifting.append(f"the prediction ({snap.prediction.name})")
        drift_text = ", ".join(drifting) if drifting else "none"
        rows.append(f"<tr><td>{html.escape(state.name)}</td><td>{html.escape(window)}</td>"
                    f"<td>{html.escape(alarm_text(state))}</td>"
                    f"<td>{html.escape(drift_text)}</td></tr>")
    body = "\n".join(rows) or '<tr><td colspan="4">no models</td></tr>'
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>drift-exporter</title></head>
<body>
<h1>drift-exporter</h1>
<p>Version {html.escape(__version__)}</p>
<table border="1" cellpadding="4">
<tr><th>model</th><th>window</th><th>drift alarm</th><th>features drifting now</th></tr>
{body}
</table>
<p><a href="/metrics">Metrics</a> &middot; <a href="/-/healthy">Health</a> &middot;
<a href="/-/ready">Readiness</a></p>
</body></html>
"""
