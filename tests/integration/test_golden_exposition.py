"""The real exporter on the golden inputs (tests/golden/input/): its ``drift_*`` families, in the
Prometheus text format and in OpenMetrics, equal tests/golden/exposition.prom and
exposition.openmetrics byte for byte (tests/golden/README.md)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from golden_files import GOLDEN_DIR, GOLDEN_INPUT, Golden, normalise, promtool_findings
from harness import POLL_SECONDS, Exporter, wait_until
from prometheus_client.parser import text_string_to_metric_families

ExporterFactory = Callable[..., Exporter]

# Records each model reads from tests/golden/input/logs (malformed lines not included).
EXPECTED_ROWS = {"scoring": 120, "classes": 60, "versioned": 80, "idle": 0}
# Values that depend on the wall clock, on timing or on the machine (inotify or polling).
VOLATILE_FAMILIES = ("drift_last_update_timestamp_seconds", "drift_update_duration_seconds",
                     "drift_exporter_polling_fallback",
                     "drift_config_last_reload_success_timestamp_seconds")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
SETTLE_SECONDS = 0.6  # longer than update_interval (200ms) plus a compute tick


def _totals(text: str, name: str) -> dict[str, float]:
    """The sum of a sample's values per model (a versioned model has one per version)."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                model = sample.labels["model"]
                totals[model] = totals.get(model, 0.0) + sample.value
    return totals


def _settled_scrape(process: Exporter, timeout: float = 30.0) -> None:
    """Wait until every record is read and in a window, then until no recomputation is
    pending (the count of recomputations stays still for SETTLE_SECONDS)."""
    expected = {model: float(rows) for model, rows in EXPECTED_ROWS.items()}

    def caught_up() -> bool:
        text = process.scrape_text()
        return (_totals(text, "drift_rows_ingested_total") == expected
                and _totals(text, "drift_window_rows") == expected)

    wait_until(caught_up, timeout, what=f"windows holding {EXPECTED_ROWS}")
    deadline = time.monotonic() + timeout
    counts = _totals(process.scrape_text(), "drift_update_duration_seconds_count")
    since = time.monotonic()
    while time.monotonic() - since < SETTLE_SECONDS:
        assert time.monotonic() < deadline, "the statistics never settled"
        time.sleep(POLL_SECONDS)
        now = _totals(process.scrape_text(), "drift_update_duration_seconds_count")
        if now != counts:
            counts, since = now, time.monotonic()


class TestGoldenExposition:
    """``drift-exporter run`` over the golden inputs, scraped once everything is computed."""

    def test_both_exposition_formats_equal_the_golden_files(
            self, tmp_path: Path, exporter: ExporterFactory, golden: Golden) -> None:
        shutil.copytree(GOLDEN_INPUT, tmp_path, dirs_exist_ok=True)  # paths relative to tmp
        config = yaml.safe_load((tmp_path / "config.yaml").read_text())
        process = exporter(config)
        _settled_scrape(process)

        text = process.scrape_text()
        response = process.get("/metrics", headers={"Accept": OPENMETRICS})
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")

        golden.check("exposition.prom", normalise(text, volatile=VOLATILE_FAMILIES))
        golden.check("exposition.openmetrics",
                     normalise(response.text, volatile=VOLATILE_FAMILIES))

    def test_the_text_golden_file_passes_promtool_check_metrics(self) -> None:
        assert promtool_findings((GOLDEN_DIR / "exposition.prom").read_text()) == ""

    def test_the_process_golden_is_the_collector_golden_plus_the_apps_own_families(
            self) -> None:
        process = (GOLDEN_DIR / "exposition.prom").read_text()
        collector = (GOLDEN_DIR / "collector.prom").read_text()
        assert process.startswith(collector)
        rest = process[len(collector):]
        assert all(line.split()[2 if line.startswith("#") else 0].split("{")[0].startswith(
            ("drift_update_duration_seconds", "drift_exporter_polling_fallback",
             "drift_config_last_reload_"))
            for line in rest.splitlines()), rest
