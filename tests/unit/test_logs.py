"""Process logs: logfmt and JSON lines with the structured fields."""

from __future__ import annotations

import json
import logging

from exporter.logs import JsonFormatter, LogfmtFormatter


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "exporter.pipeline", "levelno": logging.WARNING,
                                    "levelname": "WARNING", "msg": msg})
    for key, value in extra.items():
        setattr(record, key, value)
    return record


class TestFormatters:
    """Both formats carry level, message and the file/line fields of a rejection."""

    def test_logfmt_quotes_values_with_spaces(self) -> None:
        line = LogfmtFormatter().format(_record("record rejected", file="/logs/a b.jsonl",
                                                line="7"))
        assert "level=warn" in line
        assert 'msg="record rejected"' in line
        assert 'file="/logs/a b.jsonl"' in line
        assert "line=7" in line

    def test_json_lines_parse_back(self) -> None:
        fields = json.loads(JsonFormatter().format(_record("x", file="f.jsonl", line="3")))
        assert fields["msg"] == "x"
        assert fields["file"] == "f.jsonl"
        assert fields["line"] == "3"
        assert fields["level"] == "warn"
