"""Example inference service: trains the diabetes model at start-up, writes the reference once,
serves predictions and appends each one (inputs, output, timestamp, id) to a JSONL log through
``exporter_client``, which drift-exporter follows.

    python app.py --data-dir /data --listen 0.0.0.0:8000

Endpoints:
  POST /predict   {"instances": [{"age": 50, "sex": 1, "bmi": 27.1, ...}, ...]} or one
                  instance object; an instance may carry its own "request_id".
                  -> {"predictions": [{"request_id": "...", "prediction": 151.3}, ...]}
  POST /feedback  {"request_id": "...", "progression": 140.0} or {"labels": [those, ...]}:
                  the true outcome, learned later; appended to the feedback log.
  GET  /healthz   200 once the model is trained and the reference written.
  GET  /          what this is, as JSON.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import diabetes_model as diabetes
import pandas as pd
from flask import Flask, Response, jsonify, request
from sklearn.pipeline import Pipeline
from werkzeug.serving import make_server

from exporter_client import JsonlLogWriter, ParquetLogWriter

log = logging.getLogger("example-app")

MAX_INSTANCES = 1000  # per request


@dataclass(frozen=True)
class Paths:
    """Where the app writes, under one data directory (the volume shared with the exporter)."""

    predictions: Path
    feedback: Path
    reference: Path

    @classmethod
    def under(cls, data_dir: Path) -> Paths:
        """The layout the exporter config in deploy/ expects."""
        return cls(predictions=data_dir / "logs" / "predictions",
                   feedback=data_dir / "logs" / "feedback",
                   reference=data_dir / "reference" / f"{diabetes.MODEL_NAME}.parquet")


class BadRequestError(ValueError):
    """A request the service cannot answer; the message says why."""


def parse_instances(body: object) -> list[dict[str, Any]]:
    """The instances of a /predict body, each checked to have every feature as a number."""
    batch = isinstance(body, Mapping) and "instances" in body
    items = body["instances"] if batch else [body]  # type: ignore[index]
    if not isinstance(items, list) or not items:
        msg = "expected a JSON object of features or {\"instances\": [objects, ...]}"
        raise BadRequestError(msg)
    if len(items) > MAX_INSTANCES:
        msg = f"at most {MAX_INSTANCES} instances per request, got {len(items)}"
        raise BadRequestError(msg)
    instances = []
    for index, item in enumerate(items):
        where = f"instances[{index}]" if batch else "body"
        if not isinstance(item, Mapping):
            msg = f"{where}: expected an object of features"
            raise BadRequestError(msg)
        missing = [f for f in diabetes.FEATURES if f not in item]
        if missing:
            msg = f"{where}: missing feature(s) {', '.join(missing)}"
            raise BadRequestError(msg)
        row: dict[str, Any] = {}
        for name in diabetes.FEATURES:
            value = item[name]
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                msg = f"{where}.{name}: expected a finite number, got {value!r}"
                raise BadRequestError(msg)
            row[name] = value
        request_id = item.get(diabetes.ID)
        row[diabetes.ID] = str(request_id) if request_id is not None else uuid.uuid4().hex
        instances.append(row)
    return instances


def parse_labels(body: object) -> list[dict[str, Any]]:
    """The labels of a /feedback body: objects with a request_id and a numeric progression."""
    items = body.get("labels") if isinstance(body, Mapping) and "labels" in body else [body]
    if not isinstance(items, list) or not items:
        msg = "expected {\"request_id\": ..., \"progression\": ...} or {\"labels\": [...]}"
        raise BadRequestError(msg)
    labels = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or diabetes.ID not in item \
                or not isinstance(item.get(diabetes.TARGET), int | float) \
                or isinstance(item.get(diabetes.TARGET), bool):
            msg = f"labels[{index}]: expected request_id and a numeric {diabetes.TARGET}"
            raise BadRequestError(msg)
        labels.append({diabetes.ID: str(item[diabetes.ID]),
                       diabetes.TARGET: float(item[diabetes.TARGET]),
                       diabetes.TIMESTAMP: time.time()})
    return labels


def open_writer(directory: Path, log_format: str, prefix: str, keep_files: int | None,
                max_bytes: int) -> JsonlLogWriter | ParquetLogWriter:
    """The writer for one log directory."""
    if log_format == "parquet":
        return ParquetLogWriter(directory, prefix=prefix, batch_rows=500, max_age=5.0,
                                keep_files=keep_files)
    return JsonlLogWriter(directory, prefix=prefix, max_bytes=max_bytes, max_age=3600.0,
                          keep_files=keep_files)


def write_reference(data_dir: Path) -> tuple[Pipeline, Path]:
    """Train the model and write the reference unless it exists; return both."""
    paths = Paths.under(data_dir)
    frame = diabetes.load_data()
    model = diabetes.train(frame)
    if diabetes.write_reference_once(paths.reference, diabetes.reference_frame(model, frame)):
        log.info("reference written to %s", paths.reference)
    else:
        log.info("reference %s exists; kept", paths.reference)
    return model, paths.reference


def create_app(data_dir: Path, *, log_format: str = "jsonl", keep_files: int | None = 50,
               max_bytes: int = 16 * 1024 * 1024) -> Flask:
    """Train the model, write the reference once, open the logs; return the Flask app."""
    paths = Paths.under(data_dir)
    model, _ = write_reference(data_dir)
    predictions = open_writer(paths.predictions, log_format, "predictions", keep_files,
                              max_bytes)
    feedback = open_writer(paths.feedback, log_format, "feedback", keep_files, max_bytes)

    app = Flask("example-app")
    app.config["writers"] = (predictions, feedback)
    app.config["paths"] = paths

    @app.errorhandler(BadRequestError)
    def bad_request(error: BadRequestError) -> tuple[Response, int]:
        return jsonify(error=str(error)), 400

    @app.post("/predict")
    def predict() -> Response:
        instances = parse_instances(request.get_json(force=True, silent=True))
        rows = pd.DataFrame(instances)
        outputs = diabetes.predict(model, rows)
        now = time.time()
        answer = []
        for instance, output in zip(instances, outputs, strict=True):
            prediction = round(float(output), 4)
            predictions.write({**instance, diabetes.PREDICTION: prediction,
                               diabetes.TIMESTAMP: now,
                               "model_version": diabetes.MODEL_VERSION})
            answer.append({diabetes.ID: instance[diabetes.ID], diabetes.PREDICTION: prediction})
        return jsonify(predictions=answer)

    @app.post("/feedback")
    def receive_feedback() -> Response:
        labels = parse_labels(request.get_json(force=True, silent=True))
        for label in labels:
            feedback.write(label)
        return jsonify(accepted=len(labels))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", model=diabetes.MODEL_NAME, version=diabetes.MODEL_VERSION)

    @app.get("/")
    def index() -> Response:
        return jsonify(model=diabetes.MODEL_NAME, version=diabetes.MODEL_VERSION,
                       features=list(diabetes.FEATURES), predictions_log=str(paths.predictions),
                       feedback_log=str(paths.feedback), reference=str(paths.reference))

    return app


def close_app(app: Flask) -> None:
    """Close the app's log writers (Parquet mode writes its last batch)."""
    for writer in app.config["writers"]:
        writer.close()


def split_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (HOST may be empty for every interface) -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host or "0.0.0.0", int(port)  # a container serves on every interface


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/data"),
                        help="volume shared with the exporter (default /data)")
    parser.add_argument("--listen", default=":8000", help="HOST:PORT (default :8000)")
    parser.add_argument("--log-format", choices=("jsonl", "parquet"), default="jsonl")
    parser.add_argument("--keep-files", type=int, default=50,
                        help="log files kept per log (oldest deleted; 0 keeps all)")
    parser.add_argument("--max-log-bytes", type=int, default=16 * 1024 * 1024,
                        help="roll over to a new JSONL file at this size")
    parser.add_argument("--write-reference-only", action="store_true",
                        help="train, write the reference unless it exists, and exit "
                             "(a Kubernetes init container, so the exporter finds it)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.write_reference_only:
        write_reference(args.data_dir)
        return 0
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app = create_app(args.data_dir, log_format=args.log_format,
                     keep_files=args.keep_files or None, max_bytes=args.max_log_bytes)
    host, port = split_listen(args.listen)
    server = make_server(host, port, app, threaded=True)
    log.info("serving %s on %s:%d", diabetes.MODEL_NAME, host, server.server_port)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        close_app(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
