"""The collector's rendering of the golden inputs (tests/golden/input/), in process, against
tests/golden/collector.prom, byte for byte (tests/golden/README.md)."""

from __future__ import annotations

from pathlib import Path

import yaml
from golden_files import GOLDEN_DIR, GOLDEN_INPUT, Golden, normalise, promtool_findings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.collector import DriftCollector
from exporter.config import parse_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.sources import ModelSource, feed
from exporter.state import ModelState

NOW = 1_767_230_000.0  # after the newest record of the golden logs

# ModelSnapshot.computed_at: NOW here, but the running exporter's wall clock in
# exposition.prom, of which collector.prom must be a prefix; so not golden.
WALL_CLOCK_FAMILIES = ("drift_last_update_timestamp_seconds",)


def golden_states(config_path: Path, now: float) -> list[ModelState]:
    """Every model's state after reading all its logs at ``now`` and one recomputation at
    ``now``, as App does on start-up (the one place that knows the pipeline's API)."""
    config = parse_config(yaml.safe_load(config_path.read_text()), base_dir=config_path.parent)
    pipelines = [ModelPipeline(m, load_reference(m)) for m in config.models]
    sources = [ModelSource.of(p) for p in pipelines]
    try:
        for pipeline, source in zip(pipelines, sources, strict=True):
            source.start(now)
            feed(source, pipeline, lambda: now)
            pipeline.recompute(now)
        return [p.state() for p in pipelines]
    finally:
        for source in sources:
            source.close()


def _render(states: list[ModelState], *, openmetrics: bool = False) -> str:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(DriftCollector(lambda: states))
    encode = generate_openmetrics if openmetrics else generate_latest
    return normalise(encode(registry).decode(), volatile=WALL_CLOCK_FAMILIES)


class TestGoldenCollector:
    """The DriftCollector over the pipelines' states of the golden inputs."""

    def test_the_text_exposition_equals_the_golden_file(self, golden: Golden) -> None:
        text = _render(golden_states(GOLDEN_INPUT / "config.yaml", NOW))
        golden.check("collector.prom", text)

    def test_the_golden_file_passes_promtool_check_metrics(self) -> None:
        text = (GOLDEN_DIR / "collector.prom").read_text()
        assert promtool_findings(text) == ""

    def test_every_snapshot_is_stamped_with_the_clock_it_was_computed_by(self) -> None:
        states = golden_states(GOLDEN_INPUT / "config.yaml", NOW)
        stamps = {v.snapshot.computed_at for s in states for v in s.versions if v.snapshot}
        assert stamps == {NOW}

    def test_rendering_the_same_states_twice_gives_the_same_bytes(self) -> None:
        states = golden_states(GOLDEN_INPUT / "config.yaml", NOW)
        assert _render(states) == _render(states)
        assert _render(states, openmetrics=True) == _render(states, openmetrics=True)
