"""Wiring and lifecycle: load references, start the ingest and compute workers, the watcher and
the HTTP server; reload the config on SIGHUP (or POST /-/reload); stop them all cleanly on
SIGTERM/SIGINT.

Each model runs as a ``RunningModel``: its ``ModelSource`` (the files) feeds its ``ModelPipeline``
(the core, which reads no file and no clock) on the ingest thread with the wall clock as ``now``;
the compute thread asks the pipeline whether it is due and recomputes it at the wall clock.

Reload (SPEC 4): a model whose ModelConfig equals the running one keeps its pipeline (window,
counters) and its source (file offsets); a new or changed model gets a new pipeline and source,
its reference loaded on the reload worker and its logs read as at start-up; a removed model is
closed and its series disappear. The new models are swapped in by the ingest thread between two
reads, so no model is read while it is replaced or closed; the compute thread skips models that
left.
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
from exporter.collector import DriftCollector
from exporter.config import Config, ModelConfig, load_config
from exporter.errors import ConfigError, ExporterError
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.server import Web
from exporter.sources import ModelSource, feed
from exporter.state import ModelState
from exporter.stats.allocator import limit_arenas, release_free_memory, use_system_arrow_pool
from exporter.watching import Watcher, watch_root
from exporter.webconfig import TlsContext, WebConfig, load_web_config

log = logging.getLogger(__name__)

RESCAN_SECONDS = 1.0  # rescan the globs at least this often (SPEC: at most every 2 s)
COMPUTE_TICK_SECONDS = 0.05
INGEST_COALESCE_SECONDS = 0.1  # read new lines at most this often
DEFAULT_LISTEN = ":9847"
SIGNAL_POLL_SECONDS = 0.1  # how often the main thread looks at what the signal handlers noted


@dataclass(frozen=True, eq=False)  # identity: a reload keeps or replaces the very object
class RunningModel:
    """One configured model: its files (source) feeding its pipeline core."""

    pipeline: ModelPipeline
    source: ModelSource

    @classmethod
    def build(cls, config: ModelConfig) -> RunningModel:
        """Load the model's reference and set up its pipeline and source (no file read yet)."""
        pipeline = ModelPipeline(config, load_reference(config))
        return cls(pipeline, ModelSource.of(pipeline))

    @property
    def config(self) -> ModelConfig:
        """The model's configuration."""
        return self.pipeline.config

    def close(self) -> None:
        """Release the source's file descriptors."""
        self.source.close()


@dataclass
class _Swap:
    """A validated reload waiting for the ingest thread to put it in force."""

    config: Config
    models: list[RunningModel]  # the new list: kept objects and new ones, in config order
    added: list[RunningModel]
    removed: list[RunningModel]
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
        self.models = [RunningModel.build(m) for m in config.models]
        release_free_memory()  # what reading the references left behind
        self._swap: _Swap | None = None
        self._swap_lock = threading.Lock()
        self._compute_lock = threading.Lock()  # a recomputation vs the swap of models
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
        return [m.pipeline.state() for m in self.models]

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
        for model in self.models:
            model.source.start(time.time())
        fresh = list(self.models)  # computed once right after their first read
        while not self.stop_event.is_set():
            fresh.extend(self._apply_swap())
            models = self.models
            present = [m.source.log_directory_present() for m in models]
            for model in models:
                try:
                    feed(model.source, model.pipeline, time.time)
                except Exception:
                    log.exception("ingest failed", extra={"model": model.config.name})
            for model in fresh:
                self._recompute(model)
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
            for model in self.models:
                if model.pipeline.due(now):
                    self._recompute(model, force=False)

    def _recompute(self, model: RunningModel, *, force: bool = True) -> None:
        with self._compute_lock:
            if model not in self.models:  # removed or replaced by a reload meanwhile
                return
            try:
                snapshots = model.pipeline.recompute(time.time(), force=force)
            except Exception:
                log.exception("recomputation failed", extra={"model": model.config.name})
                return
            for snapshot in snapshots:
                self.update_duration.labels(model.config.name).observe(
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

    def _swap_web_config(self, web_config: WebConfig, problems: list[str]) -> None:
        if web_config == self.web.web_config:
            return
        try:  # certificate files may change between loading and swapping
            self.web.set_web_config(web_config)
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"{self.web_config_file}: {exc}")

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
        if not problems and web_config is not None:
            self._swap_web_config(web_config, problems)
        if problems or swap is None:
            _refuse(self.config_file, problems)
            if swap is not None:
                for model in swap.added:
                    model.close()
            return False
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
                    for model in swap.added:
                        model.close()
                return False
        log.info("configuration reloaded", extra={
            "models": ",".join(m.name for m in swap.config.models),
            "started": ",".join(m.config.name for m in swap.added),
            "stopped": ",".join(m.config.name for m in swap.removed)})
        return True

    def _plan(self, config: Config, problems: list[str]) -> _Swap:
        """Keep unchanged models (pipeline and source), build (load the references of) the
        others."""
        running = {m.config.name: m for m in self.models}
        models: list[RunningModel] = []
        added: list[RunningModel] = []
        for model_config in config.models:
            old = running.get(model_config.name)
            if old is not None and old.config == model_config:
                models.append(old)
                continue
            model = _new_model(model_config, problems)
            if model is not None:
                models.append(model)
                added.append(model)
        release_free_memory()
        kept = {id(m) for m in models}
        removed = [m for m in self.models if id(m) not in kept]
        return _Swap(config, models, added, removed)

    def _apply_swap(self) -> list[RunningModel]:
        """On the ingest thread: put a pending reload in force; returns the new models."""
        with self._swap_lock:
            swap, self._swap = self._swap, None
        if swap is None:
            return []
        for model in swap.added:
            model.source.start(time.time())
        with self._compute_lock:
            self.models = swap.models
            self.config = swap.config
            for model in swap.removed:  # a replaced model's durations start afresh too
                with contextlib.suppress(KeyError):
                    self.update_duration.remove(model.config.name)
        for model in swap.removed:
            model.close()
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
        for model in self.models:
            model.close()

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


def _new_model(model: ModelConfig, problems: list[str]) -> RunningModel | None:
    try:
        return RunningModel.build(model)
    except (ExporterError, OSError, ValueError) as exc:
        problems.append(f"model {model.name}: {exc}")
        return None


def _refuse(config_file: str, problems: list[str]) -> None:
    """One log line listing every problem (as `check` would print them)."""
    log.error("configuration reload refused; the running configuration stays in force",
              extra={"file": config_file, "count": len(problems),
                     "problems": " | ".join(problems) or "see the messages above"})
