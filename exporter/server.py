"""HTTP surface: /metrics, /, /-/healthy, /-/ready, with optional TLS and basic auth."""

from __future__ import annotations

import html
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.collector import ModelState, OpenMetricsView
from exporter.webconfig import TlsContext, WebConfig, check_basic_auth

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: TlsContext | None = None

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        if self.tls is not None:
            sock.settimeout(10)
            try:
                sock = self.tls.current().wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                sock.close()
                raise
        return sock, addr


class Web:
    """The exporter's HTTP server, serving on a background thread."""

    def __init__(self, address: str, registry: CollectorRegistry,
                 states: Callable[[], list[ModelState]], ready: Callable[[], bool],
                 web_config: WebConfig | None = None) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        self.registry = registry
        self.states = states
        self.ready = ready
        self.web_config = web_config or WebConfig()
        handler = self._handler_class()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        _Server.address_family = family
        self.server = _Server((host, int(port)), handler)
        if self.web_config.tls:
            self.server.tls = TlsContext(self.web_config)
        self.thread = threading.Thread(target=self.server.serve_forever, name="http",
                                       kwargs={"poll_interval": 0.2}, daemon=True)

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
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        web = self

        class Handler(BaseHTTPRequestHandler):
            server_version = f"drift-exporter/{__version__}"
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("http request", extra={"request": format % args})

            def do_GET(self) -> None:
                if not check_basic_auth(web.web_config, self.headers.get("Authorization")):
                    self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8",
                               {"WWW-Authenticate": 'Basic realm="drift-exporter"'})
                    return
                path = urlsplit(self.path).path
                if path == "/metrics":
                    encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                    source: CollectorRegistry | OpenMetricsView = web.registry
                    if content_type.startswith("application/openmetrics-text"):
                        source = OpenMetricsView(web.registry)
                    self._send(200, encoder(source), content_type)  # type: ignore[arg-type]
                elif path == "/-/healthy":
                    self._send(200, b"Healthy\n", "text/plain; charset=utf-8")
                elif path == "/-/ready":
                    if web.ready():
                        self._send(200, b"Ready\n", "text/plain; charset=utf-8")
                    else:
                        self._send(503, b"Not ready\n", "text/plain; charset=utf-8")
                elif path == "/":
                    self._send(200, landing_page(web.states()).encode(),
                               "text/html; charset=utf-8")
                else:
                    self._send(404, b"Not found\n", "text/plain; charset=utf-8")

            def _send(self, code: int, body: bytes, content_type: str,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


def landing_page(states: list[ModelState]) -> str:
    """The HTML landing page: version, models, window sizes, drifting features."""
    rows = []
    for state in states:
        snap = state.snapshot
        window = "not computed yet" if snap is None else f"{snap.window_rows} rows"
        drifting = [c.name for c in snap.features if c.detected] if snap else []
        if snap and snap.prediction is not None and snap.prediction.detected:
            drifting.append(f"the prediction ({snap.prediction.name})")
        drift_text = ", ".join(drifting) if drifting else "none"
        rows.append(f"<tr><td>{html.escape(state.name)}</td><td>{html.escape(window)}</td>"
                    f"<td>{html.escape(drift_text)}</td></tr>")
    body = "\n".join(rows) or '<tr><td colspan="3">no models</td></tr>'
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>drift-exporter</title></head>
<body>
<h1>drift-exporter</h1>
<p>Version {html.escape(__version__)}</p>
<table border="1" cellpadding="4">
<tr><th>model</th><th>window</th><th>features drifting now</th></tr>
{body}
</table>
<p><a href="/metrics">Metrics</a> &middot; <a href="/-/healthy">Health</a> &middot;
<a href="/-/ready">Readiness</a></p>
</body></html>
"""
