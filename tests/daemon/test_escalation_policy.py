"""Escalation parts without a broker: policy, uplink budget, JPEG size, reply matching and timeouts."""

from __future__ import annotations

import random
import threading

import cv2
import numpy as np
import pytest

from edge_sdk.daemon.config import EscalationSection, UplinkSection
from edge_sdk.daemon.escalation import EscalationPolicy, Escalator, UplinkBudget, encode_jpeg
from edge_sdk.package.results import BoundingBox, Detection, InferenceResult


def result(*items: tuple[str, float]) -> InferenceResult:
    return InferenceResult("detection", "m", "1", detections=tuple(Detection(1, label, score, BoundingBox(0, 0, 10, 10)) for label, score in items))


def test_policy_reasons() -> None:
    policy = EscalationPolicy(EscalationSection(enabled=True, below_score=0.5, labels=("stop sign",)))
    assert policy.decide(result(("car", 0.3))) == "low_score"
    assert policy.decide(result()) == "low_score"
    assert policy.decide(result(("stop sign", 0.9))) == "label"
    assert policy.decide(result(("car", 0.9))) is None


def test_policy_disabled_never_escalates() -> None:
    policy = EscalationPolicy(EscalationSection(enabled=False, below_score=1.0, sample_rate=1.0))
    assert policy.decide(result(("car", 0.1))) is None


def test_policy_sample_rate_fraction() -> None:
    policy = EscalationPolicy(EscalationSection(enabled=True, sample_rate=0.2), rng=random.Random(7))
    sampled = sum(policy.decide(result(("car", 0.9))) == "sample" for _ in range(5000))
    assert 800 < sampled < 1200


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_token_bucket_holds_rate() -> None:
    clock = FakeClock()
    budget = UplinkBudget(UplinkSection(bytes_per_s=1000, burst_bytes=2000, bytes_per_day=10**9), clock=clock)
    assert budget.try_spend(1500)
    assert not budget.try_spend(1000)
    clock.now = 0.5
    assert budget.try_spend(1000)
    assert not budget.try_spend(1)
    spent = 2500
    for step in range(1, 101):
        clock.now = 0.5 + step * 0.1
        if budget.try_spend(300):
            spent += 300
    assert spent <= 2000 + 1000 * clock.now


def test_budget_daily_cap() -> None:
    clock = FakeClock()
    budget = UplinkBudget(UplinkSection(bytes_per_s=10**6, burst_bytes=10**6, bytes_per_day=2500), clock=clock)
    assert budget.try_spend(1000)
    assert budget.try_spend(1000)
    assert not budget.try_spend(1000)
    assert budget.stats()["spent_today_bytes"] == 2000


def test_budget_rejects_frame_larger_than_burst() -> None:
    budget = UplinkBudget(UplinkSection(bytes_per_s=10**6, burst_bytes=100, bytes_per_day=10**9))
    assert not budget.try_spend(101)


def test_encode_jpeg_downscales_to_max_side() -> None:
    image = np.random.default_rng(0).integers(0, 255, (540, 960, 3), dtype=np.uint8)
    jpeg = encode_jpeg(image, max_side=320, quality=70)
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (180, 320, 3)
    assert len(encode_jpeg(image, max_side=320, quality=30)) < len(jpeg)


def make_escalator(budget_ok: bool = True):
    sent: list[str] = []
    answers = []
    sent_event = threading.Event()

    def send(ticket, jpeg, try_spend):
        assert jpeg[:2] == b"\xff\xd8"
        if not budget_ok:
            return None
        sent.append(ticket.correlation_id)
        sent_event.set()
        return len(jpeg)

    escalator = Escalator(UplinkBudget(UplinkSection()), send, answers.append)
    escalator.start()
    return escalator, sent, answers, sent_event


def offer(escalator: Escalator, section: EscalationSection, frame_seq: int = 0):
    image = np.zeros((60, 80, 3), np.uint8)
    return escalator.offer(EscalationPolicy(section), result(("car", 0.1)), frame_id=f"front:{frame_seq}", source_id="front", frame_seq=frame_seq, capture_time=1.0, image=image)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    event = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        event.wait(0.05)
    return predicate()


def test_escalator_matches_answer_by_correlation_id() -> None:
    escalator, sent, answers, _ = make_escalator()
    try:
        ticket = offer(escalator, EscalationSection(enabled=True, below_score=0.5))
        assert ticket is not None
        assert wait_for(lambda: sent == [ticket.correlation_id])
        escalator.handle_reply(ticket.correlation_id, {"task": "detection"}, None, {"name": "big", "version": "2"}, "w1")
        escalator.handle_reply(ticket.correlation_id, {"task": "detection"}, None, {"name": "big", "version": "2"}, "w1")
        escalator.handle_reply("unknown", {"task": "detection"}, None, {"name": "big", "version": "2"}, "w1")
    finally:
        escalator.close()
    assert len(answers) == 1
    assert answers[0].ticket.frame_id == "front:0"
    assert answers[0].rtt_ms >= 0
    stats = escalator.stats()
    assert stats["answered"] == 1
    assert stats["unmatched_replies"] == 2
    assert stats["pending"] == 0


def test_escalator_times_out_and_counts_late_answer() -> None:
    escalator, sent, answers, _ = make_escalator()
    try:
        ticket = offer(escalator, EscalationSection(enabled=True, below_score=0.5, timeout_s=0.2))
        assert wait_for(lambda: escalator.stats().get("timed_out", 0) == 1)
        escalator.handle_reply(ticket.correlation_id, {"task": "detection"}, None, {"name": "big", "version": "2"}, "w1")
    finally:
        escalator.close()
    assert answers == []
    assert escalator.stats()["late_replies"] == 1


def test_escalator_budget_refusal_counted() -> None:
    escalator, _, _, _ = make_escalator(budget_ok=False)
    try:
        offer(escalator, EscalationSection(enabled=True, below_score=0.5))
        assert wait_for(lambda: escalator.stats().get("skipped_budget", 0) == 1)
    finally:
        escalator.close()
    assert escalator.stats()["pending"] == 0


def test_escalator_never_blocks_when_pending_full() -> None:
    escalator, sent, _, _ = make_escalator()
    section = EscalationSection(enabled=True, below_score=0.5, max_pending=2, timeout_s=30)
    try:
        tickets = [offer(escalator, section, seq) for seq in range(6)]
    finally:
        escalator.close()
    assert sum(t is not None for t in tickets) == 2
    assert escalator.stats()["skipped_pending_full"] == 4


def test_encode_jpeg_rejects_empty_image() -> None:
    with pytest.raises(ValueError, match="empty 0x0 image"):
        encode_jpeg(np.zeros((0, 0, 3), np.uint8), 320, 80)
