"""Checks `edge-sdk demo` makes before any part starts, the error collector and the progress lines."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from edge_sdk.cli import main
from edge_sdk.demo.broker import BROKER_THREAD_NAME, free_loopback_port
from edge_sdk.demo.run import _collect_errors
from edge_sdk.demo.view import DemoSnapshot, LiveView, rows


def test_demo_rejects_unreachable_broker(tmp_path, capsys):
    url = f"mqtt://127.0.0.1:{free_loopback_port()}"
    out_dir = tmp_path / "demo"
    assert main(["demo", "--broker", url, "--out", str(out_dir), "--no-live"]) == 1
    err = capsys.readouterr().err
    assert url in err
    assert "cannot be reached" in err
    assert not (out_dir / "report.json").exists()
    assert not (out_dir / "road.mp4").exists()


def test_demo_rejects_text_file_model(tmp_path, capsys, caplog):
    model = tmp_path / "notes.tflite"
    model.write_text("not a model\n", encoding="utf-8")
    out_dir = tmp_path / "demo"
    with caplog.at_level(logging.WARNING, logger="edge_sdk.demo"):
        assert main(["demo", "--model", str(model), "--out", str(out_dir), "--no-live"]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert str(model) in err
    assert "models.signs" not in err
    assert not (out_dir / "road.mp4").exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("--cloud-model" in message for message in warnings)


def test_error_collector_counts_broker_errors():
    def log_from_broker_thread() -> None:
        logging.getLogger("asyncio").error("Task exception was never retrieved")

    with _collect_errors() as collector:
        logging.getLogger("amqtt.broker").error("dictionary changed size during iteration")
        broker_thread = threading.Thread(target=log_from_broker_thread, name=BROKER_THREAD_NAME)
        broker_thread.start()
        broker_thread.join()
        logging.getLogger("asyncio").error("an error on another event loop")
    assert collector.messages == [
        "amqtt.broker: dictionary changed size during iteration",
        "asyncio: Task exception was never retrieved",
    ]


def test_error_collector_keeps_exception_text():
    async def fail() -> None:
        raise RuntimeError("dictionary changed size during iteration")

    def run_loop() -> None:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(fail())
            loop.run_until_complete(asyncio.wait([task]))
            loop.call_exception_handler({"message": "Task exception was never retrieved", "exception": task.exception()})
        finally:
            loop.close()

    with _collect_errors() as collector:
        thread = threading.Thread(target=run_loop, name=BROKER_THREAD_NAME)
        thread.start()
        thread.join()
    assert len(collector.messages) == 1
    assert "RuntimeError: dictionary changed size during iteration" in collector.messages[0]


def test_live_view_sends_lines_without_drawing():
    lines: list[str] = []
    done = threading.Event()

    def sink(line: str) -> None:
        lines.append(line)
        if len(lines) >= 2:
            done.set()

    view = LiveView(lambda: DemoSnapshot(elapsed_s=1.0, duration_s=8.0, frames=3), draw=False, line_sink=sink, interval_s=0.05)
    view.start()
    assert done.wait(10.0)
    view.stop()
    assert "frames published 3" in lines[0]
    assert lines[-1].startswith("demo: ")


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(4.0, "4 / 8 s"), (12.0, "8 s run, 4 s stopping")],
)
def test_view_time_row(elapsed, expected):
    values = dict(rows(DemoSnapshot(elapsed_s=elapsed, duration_s=8.0, fps=0.0, fps_average=14.6)))
    assert values["time"] == expected
    assert values["throughput"] == "0.0 frames/s now, 14.6 average"


def test_demo_rejects_text_file_cloud_model(tmp_path, capsys):
    model = tmp_path / "cloud.keras"
    model.write_text("not a model\n", encoding="utf-8")
    out_dir = tmp_path / "demo"
    assert main(["demo", "--cloud-model", str(model), "--out", str(out_dir), "--no-live"]) == 1
    err = capsys.readouterr().err
    assert f"cloud model {model} failed to load" in err
    assert not (out_dir / "road.mp4").exists()
