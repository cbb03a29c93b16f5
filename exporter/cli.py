"""Command line: ``run``, ``check``, ``demo``, ``replay``, ``init``, ``--version``;
Prometheus-style dotted flags.

Exit codes: 0 normal end, 1 runtime failure, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from exporter import __version__, signals
from exporter.errors import ConfigError, ExporterError

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
DEFAULT_LISTEN = ":9847"
log = logging.getLogger("exporter")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _add_logging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=("debug", "info", "warn", "error"))
    parser.add_argument("--log.format", dest="log_format", default="logfmt",
                        choices=("logfmt", "json"))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its three commands."""
    parser = _Parser(prog="drift-exporter",
                     description="Prometheus exporter for ML data and prediction drift.")
    parser.add_argument("--version", action="version", version=f"drift-exporter {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="follow the logs and serve metrics")
    run.add_argument("--config.file", dest="config_file", required=True)
    run.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN)
    run.add_argument("--web.config.file", dest="web_config_file")
    run.add_argument("--web.enable-lifecycle", dest="enable_lifecycle", action="store_true",
                     help="enable POST /-/reload (SIGHUP reloads in any case)")
    _add_logging(run)
    check = sub.add_parser("check", help="validate config, references and the logs' columns")
    check.add_argument("--config.file", dest="config_file", required=True)
    _add_logging(check)
    demo = sub.add_parser("demo", help="run on generated data with drift after about a minute")
    demo.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN)
    demo.add_argument("--demo.dir", dest="demo_dir", default=None,
                      help="where to write the demo data (default: a temporary directory)")
    demo.add_argument("--demo.drift-after", dest="drift_after", default="60s",
                      help="when the simulated inputs start to drift (default 60s)")
    _add_logging(demo)
    init = sub.add_parser("init", help="print a starting config inferred from a reference file")
    init.add_argument("--reference", required=True,
                      help="the reference data (.parquet, .csv, .jsonl)")
    init.add_argument("--logs", help="glob of the prediction logs (default logs/*.jsonl)")
    init.add_argument("--name", help="the model's name (default: from the reference's name)")
    init.add_argument("--prediction", help="the model's output column")
    init.add_argument("--label", help="the ground-truth column")
    _add_logging(init)
    replay = sub.add_parser("replay", help="write the history run would have published, as "
                            "timestamped OpenMetrics for promtool tsdb create-blocks-from")
    replay.add_argument("--config.file", dest="config_file", required=True)
    replay.add_argument("--output", required=True, help="the OpenMetrics file to write")
    replay.add_argument("--from", dest="start", default=None,
                        help="RFC 3339 time or epoch seconds (default: the first record's)")
    replay.add_argument("--to", dest="end", default=None,
                        help="RFC 3339 time or epoch seconds (default: the last record's)")
    replay.add_argument("--step", default=None,
                        help="Prometheus duration (default: the smallest update_interval)")
    _add_logging(replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drift-exporter`` console script."""
    # First of all: SIGTERM/SIGINT during start-up (imports, reference loading) must end the
    # process cleanly (SPEC 4), and SIGHUP must not kill it.
    args = None
    try:
        signals.install()  # inside the try: a signal may arrive while it is being installed
        args = build_parser().parse_args(argv)
        if args.command not in _SERVING:
            signals.uninstall()  # `check` and usage errors keep the default actions
        return _main(args)
    except signals.StartupInterrupted as exc:
        from exporter.logs import setup_logging

        if not logging.getLogger().handlers:  # the signal came before logging was set up
            setup_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "logfmt"))
        log.info("signal received during start-up; stopped", extra={"signal": exc.signal_name})
        return EXIT_OK


_SERVING = ("run", "demo", "replay")


def _main(args: argparse.Namespace) -> int:
    if args.command is None:
        build_parser().print_usage(sys.stderr)
        return EXIT_USAGE
    from exporter.logs import setup_logging

    setup_logging(args.log_level, args.log_format)
    commands = {"run": _run, "check": _check, "demo": _demo, "replay": _replay,
                "init": _init}
    try:
        return commands[args.command](args)
    except ConfigError as exc:
        _fail(args, "configuration error", exc.problems)
        return EXIT_USAGE
    except ExporterError as exc:
        _fail(args, str(exc))
        return EXIT_USAGE
    except OSError as exc:
        _fail(args, str(exc))
        return EXIT_RUNTIME


def _fail(args: argparse.Namespace, message: str, problems: Sequence[str] = ()) -> None:
    """Say why the command failed: plain text for a person, or one log line with
    ``--log.format=json`` (every line the process writes is then a JSON log line)."""
    if args.log_format == "json":
        extra = {"problems": " | ".join(problems), "count": len(problems)} if problems else {}
        log.error(message, extra=extra)
        return
    sys.stderr.write(f"drift-exporter: {message}{':' if problems else ''}\n")
    for problem in problems:
        sys.stderr.write(f"  {problem}\n")


def _run(args: argparse.Namespace) -> int:
    from exporter.app import App
    from exporter.config import load_config
    from exporter.webconfig import load_web_config

    config = load_config(args.config_file)
    web_config = load_web_config(args.web_config_file) if args.web_config_file else None
    app = App(config, args.listen, web_config, config_file=args.config_file,
              web_config_file=args.web_config_file, enable_lifecycle=args.enable_lifecycle)
    return app.run_until_signalled()


def _check(args: argparse.Namespace) -> int:
    from exporter.checking import check_logs, estimate_status, reference_warnings, segment_lines
    from exporter.config import load_config
    from exporter.reference import load_reference

    config = load_config(args.config_file)
    problems: list[str] = []
    for index, model in enumerate(config.models):
        profile = load_reference(model)
        found = check_logs(index, model)
        problems.extend(found.problems)
        print(f"model {model.name}: reference {profile.rows} rows, "
              f"{len(model.features)} features, logs {model.logs.path}")
        estimate = estimate_status(model, profile)
        if estimate is not None and estimate.warning:
            sys.stderr.write(f"drift-exporter: warning: models[{index}].label.estimate: "
                             f"{estimate.message}\n")
        elif estimate is not None:
            print(f"model {model.name}: {estimate.message}")
        for line in segment_lines(model, profile):
            print(line)
        # warnings do not change the exit code: run works around each of them
        for warning in (*(f"models[{index}].reference.path: {w}"
                          for w in reference_warnings(model, profile)), *found.warnings):
            sys.stderr.write(f"drift-exporter: warning: {warning}\n")
    if problems:
        raise ConfigError(problems)
    print("config OK")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from exporter.demo import run_demo
    from exporter.durations import parse_duration

    return run_demo(args.listen, args.demo_dir, parse_duration(args.drift_after))


def _init(args: argparse.Namespace) -> int:
    from exporter.init import InitOptions, init_config

    sys.stdout.write(init_config(InitOptions(args.reference, args.logs, args.name,
                                             args.prediction, args.label)))
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from exporter.config import load_config
    from exporter.durations import parse_duration
    from exporter.replay import future_limit, parse_time, plan, replay

    start = parse_time(args.start, "--from") if args.start is not None else None
    end = parse_time(args.end, "--to") if args.end is not None else None
    try:
        step = parse_duration(args.step) if args.step is not None else None
    except ValueError as exc:
        raise ExporterError(f"--step={args.step!r}: {exc}") from None
    config = load_config(args.config_file)
    limit = future_limit()
    span = plan(config, start, end, step, limit)
    received = signals.install()
    log.info("replay started", extra={"output": args.output, "from": span.start,
                                      "to": span.end, "step_seconds": span.step,
                                      "steps": span.steps})
    received.running()  # from here a stop signal ends the replay after the current step
    try:
        result = replay(config, args.output, span, limit,
                        stop_requested=lambda: received.stop_requested)
    except ExporterError:
        raise  # a reference that cannot be used is a config error, as for run (exit 2)
    except Exception:
        log.exception("replay failed; no output written")
        return EXIT_RUNTIME
    if result.complete:
        log.info("replay done", extra={"output": str(result.output), "steps": result.steps,
                                       "records": result.records})
    elif result.output is not None:
        log.warning("replay stopped by a signal; the output is partial", extra={
            "output": str(result.output), "steps": result.steps, "of_steps": span.steps,
            "last_step": result.last_step, "signal": received.stop_signal})
    else:
        log.warning("replay stopped by a signal before its first step; nothing written",
                    extra={"signal": received.stop_signal})
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
