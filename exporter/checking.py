"""``drift-exporter check``: do the existing logs carry the configured columns?

``check`` reads the log files as ``run`` does: the glob's regular files (a directory, FIFO,
socket or device matching it, a dangling symlink or a file that cannot be opened is skipped
with a warning, as ``run`` skips it; a FIFO is never opened), ordered by modification time, then
name (SPEC 2). The newest file that can be read is sampled: its first ``SAMPLE_LINES`` records
(lines longer than ``max_line_bytes`` are skipped without being held, and each line is decoded
by the rule ``run`` uses, ``parsing.decode_record``). Problems (exit 2) are what ``run`` would
refuse or could never monitor: a configured column absent from the sample. Warnings (exit 0)
are what ``run`` works around but the user likely did not mean: skipped files, a glob that
matches the reference itself, a reference smaller than ``drift.min_rows``, timestamps far in the
future.

``reference_column_problems`` runs whenever the config is validated (``parse_config`` with
``check_reference``).
"""

from __future__ import annotations

import functools
import glob
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from exporter.alarm import reference_warning
from exporter.config import ModelConfig
from exporter.errors import ReferenceDataError
from exporter.reference import CategoricalReference, NumericalReference, ReferenceProfile
from exporter.segments import OTHER_SEGMENT
from exporter.tables import read_column_names
from exporter.tail_gzip import COMPRESSED_SUFFIX, Incomplete, decompressed
from exporter.tailing import CorruptFile, ignored, reading_order
from exporter.window import MAX_FUTURE_SECONDS

SAMPLE_LINES = 100  # records sampled from the newest log file
SAMPLE_FILES = 5  # newest files tried when the newer ones cannot be read
SKIPPED_NAMED = 10  # skipped files named one by one; the rest are counted
READ_BLOCK = 64 << 10



def reference_column_problems(
    reference_path: str, columns: Sequence[tuple[str, str]], at: str
) -> list[str]:
    """A problem for each (YAML path, column) the reference lacks; one at `at` if unreadable."""
    try:
        names = set(read_column_names(reference_path))
    except ReferenceDataError as exc:
        return [f"{at}: {exc}"]
    return [f"{path}: column {column!r} not in reference {reference_path}"
            for path, column in columns if column not in names]

@dataclass(frozen=True)
class CheckResult:
    """What ``check`` found in one model's logs: problems (exit 2) and warnings."""

    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogFiles:
    """The regular files a glob matches, oldest first, and the matches that are skipped."""

    files: tuple[tuple[str, os.stat_result], ...]
    skipped: tuple[tuple[str, str], ...]  # (path, why)


def list_log_files(pattern: str) -> LogFiles:
    """The glob's files in the order ``run`` reads them (``tailing.reading_order``, then name)."""
    files: list[tuple[str, os.stat_result]] = []
    skipped: list[tuple[str, str]] = []
    for path in glob.glob(pattern, recursive=True):
        if ignored(path):
            continue  # a writer's temporary name: not a log file yet, nothing to say
        try:
            st = os.stat(path)  # follows symlinks, as run does
        except OSError as exc:
            what = "a dangling symlink" if os.path.islink(path) else exc.strerror or str(exc)
            skipped.append((path, what))
            continue
        if not stat.S_ISREG(st.st_mode):
            skipped.append((path, f"not a regular file ({_kind(st.st_mode)})"))
            continue
        files.append((path, st))
    now = time.time_ns()
    files.sort(key=lambda item: (reading_order(item[1], now), item[0]))
    return LogFiles(tuple(files), tuple(sorted(skipped)))


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def check_logs(index: int, model: ModelConfig, now: float | None = None) -> CheckResult:
    """Problems and warnings about the existing log files of a model (none without files)."""
    where = f"models[{index}].logs.path"
    listing = list_log_files(model.logs.path)
    warnings = _skipped_warnings(where, listing.skipped)
    warnings.extend(_reference_in_glob(index, model, listing))
    problems: list[str] = []
    tried = 0
    for path, _ in reversed(listing.files):
        if tried == SAMPLE_FILES:
            break
        tried += 1
        try:
            sample = _sample(path, model, time.time() if now is None else now)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            warnings.append(f"{where}: cannot read {path}: {reason[:200]} (run skips it too); "
                            "sampling an older file")
            continue
        problems.extend(_missing_columns(where, model, path, sample))
        warnings.extend(_sample_warnings(where, model, path, sample))
        break
    return CheckResult(tuple(problems), tuple(warnings))


def _skipped_warnings(where: str, skipped: tuple[tuple[str, str], ...]) -> list[str]:
    warnings = [f"{where}: skipping {path}: {why} (run skips it too)"
                for path, why in skipped[:SKIPPED_NAMED]]
    if len(skipped) > SKIPPED_NAMED:
        warnings.append(f"{where}: skipping {len(skipped) - SKIPPED_NAMED} more matches that "
                        "are not readable regular files")
    return warnings


def _reference_in_glob(index: int, model: ModelConfig, listing: LogFiles) -> list[str]:
    try:
        ref = os.stat(model.reference_path)
    except OSError:
        return []  # the config check names a missing reference
    for path, st in listing.files:
        if (st.st_dev, st.st_ino) == (ref.st_dev, ref.st_ino):
            return [f"models[{index}].logs.path: the glob matches the reference file {path}: "
                    "its rows would be read as prediction records"]
    return []


@dataclass(frozen=True)
class _Sample:
    keys: frozenset[str]
    records: int
    malformed: int
    future: int  # timestamps more than MAX_FUTURE_SECONDS ahead


def _sample(path: str, model: ModelConfig, now: float) -> _Sample | None:
    """Keys of the first records of one regular file (None: nothing to sample yet)."""
    # O_NONBLOCK: a FIFO put in the file's place since the listing must not block the open
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            msg = "not a regular file"
            raise ValueError(msg)
        if model.logs.format == "parquet":
            return _parquet_sample(fd)
        if path.endswith(COMPRESSED_SUFFIX):
            return _jsonl_sample(_gzip_reader(fd), model, now)
        return _jsonl_sample(functools.partial(os.read, fd), model, now)
    finally:
        os.close(fd)


def _parquet_sample(fd: int) -> _Sample:
    import pyarrow.parquet as pq

    with os.fdopen(os.dup(fd), "rb") as handle:
        names = pq.ParquetFile(handle).schema_arrow.names
    return _Sample(frozenset(names), 1, 0, 0)


def _gzip_reader(fd: int) -> Callable[[int], bytes]:
    """Reads of the decompressed text of a gzip file (blocks of at most OUT_BLOCK bytes);
    a file that is no complete gzip stream is a ValueError, as run rejects it."""
    blocks = decompressed(fd, os.fstat(fd).st_size)

    def read(_size: int) -> bytes:
        try:
            return next(blocks, b"")
        except CorruptFile as exc:
            msg = f"corrupt gzip file: {exc}"
            raise ValueError(msg) from exc
        except Incomplete as exc:
            msg = "gzip file incomplete (being written, or truncated)"
            raise ValueError(msg) from exc

    return read


def _jsonl_sample(read: Callable[[int], bytes], model: ModelConfig,
                  now: float) -> _Sample | None:
    from exporter.parsing import TIME, ColumnSpec, batch_from_records, decode_record

    keys: set[str] = set()
    records: list[dict[str, object]] = []
    malformed = 0
    for line in _complete_lines(read, model.logs.max_line_bytes):
        if len(records) + malformed == SAMPLE_LINES:
            break
        obj = decode_record(line)
        if isinstance(obj, str):
            malformed += 1
            continue
        keys.update(obj)
        records.append(obj)
    if not records and not malformed:
        return None
    future = 0
    column = model.timestamp_column
    if column and records:
        times = batch_from_records(records, [ColumnSpec(column, TIME)]).numbers[column]
        future = int(np.count_nonzero(times > now + MAX_FUTURE_SECONDS))
    return _Sample(frozenset(keys), len(records), malformed, future)


def _complete_lines(read: Callable[[int], bytes], limit: int) -> Iterator[bytes]:
    """Non-blank ``\\n``-terminated lines of at most ``limit`` bytes, read in bounded blocks;
    longer lines are skipped without being held (``run`` rejects them as too long)."""
    pending = b""
    skipping = False
    budget = SAMPLE_LINES * (limit + 1)  # what the sampled lines can take at most
    while budget > 0:
        block = read(min(READ_BLOCK, budget))
        budget -= len(block)
        if not block:
            return  # a last line without its newline is not read yet, as in run
        pending += block
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                if len(pending) > limit:
                    pending, skipping = b"", True
                break
            line, pending = pending[:cut], pending[cut + 1:]
            if skipping or len(line) > limit:
                skipping = False
                continue
            if line.strip(b" \t\r"):
                yield line


def _missing_columns(where: str, model: ModelConfig, path: str,
                     sample: _Sample | None) -> list[str]:
    if sample is None or not sample.records:
        return []
    wanted = [f.name for f in model.features]
    if model.prediction is not None:
        wanted.append(model.prediction.column)
    # Label, id, version and timestamp keys may legitimately be absent from a record.
    return [f"{where}: column '{c}' not in the first {SAMPLE_LINES} records of {path}"
            for c in wanted if c not in sample.keys]


def _sample_warnings(where: str, model: ModelConfig, path: str,
                     sample: _Sample | None) -> list[str]:
    if sample is None:
        return []
    warnings = []
    if sample.malformed:
        warnings.append(f"{where}: {sample.malformed} of the first "
                        f"{sample.malformed + sample.records} lines of {path} are not JSON "
                        "objects (run rejects them as malformed)")
    if sample.future:
        warnings.append(
            f"{where}: {sample.future} of the first {sample.records} records of {path} have a "
            f"'{model.timestamp_column}' more than {MAX_FUTURE_SECONDS:g} s in the future "
            "(epoch milliseconds? run counts them as invalid and uses the time they are read)")
    return warnings


def reference_warnings(model: ModelConfig, profile: ReferenceProfile) -> list[str]:
    """Why a reference is too small to calibrate thresholds or the alarm on (said by ``check``
    and ``run``).

    With fewer usable reference values than ``drift.min_rows`` (the fewest a window needs for
    a statistic) an ``auto`` threshold is calibrated on windows drawn from a handful of values:
    with one row it is 5e-324 and every feature drifts. The alarm's own warning
    (``alarm.reference_warning``) follows."""
    alarm = reference_warning(profile.rows)
    return [*_threshold_warnings(model, profile), *([alarm] if alarm is not None else [])]


@dataclass(frozen=True)
class EstimateStatus:
    """What ``check`` and ``run`` say about the label-free estimate of a model (SPEC 6.10)."""

    message: str
    warning: bool  # an explicit ``label.estimate: cbpe`` that cannot apply


def estimate_status(model: ModelConfig, profile: ReferenceProfile) -> EstimateStatus | None:
    """Whether the performance estimate applies and why not; None without a label."""
    label = model.label
    if label is None:
        return None
    if profile.cbpe is not None:
        how = "isotonic calibration" if profile.cbpe.calibration.calibrated else "raw score"
        return EstimateStatus(f"performance estimation: cbpe ({how}, {profile.cbpe.rows} "
                              "labelled reference rows)", warning=False)
    if label.estimate == "cbpe" and label.estimate_given:
        return EstimateStatus(f"cbpe cannot apply: {profile.cbpe_reason}; no "
                              "drift_model_estimated_* metrics are published", warning=True)
    return EstimateStatus(f"performance estimation: not applicable: {profile.cbpe_reason}",
                          warning=False)
def segment_lines(model: ModelConfig, profile: ReferenceProfile) -> list[str]:
    """What ``check`` says of the segments (SPEC 6.11): each one's reference rows and window."""
    segmentation = profile.segmentation
    if segmentation is None:
        return []
    need = model.drift.min_rows
    lines = [f"  segments by column {segmentation.column!r}: {len(segmentation.names)} windows "
             "besides the whole model's"]
    lines += [f"  segment {name!r}: reference {segmentation.sizes[name]} rows"
              for name in segmentation.own]
    lines += [f"  segment {name!r}: reference {segmentation.sizes[name]} rows, fewer than "
              f"drift.min_rows ({need}): counted in {OTHER_SEGMENT}"
              for name in segmentation.small]
    rest = segmentation.sizes[OTHER_SEGMENT]
    lines.append(f"  segment {OTHER_SEGMENT!r}: reference {rest} rows" if segmentation.other
                 else f"  segment {OTHER_SEGMENT!r}: reference {rest} rows, fewer than "
                 f"drift.min_rows ({need}): no window (its records are in the whole model's)")
    return lines


def _threshold_warnings(model: ModelConfig, profile: ReferenceProfile) -> list[str]:
    need = model.drift.min_rows
    if profile.rows < need:
        return [f"the reference {model.reference_path} has {profile.rows} rows, fewer than "
                f"drift.min_rows ({need}): its thresholds and statistics are unreliable"]
    return [f"column '{name}' has {_usable(column)} usable values in the reference, fewer than "
            f"drift.min_rows ({need}): its thresholds and statistics are unreliable"
            for name, column in profile.columns.items() if _usable(column) < need]


def _usable(column: NumericalReference | CategoricalReference) -> int:
    if isinstance(column, NumericalReference):
        return int(column.sample.values.shape[0])
    return int(column.counts.sum())
