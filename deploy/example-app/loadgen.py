"""Load generator for the example app: sends patients drawn from the diabetes data to
/predict at a steady rate, reports their true outcome to /feedback a little later, and shifts
the input distribution while told to.

    python loadgen.py --url http://app:8000 --rate 20 --control :8001

Control (HTTP on --control):
  POST /shift      start sending the shifted population (see diabetes_model.shift)
  DELETE /shift    back to the original population
  GET  /shift      {"shift": true|false}
  GET  /stats      requests, records and errors so far
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

import diabetes_model as diabetes
import numpy as np
import pandas as pd

log = logging.getLogger("loadgen")
HTTP_TIMEOUT = 5.0
RETRY_SECONDS = 1.0


@dataclass
class Stats:
    """What the generator has done so far (read by /stats)."""

    requests: int = 0
    records: int = 0
    shifted_records: int = 0
    feedback: int = 0
    errors: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        with self.lock:
            return {"requests": self.requests, "records": self.records,
                    "shifted_records": self.shifted_records, "feedback": self.feedback,
                    "errors": self.errors, "last_error": self.last_error}


def post_json(url: str, body: object) -> Any:
    """POST a JSON body, return the decoded JSON answer (urllib errors propagate)."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as response:
        return json.loads(response.read())


class LoadGenerator:
    """Sends batches of predictions; the true outcome follows after ``feedback_delay``."""

    def __init__(self, url: str, *, rate: float, batch: int, feedback_delay: float,
                 seed: int = 0, data: pd.DataFrame | None = None) -> None:
        self.url = url.rstrip("/")
        self.rate = rate
        self.batch = batch
        self.feedback_delay = feedback_delay
        self.rng = np.random.default_rng(seed)
        self.data = diabetes.load_data() if data is None else data
        self.shift = threading.Event()
        self.stats = Stats()
        self._pending: deque[tuple[float, dict[str, Any]]] = deque()
        self._sequence = 0
        self._run = f"{int(self.rng.integers(16**6)):06x}-{int(time.time()) % 100000}"

    def step(self, now: float) -> None:
        """One request of ``batch`` instances, then any feedback that is due."""
        shifted = self.shift.is_set()
        rows = diabetes.sample(self.data, self.rng, self.batch, shifted=shifted)
        instances = []
        for row in rows.to_dict("records"):
            self._sequence += 1
            instance = {name: row[name] for name in diabetes.FEATURES}
            instance[diabetes.ID] = f"lg-{self._run}-{self._sequence}"
            instances.append(instance)
        answer = post_json(f"{self.url}/predict", {"instances": instances})
        with self.stats.lock:
            self.stats.requests += 1
            self.stats.records += len(answer["predictions"])
            self.stats.shifted_records += len(instances) if shifted else 0
        for instance, row in zip(instances, rows.to_dict("records"), strict=True):
            self._pending.append((now + self.feedback_delay,
                                  {diabetes.ID: instance[diabetes.ID],
                                   diabetes.TARGET: float(row[diabetes.TARGET])}))
        self.send_due_feedback(now)

    def send_due_feedback(self, now: float) -> None:
        """Report the outcomes whose delay has passed."""
        due = []
        while self._pending and self._pending[0][0] <= now:
            due.append(self._pending.popleft()[1])
        if due:
            post_json(f"{self.url}/feedback", {"labels": due})
            with self.stats.lock:
                self.stats.feedback += len(due)

    def run(self, stop: threading.Event, duration: float = 0.0, max_requests: int = 0) -> None:
        """Send at ``rate`` records per second until ``stop``, ``duration`` or ``max_requests``."""
        started = time.monotonic()
        next_at = started
        period = self.batch / self.rate
        while not stop.is_set():
            if duration and time.monotonic() - started >= duration:
                break
            if max_requests and self.stats.requests >= max_requests:
                break
            try:
                self.step(time.time())
            except (OSError, ValueError, KeyError) as exc:  # app not up yet, or restarting
                with self.stats.lock:
                    self.stats.errors += 1
                    self.stats.last_error = str(exc)
                log.warning("request failed (%s); retrying in %gs", exc, RETRY_SECONDS)
                stop.wait(RETRY_SECONDS)
                next_at = time.monotonic()
                continue
            next_at += period
            stop.wait(max(0.0, next_at - time.monotonic()))


def control_server(generator: LoadGenerator, host: str, port: int) -> ThreadingHTTPServer:
    """The HTTP control endpoint (not started)."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _shift(self, on: bool | None) -> None:
            if self.path.split("?")[0] != "/shift":
                self._answer(404, {"error": f"no such path {self.path}"})
                return
            if on is not None:
                if on != generator.shift.is_set():
                    log.info("input shift %s", "on" if on else "off")
                (generator.shift.set if on else generator.shift.clear)()
            self._answer(200, {"shift": generator.shift.is_set()})

        def do_GET(self) -> None:
            if self.path == "/stats":
                self._answer(200, {**generator.stats.as_dict(),
                                   "shift": generator.shift.is_set()})
            elif self.path == "/healthz":
                self._answer(200, {"status": "ok"})
            else:
                self._shift(None)

        def do_POST(self) -> None:
            self._shift(True)

        def do_PUT(self) -> None:
            self._shift(True)

        def do_DELETE(self) -> None:
            self._shift(False)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return  # quiet: /shift changes are logged above

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Generate load until SIGTERM/SIGINT (or --duration)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:8000", help="the example app")
    parser.add_argument("--rate", type=float, default=20.0, help="predictions per second")
    parser.add_argument("--batch", type=int, default=5, help="instances per /predict request")
    parser.add_argument("--feedback-delay", type=float, default=10.0,
                        help="seconds before the true outcome is reported")
    parser.add_argument("--control", default=":8001",
                        help="HOST:PORT of the control endpoint; empty for none")
    parser.add_argument("--shift", action="store_true", help="start with the shifted inputs")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (0: run until stopped)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    generator = LoadGenerator(args.url, rate=args.rate, batch=args.batch,
                              feedback_delay=args.feedback_delay, seed=args.seed)
    if args.shift:
        generator.shift.set()
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    server = None
    if args.control:
        host, _, port = args.control.rpartition(":")
        server = control_server(generator, host or "0.0.0.0", int(port))  # every interface
        threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
        log.info("control on %s:%d (POST/DELETE /shift)", host or "0.0.0.0",
                 server.server_port)
    log.info("sending %g predictions/s to %s", args.rate, args.url)
    try:
        generator.run(stop, duration=args.duration)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    log.info("stopped: %s", generator.stats.as_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
