"""deploy/example-app: the inference service, its load generator and the alert log."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "example-app"
sys.path.insert(0, str(EXAMPLE))

import alert_log  # noqa: E402 - deploy/example-app is put on the path just above
import app as example_app  # noqa: E402
import diabetes_model as diabetes  # noqa: E402
import loadgen  # noqa: E402

PATIENT = {"age": 50.0, "sex": 2, "bmi": 27.0, "bp": 95.0, "s1": 190.0, "s2": 115.0,
           "s3": 50.0, "s4": 4.0, "s5": 4.6, "s6": 91.0}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """The diabetes data in original units."""
    return diabetes.load_data()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Flask]:
    """The Flask app on a fresh data directory; writers closed afterwards."""
    flask_app = example_app.create_app(tmp_path)
    yield flask_app
    example_app.close_app(flask_app)


@pytest.fixture
def client(service: Flask) -> FlaskClient:
    """A test client of the app."""
    return service.test_client()


def records(directory: Path) -> list[dict[str, Any]]:
    """Every JSONL record under a log directory."""
    lines = [line for path in sorted(directory.glob("*.jsonl"))
             for line in path.read_text().splitlines()]
    return [json.loads(line) for line in lines]


class TestDiabetesModel:
    """The data, the model and the shift."""

    def test_the_data_ships_with_scikit_learn_in_original_units(self,
                                                              data: pd.DataFrame) -> None:
        assert len(data) == 442
        assert list(data.columns) == [*diabetes.FEATURES, diabetes.TARGET]
        assert set(data["sex"]) == {1, 2}
        assert 18 < data["bmi"].mean() < 35

    def test_training_is_deterministic(self, data: pd.DataFrame) -> None:
        first = diabetes.predict(diabetes.train(data), data.head(20))
        second = diabetes.predict(diabetes.train(data), data.head(20))
        assert np.array_equal(first, second)

    def test_the_shift_moves_the_shifted_features_and_no_other(self,
                                                              data: pd.DataFrame) -> None:
        rng = np.random.default_rng(3)
        shifted = diabetes.shift(data, rng)
        moved = {f for f in diabetes.FEATURES
                 if abs(shifted[f].mean() - data[f].mean()) > 0.25 * data[f].std()}
        assert moved == set(diabetes.SHIFTED)
        assert (shifted[diabetes.TARGET] == data[diabetes.TARGET]).all()
        assert (shifted["sex"] == 2).mean() == pytest.approx(diabetes.SHIFTED_SEX_SHARE,
                                                             abs=0.05)

    def test_more_than_half_the_features_shift_so_the_dataset_drifts(self) -> None:
        assert len(diabetes.SHIFTED) / len(diabetes.FEATURES) > 0.5

    def test_the_shift_raises_the_predictions(self, data: pd.DataFrame) -> None:
        model = diabetes.train(data)
        rng = np.random.default_rng(4)
        plain = diabetes.predict(model, diabetes.sample(data, rng, 500))
        shifted = diabetes.predict(model, diabetes.sample(data, rng, 500, shifted=True))
        assert shifted.mean() > plain.mean() + 0.5 * plain.std()


class TestReference:
    """The reference is written once, atomically, with features, prediction and label."""

    def test_the_reference_holds_every_column_the_exporter_config_names(
            self, service: Flask) -> None:
        reference = pd.read_parquet(service.config["paths"].reference)
        assert len(reference) == 442
        assert {*diabetes.FEATURES, diabetes.PREDICTION, diabetes.TARGET} <= set(reference)

    def test_a_restarted_app_keeps_the_existing_reference(self, tmp_path: Path) -> None:
        first = example_app.create_app(tmp_path)
        path = first.config["paths"].reference
        before = path.stat()
        second = example_app.create_app(tmp_path)
        after = path.stat()
        assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
        for flask_app in (first, second):
            example_app.close_app(flask_app)
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left

    def test_write_reference_only_exits_after_writing_it(self, tmp_path: Path) -> None:
        assert example_app.main(["--data-dir", str(tmp_path), "--write-reference-only"]) == 0
        assert example_app.Paths.under(tmp_path).reference.exists()
        assert not (tmp_path / "logs").exists()


class TestPredict:
    """/predict answers and logs one record per prediction."""

    def test_one_instance_is_predicted_and_logged_with_id_and_timestamp(
            self, client: FlaskClient, service: Flask) -> None:
        answer = client.post("/predict", json=PATIENT)
        assert answer.status_code == 200
        (prediction,) = answer.get_json()["predictions"]
        (record,) = records(service.config["paths"].predictions)
        assert record[diabetes.ID] == prediction[diabetes.ID]
        assert record[diabetes.PREDICTION] == prediction[diabetes.PREDICTION]
        assert {k: record[k] for k in PATIENT} == PATIENT
        assert isinstance(record[diabetes.TIMESTAMP], float)

    def test_a_batch_keeps_the_callers_ids_in_order(self, client: FlaskClient,
                                                    service: Flask) -> None:
        batch = [{**PATIENT, "bmi": 20.0 + i, diabetes.ID: f"req-{i}"} for i in range(5)]
        answer = client.post("/predict", json={"instances": batch}).get_json()
        assert [p[diabetes.ID] for p in answer["predictions"]] == [f"req-{i}" for i in range(5)]
        logged = records(service.config["paths"].predictions)
        assert [r["bmi"] for r in logged] == [20.0 + i for i in range(5)]
        predictions = [r[diabetes.PREDICTION] for r in logged]
        assert predictions == sorted(predictions)  # bmi raises the predicted progression

    @pytest.mark.parametrize(("body", "message"), [
        ({k: v for k, v in PATIENT.items() if k != "bmi"}, "body: missing feature(s) bmi"),
        ({**PATIENT, "bp": "high"}, "body.bp: expected a finite number, got 'high'"),
        ({**PATIENT, "bp": True}, "body.bp: expected a finite number, got True"),
        ({"instances": [PATIENT, 3]}, "instances[1]: expected an object of features"),
        ({"instances": []}, "expected a JSON object of features"),
        ([1, 2], "body: expected an object of features"),
    ])
    def test_a_bad_request_is_refused_saying_why_and_logs_nothing(
            self, client: FlaskClient, service: Flask, body: object, message: str) -> None:
        answer = client.post("/predict", json=body)
        assert answer.status_code == 400
        assert message in answer.get_json()["error"]
        assert records(service.config["paths"].predictions) == []

    def test_feedback_is_logged_for_the_exporter_to_join_by_id(self, client: FlaskClient,
                                                              service: Flask) -> None:
        answer = client.post("/feedback", json={"labels": [
            {diabetes.ID: "a", diabetes.TARGET: 140}, {diabetes.ID: "b", diabetes.TARGET: 75.5}]})
        assert answer.get_json() == {"accepted": 2}
        logged = records(service.config["paths"].feedback)
        assert [(r[diabetes.ID], r[diabetes.TARGET]) for r in logged] == [("a", 140.0),
                                                                          ("b", 75.5)]
        bad = client.post("/feedback", json={diabetes.ID: "c", diabetes.TARGET: "bad"})
        assert bad.status_code == 400

    def test_healthz_and_index_describe_the_model(self, client: FlaskClient) -> None:
        assert client.get("/healthz").get_json()["model"] == diabetes.MODEL_NAME
        assert client.get("/").get_json()["features"] == list(diabetes.FEATURES)


class TestParquetMode:
    """The app can log Parquet batches instead of JSONL."""

    def test_predictions_reach_parquet_files_on_close(self, tmp_path: Path) -> None:
        flask_app = example_app.create_app(tmp_path, log_format="parquet")
        flask_app.test_client().post("/predict", json={"instances": [PATIENT] * 3})
        example_app.close_app(flask_app)
        files = list(example_app.Paths.under(tmp_path).predictions.glob("*.parquet"))
        assert len(files) == 1
        assert len(pd.read_parquet(files[0])) == 3


@pytest.fixture
def served(service: Flask) -> Iterator[str]:
    """The app served on a loopback port; its base URL."""
    server = make_server("127.0.0.1", 0, service, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


class TestLoadGenerator:
    """The load generator sends predictions and feedback, and shifts on demand."""

    def test_it_sends_batches_and_later_their_outcomes(self, served: str, service: Flask,
                                                       data: pd.DataFrame) -> None:
        generator = loadgen.LoadGenerator(served, rate=1000, batch=10, feedback_delay=5.0,
                                          seed=1, data=data)
        generator.step(now=100.0)
        generator.step(now=104.0)
        assert generator.stats.as_dict()["feedback"] == 0
        generator.step(now=105.0)  # the first batch's outcomes are due
        stats = generator.stats.as_dict()
        assert (stats["requests"], stats["records"], stats["feedback"]) == (3, 30, 10)
        logged = records(service.config["paths"].predictions)
        feedback = records(service.config["paths"].feedback)
        assert [r[diabetes.ID] for r in feedback] == [r[diabetes.ID] for r in logged[:10]]

    def test_the_control_endpoint_turns_the_shift_on_and_off(self, served: str,
                                                              service: Flask,
                                                              data: pd.DataFrame) -> None:
        generator = loadgen.LoadGenerator(served, rate=1000, batch=200, feedback_delay=0.0,
                                          seed=2, data=data)
        control = loadgen.control_server(generator, "127.0.0.1", 0)
        thread = threading.Thread(target=control.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{control.server_port}"
        try:
            assert loadgen.post_json(f"{base}/shift", {}) == {"shift": True}
            generator.step(now=1.0)
            request = loadgen.urllib.request.Request(f"{base}/shift", method="DELETE")
            with loadgen.urllib.request.urlopen(request, timeout=5) as response:
                assert json.loads(response.read()) == {"shift": False}
            generator.step(now=2.0)
            with loadgen.urllib.request.urlopen(f"{base}/stats", timeout=5) as response:
                stats = json.loads(response.read())
        finally:
            control.shutdown()
            control.server_close()
            thread.join()
        assert (stats["records"], stats["shifted_records"], stats["shift"]) == (400, 200, False)
        bmi = [r["bmi"] for r in records(service.config["paths"].predictions)]
        assert np.mean(bmi[:200]) > np.mean(bmi[200:]) + 3

    def test_run_stops_by_itself_after_its_duration(self, served: str,
                                                    data: pd.DataFrame) -> None:
        generator = loadgen.LoadGenerator(served, rate=200, batch=10, feedback_delay=0.0,
                                          data=data)
        generator.run(threading.Event(), duration=0.3)
        assert 1 <= generator.stats.as_dict()["requests"] <= 10

    def test_an_unreachable_app_is_counted_and_retried_not_fatal(
            self, data: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
        generator = loadgen.LoadGenerator("http://127.0.0.1:9", rate=10, batch=1,
                                          feedback_delay=0.0, data=data)
        monkeypatch.setattr(loadgen, "RETRY_SECONDS", 0.01)
        generator.run(threading.Event(), duration=0.2)
        assert generator.stats.as_dict()["errors"] >= 1


class TestAlertLog:
    """The compose stack's webhook receiver prints one line per alert."""

    def test_each_alert_becomes_a_line_with_status_name_labels_and_summary(self) -> None:
        payload = {"status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "FeatureDrift", "model": "m",
                                            "feature": "bmi", "severity": "warning"},
             "annotations": {"summary": "m: feature bmi drifted"}},
            {"status": "resolved", "labels": {"alertname": "DatasetDrift", "model": "m"},
             "annotations": {}}]}
        lines = alert_log.format_notification(payload, "/alerts/warning")
        assert lines == [
            "FIRING   FeatureDrift model=m feature=bmi severity=warning -> /alerts/warning: "
            "m: feature bmi drifted",
            "RESOLVED DatasetDrift model=m -> /alerts/warning: "]
