"""A webhook receiver for Alertmanager that prints one line per alert: the compose stack's
stand-in for Slack or email (`docker compose logs -f alert-log`).

    python alert_log.py --listen :8080
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SHOWN_LABELS = ("model", "feature", "severity", "instance")


def format_notification(payload: Mapping[str, Any], receiver_path: str = "") -> list[str]:
    """One line per alert of an Alertmanager webhook payload (version 4)."""
    lines = []
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        shown = " ".join(f"{k}={labels[k]}" for k in SHOWN_LABELS if k in labels)
        summary = alert.get("annotations", {}).get("summary", "")
        status = str(alert.get("status", payload.get("status", "?"))).upper()
        lines.append(f"{status:8} {labels.get('alertname', '?')} {shown}"
                     f"{' -> ' + receiver_path if receiver_path else ''}: {summary}")
    return lines


class Handler(BaseHTTPRequestHandler):
    """POST any path: the body is an Alertmanager notification."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_error(400, "expected a JSON body")
            return
        for line in format_notification(payload, self.path):
            print(line, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        return


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default=":8080", help="HOST:PORT (default :8080)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)  # every interface
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 in a container
    print(f"alert-log listening on {host or '0.0.0.0'}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
