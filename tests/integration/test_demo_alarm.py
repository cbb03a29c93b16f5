"""``drift-exporter demo`` raises the drift alarm once its drift starts, and not before (SPEC
6.9, issue 16): a real demo process on loopback, scraped until deadlines."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from harness import Exporter, exporter_command, free_port, value, wait_until

MODEL = "loan-scoring"
DRIFT_AFTER = 20.0  # seconds after the simulated model starts (after the process starts)
CLEAN_UNTIL = DRIFT_AFTER - 3.0  # no drifted record exists before this, measured from spawn
RAISE_TIMEOUT = 30.0  # the drift shifts income by ~0.8 sd: the first 100-record block pages


def start_demo(tmp_path: Path, port: int) -> Exporter:
    stderr_path = tmp_path / "demo.stderr"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [*exporter_command(), "demo", f"--web.listen-address=127.0.0.1:{port}",
             f"--demo.dir={tmp_path / 'data'}", f"--demo.drift-after={DRIFT_AFTER:g}s"],
            stdout=err, stderr=err, stdin=subprocess.DEVNULL)
    return Exporter(proc, port, tmp_path / "none.yaml", stderr_path)


def test_the_demo_raises_the_alarm_after_its_drift_starts_and_not_before(
        tmp_path: Path) -> None:
    spawned = time.monotonic()
    demo = start_demo(tmp_path, free_port())
    try:
        demo.wait_ready(timeout=30.0)
        labels = {"model": MODEL}
        clean_scrapes = 0
        ingested = 0.0
        while time.monotonic() - spawned < CLEAN_UNTIL:
            samples = demo.scrape()
            assert value(samples, "drift_alarm", **labels) == 0, "raised before the drift"
            assert value(samples, "drift_alarm_raised_total", **labels) == 0
            ingested = value(samples, "drift_rows_ingested_total", **labels) or 0.0
            clean_scrapes += 1
            time.sleep(0.5)  # pacing the scrapes of the clean phase, not a synchronisation
        assert clean_scrapes >= 5
        assert ingested >= 1600, "every block size saw clean records before the drift"
        assert value(demo.scrape(), "drift_alarm_false_alarm_every_seconds",
                     **labels) == 30 * 86400

        def raised() -> bool:
            return value(demo.scrape(), "drift_alarm", **labels) == 1

        wait_until(raised, RAISE_TIMEOUT, what="drift_alarm == 1 after the drift")
        samples = demo.scrape()
        assert value(samples, "drift_alarm_raised_total", **labels) == 1
        columns = {f for f in ("income", "debt_ratio", "age", "tenure_months",
                               "session_seconds", "__prediction__")
                   if value(samples, "drift_feature_alarm", feature=f, **labels) == 1}
        assert columns & {"income", "debt_ratio", "__prediction__"}, columns
        assert columns <= {"income", "debt_ratio", "__prediction__"}, columns
        assert "RAISED (" in demo.get("/").text
    finally:
        code, _ = demo.stop()
    assert code == 0, demo.stderr()
