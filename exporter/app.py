"""Wiring and lifecycle: load references, start the ingest and compute workers, the watcher and
the HTTP server; stop them all cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Gauge,
    Histogram,
)

from exporter.collector import DriftCollector, ModelState
from exporter.config import Config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.server import Web
from exporter.stats.allocator import limit_arenas, release_free_memory, use_system_arrow_pool
from exporter.watching import Watcher
from exporter.webconfig import WebConfig

log = logging.getLogger(__name__)

RESCAN_SECONDS = 1.0  # rescan the globs at least this often (SPEC: at most every 2 s)
COMPUTE_TICK_SECONDS = 0.05
INGEST_COALESCE_SECONDS = 0.1  # read new lines at most this often
DEFAULT_LISTEN = ":9847"


class App:
    """The running exporter."""

    def __init__(self, config: Config, listen: str = DEFAULT_LISTEN,
                 web_config: WebConfig | None = None) -> None:
        self.config = config
        limit_arenas()  # before any thread of ours allocates
        use_system_arrow_pool()
        self.pipelines = [ModelPipeline(m, load_reference(m)) for m in config.models]
        release_free_memory()  # what reading the references left behind
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.ready = threading.Event()
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.registry.register(DriftCollector(self.states))
        self.update_duration = Histogram(
            "drift_update_duration_seconds", "How long a recomputation of the statistics took.",
            ["model"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.polling_only = Gauge(
            "drift_exporter_polling_fallback",
            "1 when filesystem events are unavailable and files are found by rescans alone.",
            registry=self.registry)
        self.watcher = Watcher([m.logs.path for m in config.models], self.wake)
        self.web = Web(listen, self.registry, self.states, self.ready.is_set, web_config)
        self.threads = [threading.Thread(target=self._ingest_loop, name="ingest", daemon=True),
                        threading.Thread(target=self._compute_loop, name="compute", daemon=True)]

    def states(self) -> list[ModelState]:
        """The models' current states, for the collector and the landing page."""
        return [p.state() for p in self.pipelines]

    def start(self) -> None:
        """Start serving and following the logs."""
        self.web.start()
        self.watcher.start()
        self.polling_only.set(1 if self.watcher.failed else 0)
        for thread in self.threads:
            thread.start()
        log.info("drift-exporter started", extra={
            "listen": f"{self.web.host}:{self.web.port}",
            "models": ",".join(m.name for m in self.config.models)})

    def _ingest_loop(self) -> None:
        for pipeline in self.pipelines:
            pipeline.start()
        first = True
        while not self.stop_event.is_set():
            present = [p.log_directory_present() for p in self.pipelines]
            for pipeline in self.pipelines:
                try:
                    pipeline.ingest()
                except Exception:
                    log.exception("ingest failed", extra={"model": pipeline.config.name})
            if first:
                for pipeline in self.pipelines:
                    self._recompute(pipeline)
                first = False
            if all(present) and not self.ready.is_set() and not self.stop_event.is_set():
                self.ready.set()
                log.info("existing logs read; ready")
            self.watcher.refresh()
            self.polling_only.set(1 if self.watcher.failed else 0)
            started = time.monotonic()
            self.wake.wait(RESCAN_SECONDS)
            # Coalesce: a writer appending every few milliseconds sends an event per write;
            # reading at most every INGEST_COALESCE_SECONDS turns them into fewer, larger
            # batches (per-batch costs dominate small ones) at that much latency.
            self.stop_event.wait(max(0.0, INGEST_COALESCE_SECONDS
                                     - (time.monotonic() - started)))
            self.wake.clear()

    def _compute_loop(self) -> None:
        while not self.stop_event.wait(COMPUTE_TICK_SECONDS):
            if not self.ready.is_set():
                continue
            now = time.time()
            for pipeline in self.pipelines:
                if pipeline.due(now):
                    self._recompute(pipeline, force=False)

    def _recompute(self, pipeline: ModelPipeline, *, force: bool = True) -> None:
        try:
            snapshots = pipeline.recompute(time.time(), force=force)
        except Exception:
            log.exception("recomputation failed", extra={"model": pipeline.config.name})
            return
        for snapshot in snapshots:
            self.update_duration.labels(pipeline.config.name).observe(snapshot.duration_seconds)

    def stop(self) -> None:
        """Turn unready, stop the workers and the server, release files."""
        self.ready.clear()
        self.stop_event.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout=3)
        self.watcher.stop()
        self.web.stop()
        for pipeline in self.pipelines:
            pipeline.close()

    def run_until_signalled(self) -> int:
        """Start, block until SIGTERM or SIGINT, stop; returns the exit code."""
        stopping = threading.Event()

        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("signal received; stopping", extra={"signal": signal.Signals(signum).name})
            stopping.set()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not stopping.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, old in previous.items():
                signal.signal(sig, old)
        log.info("stopped", extra={"pid": os.getpid()})
        return 0
