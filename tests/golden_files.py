"""Golden exposition files (tests/golden/README.md): keep the ``drift_*`` families of a
rendering, blank what depends on the clock, compare it byte for byte with its checked-in file,
or rewrite that file when ``DRIFT_GOLDEN_UPDATE=1``."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
GOLDEN_INPUT = GOLDEN_DIR / "input"
UPDATE_VARIABLE = "DRIFT_GOLDEN_UPDATE"
VOLATILE = "<volatile>"

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_COMMENT = re.compile(r"# (HELP|TYPE|UNIT) ([a-zA-Z_:][a-zA-Z0-9_:]*)")


def _sample_name_end(line: str) -> tuple[str, int]:
    """A sample line's metric name and where its value starts (after the labels)."""
    match = _NAME.match(line)
    assert match is not None, f"not a sample line: {line!r}"
    end = match.end()
    if end < len(line) and line[end] == "{":
        quoted = escaped = False
        for index in range(end + 1, len(line)):
            char = line[index]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = not quoted
            elif char == "}" and not quoted:
                end = index + 1
                break
    return match.group(), end


def _in_families(name: str, families: Iterable[str]) -> bool:
    """Whether a sample or family name belongs to one of ``families`` (its _bucket, _sum...)."""
    return any(name == f or name.startswith(f"{f}_") for f in families)


def normalise(text: str, *, prefix: str = "drift_", volatile: Iterable[str] = ()) -> str:
    """Only the families named ``prefix*`` (comments, samples, ``# EOF``), with the value (and
    timestamp) of every sample of a ``volatile`` family replaced by ``<volatile>``: the line
    stays, so a series that vanishes is still caught."""
    volatile = tuple(volatile)
    kept = []
    for line in text.splitlines():
        if line == "# EOF":
            kept.append(line)
            continue
        comment = _COMMENT.match(line)
        if comment is not None:
            if comment.group(2).startswith(prefix):
                kept.append(line)
            continue
        assert not line.startswith("#"), f"unexpected comment line: {line!r}"
        name, end = _sample_name_end(line)
        if not name.startswith(prefix):
            continue
        kept.append(f"{line[:end]} {VOLATILE}" if _in_families(name, volatile) else line)
    return "".join(f"{line}\n" for line in kept)


def promtool_findings(text: str) -> str:
    """What ``promtool check metrics`` says about a text exposition ("" when it is clean);
    ``<volatile>`` placeholders are checked as the number 0."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not on PATH"
    result = subprocess.run([promtool, "check", "metrics"], input=text.replace(VOLATILE, "0"),
                            capture_output=True, text=True, timeout=30, check=False)
    findings = (result.stdout + result.stderr).strip()
    return findings or ("" if result.returncode == 0 else f"exit code {result.returncode}")


class Golden:
    """Checks renderings against tests/golden/<name>, or rewrites them on request."""

    def __init__(self, directory: Path = GOLDEN_DIR) -> None:
        self.directory = directory
        self.update = os.environ.get(UPDATE_VARIABLE) == "1"

    def check(self, name: str, actual: str) -> None:
        """``actual`` must equal the checked-in file byte for byte."""
        path = self.directory / name
        if self.update:
            path.write_bytes(actual.encode())
            return
        assert path.exists(), (f"{path} does not exist; create it with "
                               f"{UPDATE_VARIABLE}=1 (tests/golden/README.md)")
        expected = path.read_bytes().decode()
        if actual != expected:
            diff = "".join(difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                fromfile=f"{name} (golden)", tofile=f"{name} (now)", n=1))
            pytest.fail(f"the rendering differs from {path}; if the change is deliberate, "
                        f"rerun with {UPDATE_VARIABLE}=1 and say so in the commit:\n{diff}",
                        pytrace=False)
