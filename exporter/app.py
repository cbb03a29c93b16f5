"""Wiring and lifecycle: load references, start the ingest and compute workers, the watcher and
the HTTP server; reload the config on SIGHUP (or POST /-/reload); stop them all cleanly on
SIGTERM/SIGINT.

Reload (SPEC 4): a model whose ModelConfig equals the running one keeps its pipeline (window,
counters, file offsets); a new or changed model gets a new pipeline, its reference loaded on the
reload worker and its logs read as at start-up; a removed model is closed and its series
disappear. The new pipelines are swapped in by the ingest thread between two reads, so no
pipeline is read while it is replaced or closed; the compute thread skips pipelines that left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Gauge,
    Histogram,
)

from exporter import signals
from exporter.collector import DriftCollector, ModelState
from exporter.config import Config, ModelConfig, load_config
from exporter.errors import ConfigError, ExporterError
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.server import Web
from exporter.stats.allocator import limit_arenas, release_free_memory, use_system_arrow_pool
from exporter.watching import Watcher, watch_root
from exporter.webconfig import TlsContext, WebConfig, load_web_config

log = logging.getLogger(__name__)

RESCAN_SECONDS = 1.0  # rescan the globs at least this often (SPEC: at most every 2 s)
COMPUTE_TICK_SECONDS = 0.05
INGEST_COALESCE_SECONDS = 0.1  # read new lines at most this often
DEFAULT_LISTEN = ":9847"
SIGNAL_POLL_SECONDS = 0.1  # how often the main thread looks at what the signal handlers noted


@dataclass
class _Swap:
    """A validated reload waiting for the ingest thread to put it in force."""

    config: Config
    pipelines: list[ModelPipeline]  # the new list: kept objects and new ones, in config order
    added: list[ModelPipeline]
    removed: list[ModelPipeline]
    done: threading.Event = field(default_factory=threading.Event)


class App:
    """The running exporter."""

    def __init__(self, config: Config, listen: str = DEFAULT_LISTEN,
                 web_config: WebConfig | None = None, *, config_file: str | None = None,
                 web_config_file: str | None = None, enable_lifecycle: bool = False) -> None:
        self.config = config
        self.config_file = config_file
        self.web_config_file = web_config_file
        limit_arenas()  # before any thread of ours allocates
        use_system_arrow_pool()
        self.pipelines = [ModelPipeline(m, load_reference(m)) for m in config.models]
        release_free_memory()  # what reading the references left behind
        self._swap: _Swap | None = None
        self._swap_lock = threading.Lock()
        self._compute_lock = threading.Lock()  # a recomputation vs the swap of pipelines
        self._reload_lock = threading.Lock()  # one reload at a time (SIGHUP and HTTP)
        self._reload_wanted = threading.Event()
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
        self.reload_successful = Gauge(
            "drift_config_last_reload_successful",
            "1 when the last configuration reload succeeded (the start-up counts as one), else 0.",
            registry=self.registry)
        self.reload_timestamp = Gauge(
            "drift_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load (start-up or reload).",
            registry=self.registry)
        self.reload_successful.set(1)
        self.reload_timestamp.set(time.time())
        self.watcher = Watcher(_log_globs(config), self.wake)
        self.web = Web(listen, self.registry, self.states, self.ready.is_set, web_config,
                       reload=self.reload if enable_lifecycle else None)
        self.threads = [threading.Thread(target=self._ingest_loop, name="ingest", daemon=True),
                        threading.Thread(target=self._compute_loop, name="compute", daemon=True),
                        threading.Thread(target=self._reload_loop, name="reload", daemon=True)]

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
        fresh = list(self.pipelines)  # computed once right after their first read
        while not self.stop_event.is_set():
            fresh.extend(self._apply_swap())
            pipelines = self.pipelines
            present = [p.log_directory_present() for p in pipelines]
            for pipeline in pipelines:
                try:
                    pipeline.ingest()
                except Exception:
                    log.exception("ingest failed", extra={"model": pipeline.config.name})
            for pipeline in fresh:
                self._recompute(pipeline)
            fresh.clear()
            # Readiness is reached once, at start-up; a reload never takes it away (a model added
            # by a reload catches up while the others keep being served).
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
        with self._compute_lock:
            if pipeline not in self.pipelines:  # removed or replaced by a reload meanwhile
                return
            try:
                snapshots = pipeline.recompute(time.time(), force=force)
            except Exception:
                log.exception("recomputation failed", extra={"model": pipeline.config.name})
                return
            for snapshot in snapshots:
                self.update_duration.labels(pipeline.config.name).observe(
                    snapshot.duration_seconds)

    # -- reload ---------------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Ask the reload worker for a reload (returns at once; SIGHUP goes through here)."""
        self._reload_wanted.set()

    def _reload_loop(self) -> None:
        while not self.stop_event.is_set():
            if self._reload_wanted.wait(0.5):
                self._reload_wanted.clear()
                if not self.stop_event.is_set():
                    self.reload()

    def reload(self) -> bool:
        """Re-read the config (and web config) file and put it in force; False when refused.

        A refused reload changes nothing: every problem is logged on one line and the running
        configuration stays in force."""
        with self._reload_lock:
            try:
                done = self._reload()
            except Exception:
                log.exception("configuration reload failed; the running configuration stays")
                done = False
            self.reload_successful.set(1 if done else 0)
            if done:
                self.reload_timestamp.set(time.time())
            return done

    def _reload(self) -> bool:
        if self.config_file is None:
            log.error("configuration reload refused: the configuration was not read from a file")
            return False
        log.info("reloading the configuration", extra={"file": self.config_file})
        problems: list[str] = []
        config = web_config = None
        try:
            config = load_config(self.config_file)
        except ConfigError as exc:
            problems.extend(exc.problems)
        if self.web_config_file is not None:
            web_config = _load_web_config(self.web_config_file, problems)
        swap = self._plan(config, problems) if config is not None else None
        if problems or swap is None:
            _refuse(problems)
            if swap is not None:
                for pipeline in swap.added:
                    pipeline.close()
            return False
        if web_config is not None and web_config != self.web.web_config:
            self.web.set_web_config(web_config)
        with self._swap_lock:
            self._swap = swap
        self.wake.set()
        while not swap.done.wait(0.1):
            if self.stop_event.is_set():  # stopping: the swap may never be applied
                with self._swap_lock:
                    withdrawn = self._swap is swap  # else the ingest thread is applying it
                    if withdrawn:
                        self._swap = None
                if withdrawn:
                    for pipeline in swap.added:
                        pipeline.close()
                return False
        log.info("configuration reloaded", extra={
            "models": ",".join(m.name for m in swap.config.models),
            "started": ",".join(p.config.name for p in swap.added),
            "stopped": ",".join(p.config.name for p in swap.removed)})
        return True

    def _plan(self, config: Config, problems: list[str]) -> _Swap:
        """Keep the pipelines of unchanged models, build (load the references of) the others."""
        running = {p.config.name: p for p in self.pipelines}
        pipelines: list[ModelPipeline] = []
        added: list[ModelPipeline] = []
        for model in config.models:
            old = running.get(model.name)
            if old is not None and old.config == model:
                pipelines.append(old)
                continue
            pipeline = _new_pipeline(model, problems)
            if pipeline is not None:
                pipelines.append(pipeline)
                added.append(pipeline)
        release_free_memory()
        kept = {id(p) for p in pipelines}
        removed = [p for p in self.pipelines if id(p) not in kept]
        return _Swap(config, pipelines, added, removed)

    def _apply_swap(self) -> list[ModelPipeline]:
        """On the ingest thread: put a pending reload in force; returns the new pipelines."""
        with self._swap_lock:
            swap, self._swap = self._swap, None
        if swap is None:
            return []
        for pipeline in swap.added:
            pipeline.start()
        with self._compute_lock:
            self.pipelines = swap.pipelines
            self.config = swap.config
            for pipeline in swap.removed:  # a replaced model's durations start afresh too
                with contextlib.suppress(KeyError):
                    self.update_duration.remove(pipeline.config.name)
        for pipeline in swap.removed:
            pipeline.close()
        globs = _log_globs(swap.config)
        if sorted({watch_root(g) for g in globs}) != self.watcher.roots:
            self.watcher.stop()
            self.watcher = Watcher(globs, self.wake)
            self.watcher.start()
        swap.done.set()
        return swap.added

    def stop(self) -> None:
        """Turn unready, stop the workers and the server, release files."""
        self.ready.clear()
        self.stop_event.set()
        self.wake.set()
        self._reload_wanted.set()  # wakes the reload worker, which sees stop_event and ends
        for thread in self.threads:
            if thread.is_alive():
                thread.join(timeout=3)
        self.watcher.stop()
        self.web.stop()
        for pipeline in self.pipelines:
            pipeline.close()

    def run_until_signalled(self) -> int:
        """Start, reload on SIGHUP, block until SIGTERM or SIGINT, stop; returns the exit code."""
        received = signals.install()  # already installed by main(); here for other callers
        received.running()  # from here on, stop signals end the loop below instead of raising
        try:
            self.start()
            while not received.stop_requested:
                if received.take_reload():
                    log.info("SIGHUP received; reloading the configuration")
                    self.request_reload()
                time.sleep(SIGNAL_POLL_SECONDS)
            log.info("signal received; stopping", extra={"signal": received.stop_signal})
        finally:
            self.stop()
        log.info("stopped", extra={"pid": os.getpid()})
        return 0


def _log_globs(config: Config) -> list[str]:
    return [m.logs.path for m in config.models]


def _load_web_config(path: str, problems: list[str]) -> WebConfig | None:
    """The web config file, its certificate and key loaded once to prove them (None: invalid)."""
    try:
        web_config = load_web_config(path)
        if web_config.tls:
            TlsContext(web_config)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    except (OSError, ssl.SSLError, ValueError) as exc:
        problems.append(f"{path}: the TLS certificate or key cannot be loaded: {exc}")
        return None
    return web_config


def _new_pipeline(model: ModelConfig, problems: list[str]) -> ModelPipeline | None:
    try:
        return ModelPipeline(model, load_reference(model))
    except (ExporterError, OSError, ValueError) as exc:
        problems.append(f"model {model.name}: {exc}")
        return None


def _refuse(problems: list[str]) -> None:
    log.error("configuration reload refused; the running configuration stays in force",
              extra={"problems": " | ".join(problems) or "see the messages above",
                     "count": len(problems)})
