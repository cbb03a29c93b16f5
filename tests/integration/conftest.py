"""Fixtures that start real processes: the exporter (``drift-exporter run``) and Prometheus.

On a failing test the stderr of every exporter it started is attached to the report.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from harness import (
    STARTED,
    Exporter,
    Prometheus,
    free_port,
    start_exporter,
    start_prometheus,
)

ExporterFactory = Callable[..., Exporter]
PrometheusFactory = Callable[[Mapping[str, str]], Prometheus]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the exporters' stderr to the report of a failing phase."""
    report = yield
    if report.failed:
        for exporter in item.stash.get(STARTED, []):
            text = exporter.stderr()[-20000:]
            report.sections.append((f"stderr of {exporter.config_path.name}", text))
    return report


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture
def exporter(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ExporterFactory]:
    """Factory: ``exporter(config, wait=True, extra=())`` starts ``drift-exporter run``.

    The config (a dict in the SPEC 3 format) is written as YAML into tmp_path; the process
    listens on a free loopback port and, unless ``wait=False``, is ready when returned. On
    teardown each exporter gets SIGTERM and must exit with code 0 within 5 seconds.
    """
    started = request.node.stash.setdefault(STARTED, [])

    def start(config: Mapping[str, Any], *, wait: bool = True,
              extra: Iterable[str] = ()) -> Exporter:
        process = start_exporter(tmp_path, config, free_port(), tag=f"exporter{len(started)}",
                                 extra=extra)
        started.append(process)
        if wait:
            process.wait_ready()
        return process

    yield start
    problems = []
    for process in started:
        early = process.proc.poll()
        code, took = process.stop()
        if process.death_reported:
            continue  # the test already failed on it, with its stderr
        if early is not None and early != 0:
            what = f"had exited with code {early} before the teardown's SIGTERM"
        elif code != 0:
            what = f"exit code {code} {took:.1f}s after SIGTERM (expected 0 within 5s)"
        else:
            continue
        problems.append(f"{process.config_path.name}: {what}\n{process.stderr()[-4000:]}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Factory: ``prometheus({job: "127.0.0.1:port"})`` starts a ready Prometheus server."""
    servers: list[Prometheus] = []

    def start(targets: Mapping[str, str]) -> Prometheus:
        server = start_prometheus(tmp_path / f"prometheus{len(servers)}", targets, free_port())
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
