"""drift-exporter: a Prometheus exporter for ML data and prediction drift."""

__version__ = "0.1.0"
