"""Scrapes while the statistics are slow to recompute (issue 4, scenarios 13 and 14).

A huge window makes every recomputation take about a second while records keep arriving: the
exporter must go on answering scrapes quickly, lose no record, keep its memory flat, and every
scrape must show one consistent snapshot that ``promtool check metrics`` accepts.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests
from harness import Exporter, Samples, model_config, parse_metrics, value, wait_until, with_labels
from reliability_helpers import MIB, lines_block, proc_status, write_repeated

MODEL = "load"
ExporterFactory = Callable[..., Exporter]


def numbers_reference(tmp_path: Path, features: int, rows: int = 20_000) -> Path:
    """Standard normal features ``f0``... and a score."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"f{i}": np.round(rng.normal(0.0, 1.0, rows), 3)
                          for i in range(features)})
    frame["score"] = np.round(rng.beta(2.0, 5.0, rows), 3)
    path = tmp_path / "reference.parquet"
    frame.to_parquet(path, index=False)
    return path


def block(rng: np.random.Generator, rows: int, features: int, shifted: int = 0,
          missing: float = 0.0) -> bytes:
    """JSONL records; the first ``shifted`` features drift (+1); some values null."""
    cols = {f"f{i}": np.round(rng.normal(1.0 if i < shifted else 0.0, 1.0, rows), 3)
            for i in range(features)}
    cols["score"] = np.round(rng.beta(2.0, 5.0, rows), 3)
    holes = rng.random((rows, len(cols))) < missing
    names = list(cols)
    out = []
    for r in range(rows):
        out.append("{" + ", ".join(
            f'"{n}": {"null" if holes[r, j] else cols[n][r]}' for j, n in enumerate(names))
            + "}")
    return lines_block(out)


class Appender(threading.Thread):
    """Appends pre-built blocks to a log at a steady pace."""

    def __init__(self, path: Path, blocks: list[bytes], every: float) -> None:
        super().__init__(name="appender", daemon=True)
        self.path, self.blocks, self.every = path, blocks, every
        self.written = 0  # blocks written

    def run(self) -> None:
        """Write every block, one per ``every`` seconds."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            started = time.monotonic()
            for i, data in enumerate(self.blocks):
                delay = started + i * self.every - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                os.write(fd, data)
                self.written += 1
        finally:
            os.close(fd)


def timed_scrape(process: Exporter) -> tuple[str, float]:
    """The /metrics text and how long it took to get."""
    started = time.monotonic()
    response = requests.get(process.url("/metrics"), timeout=10)
    took = time.monotonic() - started
    assert response.status_code == 200
    return response.text, took


def test_scrapes_stay_fast_and_nothing_is_lost_while_a_huge_window_is_recomputed(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    features, window, per_block = 12, 300_000, 2000
    ref = numbers_reference(tmp_path, features)
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {"models": [model_config(
        MODEL, logs / "*.jsonl", ref, [{"name": f"f{i}", "type": "numerical"}
                                       for i in range(features)],
        prediction={"column": "score"}, window={"rows": window}, update_interval="200ms")]}
    rng = np.random.default_rng(2)
    base = block(rng, 30_000, features)
    log = logs / "app.jsonl"
    repeats = write_repeated(log, base, 10 * len(base) - 1)
    existing = repeats * 30_000
    assert existing == window
    blocks = [block(rng, per_block, features, shifted=i % 4) for i in range(12)]
    process = exporter(cfg, wait=False)
    process.wait_ready(timeout=60)
    pid = process.proc.pid

    first = process.scrape()
    assert value(first, "drift_window_rows", model=MODEL) == window
    appender = Appender(log, blocks * 10, every=0.1)  # 240,000 records in 12 s
    appender.start()
    latencies: list[float] = []
    rss: list[int] = []
    updates: list[float] = []
    while appender.is_alive():
        text, took = timed_scrape(process)
        latencies.append(took)
        samples = parse_metrics(text)
        updates.append(process.update_count(samples, MODEL))
        rss.append(proc_status(pid)["VmRSS"])
        time.sleep(0.05)
    appender.join()
    total = existing + per_block * len(appender.blocks)
    wait_until(lambda: value(process.scrape(), "drift_rows_ingested_total", model=MODEL)
               == total, 60, what=f"all {total} records ingested")

    recomputations = updates[-1] - updates[0]
    durations = value(process.scrape(), "drift_update_duration_seconds_sum", model=MODEL) or 0.0
    mean_update = durations / max(value(process.scrape(), "drift_update_duration_seconds_count",
                                        model=MODEL) or 1.0, 1.0)
    report = (f"{len(latencies)} scrapes, slowest {max(latencies):.3f}s, median "
              f"{float(np.median(latencies)):.3f}s; {recomputations:g} recomputations of "
              f"{mean_update:.2f}s on average; RSS {rss[0] / MIB:.0f} -> {max(rss) / MIB:.0f} MiB")
    print(report)
    assert recomputations >= 4, f"the statistics were not recomputed meanwhile: {report}"
    assert max(latencies) < 1.0, report
    # Memory: the window is full from the start, so appending must not grow it. Allow the
    # transient copies of one recomputation (a view of the window, sorted columns).
    settle = rss[len(rss) // 4:]
    assert max(settle) - min(settle) < 150 * MIB, report
    assert max(settle) < rss[0] + 200 * MIB, report


def consistency_problems(samples: Samples, features: int, share_needed: float) -> list[str]:
    """What in one scrape contradicts itself (SPEC 6.1, 6.2)."""
    problems = []
    rows = value(samples, "drift_window_rows", model=MODEL)
    detected = {dict(k)["feature"]: v
                for k, v in with_labels(samples, "drift_feature_drift_detected").items()}
    scored = []
    for i in range(features):
        name = f"f{i}"
        labels = {"model": MODEL, "feature": name}
        score = value(samples, "drift_feature_drift_score", **labels)
        threshold = value(samples, "drift_feature_drift_threshold", **labels)
        flag = detected.get(name)
        if score is None:
            if flag is not None:
                problems.append(f"{name}: drift_detected without a score")
            continue
        scored.append(name)
        if threshold is None or flag is None:
            problems.append(f"{name}: a score without threshold or detected flag")
            continue
        pvalue = value(samples, "drift_feature_ks_pvalue", **labels)
        if pvalue != score:
            problems.append(f"{name}: drift_score {score} != ks_pvalue {pvalue}")
        if flag != float(score < threshold):
            problems.append(f"{name}: detected {flag} but score {score} vs threshold {threshold}")
        missing = value(samples, "drift_feature_missing_ratio", **labels)
        if rows and missing is not None:
            count = missing * rows
            if abs(count - round(count)) > 1e-6 * rows:
                problems.append(f"{name}: missing_ratio {missing} is no share of {rows} rows")
    share = value(samples, "drift_dataset_drift_share", model=MODEL)
    flagged = value(samples, "drift_dataset_drift_detected", model=MODEL)
    if scored:
        expected = sum(detected[n] for n in scored) / len(scored)
        if share is None or not math.isclose(share, expected, abs_tol=1e-12):
            problems.append(f"drift_dataset_drift_share {share} != {expected} from the flags")
        elif flagged != float(share >= share_needed):
            problems.append(f"drift_dataset_drift_detected {flagged} with share {share}")
    return problems


def test_every_scrape_during_recomputations_is_one_consistent_snapshot(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not on PATH"
    features = 10
    ref = numbers_reference(tmp_path, features)
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg: dict[str, Any] = {"models": [model_config(
        MODEL, logs / "*.jsonl", ref, [{"name": f"f{i}", "type": "numerical"}
                                       for i in range(features)],
        prediction={"column": "score"}, window={"rows": 40_000}, update_interval="100ms",
        drift={"min_rows": 100, "dataset_share": 0.5})]}
    process = exporter(cfg)
    rng = np.random.default_rng(3)
    # Blocks drift in 0..10 features, so the set of drifting features keeps changing; the
    # window grows, so its size changes from one snapshot to the next too.
    blocks = [block(rng, 1500, features, shifted=int(s), missing=0.01)
              for s in rng.integers(0, features + 1, 40)]
    appender = Appender(logs / "app.jsonl", blocks, every=0.15)
    appender.start()
    scrapes: list[str] = []
    while appender.is_alive() or len(scrapes) < 20:
        text, _ = timed_scrape(process)
        scrapes.append(text)
        time.sleep(0.02)
    appender.join()

    problems: list[str] = []
    seen_rows, seen_shares = set(), set()
    last_update = 0.0
    for n, text in enumerate(scrapes):
        samples = parse_metrics(text)  # also rejects a duplicated series
        problems += [f"scrape {n}: {p}" for p in consistency_problems(samples, features, 0.5)]
        seen_rows.add(value(samples, "drift_window_rows", model=MODEL))
        seen_shares.add(value(samples, "drift_dataset_drift_share", model=MODEL))
        updated = value(samples, "drift_last_update_timestamp_seconds", model=MODEL) or 0.0
        if updated < last_update:
            problems.append(f"scrape {n}: the last update time went back")
        last_update = updated
    assert not problems, "\n".join(problems[:30])
    variety = (f"rows {sorted(seen_rows, key=str)}, shares {sorted(seen_shares, key=str)}")
    assert len(seen_rows) >= 5, f"too few distinct snapshots to mean anything: {variety}"
    assert len(seen_shares) >= 3, f"too few distinct snapshots to mean anything: {variety}"

    for text in scrapes[:: max(len(scrapes) // 15, 1)]:
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                                text=True, timeout=30, check=False)
        findings = (result.stdout + result.stderr).strip()
        assert result.returncode == 0, findings
        assert not findings, f"promtool check metrics reported:\n{findings}"
