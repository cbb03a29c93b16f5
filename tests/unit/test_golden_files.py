"""tests/golden_files.py, the goldens' normaliser: what it keeps and what it blanks."""

from __future__ import annotations

from golden_files import normalise

EXPOSITION = """# HELP python_info Python platform information
# TYPE python_info gauge
python_info{version="3.11"} 1.0
# HELP drift_x_seconds When.
# TYPE drift_x_seconds gauge
drift_x_seconds{model="a} 1.0",other="\\"} 2"} 1.7e9
drift_x_seconds 1.7e9 123
# HELP drift_h How long.
# TYPE drift_h histogram
drift_h_bucket{le="+Inf"} 3.0
drift_h_count 3.0
drift_hits_total 4.0
# EOF
"""


class TestNormalise:
    """Keeping drift_* lines and blanking volatile values."""

    def test_other_families_are_dropped_with_their_comments(self) -> None:
        assert "python_info" not in normalise(EXPOSITION)

    def test_a_volatile_value_and_timestamp_become_a_token_and_the_line_stays(self) -> None:
        lines = normalise(EXPOSITION, volatile=("drift_x_seconds",)).splitlines()
        assert 'drift_x_seconds{model="a} 1.0",other="\\"} 2"} <volatile>' in lines
        assert "drift_x_seconds <volatile>" in lines

    def test_a_volatile_family_covers_its_suffixed_samples_but_not_longer_names(self) -> None:
        lines = normalise(EXPOSITION, volatile=("drift_h",)).splitlines()
        assert 'drift_h_bucket{le="+Inf"} <volatile>' in lines
        assert "drift_h_count <volatile>" in lines
        assert "drift_hits_total 4.0" in lines

    def test_the_openmetrics_terminator_is_kept(self) -> None:
        assert normalise(EXPOSITION).endswith("# EOF\n")
