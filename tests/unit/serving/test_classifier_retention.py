"""Request-log retention while the classifier runs (not only at start), driven by an injected clock.

The real app and sqlite store answer ``check-cache`` requests (no backend call) on four
consecutive days; the first request of each day queues one purge on the request-log writer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from foresight.serving.classifier.errors import StoreError
from foresight.serving.classifier.service import PURGE_RETRY_SECONDS, ClassifierService
from foresight.serving.classifier.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
SHA = "ab" * 32
DAYS = ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04")


class PurgeRecordingStore(SqliteStore):
    """The real sqlite store, noting each purge's cutoff; ``fail_purges`` makes purges fail."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.cutoffs: list[str] = []
        self.fail_purges = False

    def purge(self, before_day: str) -> int:
        self.cutoffs.append(before_day)
        if self.fail_purges:
            raise StoreError("purge failed (injected by the test)")
        return super().purge(before_day)


def _app(tmp_path: Path, now: list[float]) -> tuple[TestClient, PurgeRecordingStore]:
    path = tmp_path / "classifier.db"
    store = PurgeRecordingStore(path)
    config = ClassifierConfig.model_validate({"cache": {"sqlite_path": str(path), "retention_days": 2}})
    # The DashScope backend is built but never called: check-cache only reads the store.
    app = create_app(config, store=store, clock=lambda: now[0], environ={"DASHSCOPE_API_KEY": "sk-unused"})
    return TestClient(app), store


def _check_cache(client: TestClient) -> None:
    r = client.post("/api/v1/classify/check-cache", json={"sha256": SHA})
    assert r.status_code == 200 and r.json()["hit"] is False


def test_old_request_log_days_are_purged_while_the_service_runs(tmp_path: Path) -> None:
    now = [T0]
    client, store = _app(tmp_path, now)
    with client:
        service: ClassifierService = client.app.state.classifier.service  # type: ignore[attr-defined]
        assert store.cutoffs == ["2025-12-30"]  # the purge at start (2 days before 2026-01-01)
        for d in range(len(DAYS)):
            for hour in (0, 5, 14):  # several requests, hours apart, within one day
                now[0] = T0 + d * DAY + hour * 3600
                _check_cache(client)
            service.writer.flush()
        # One purge per new day, however many requests that day had.
        assert store.cutoffs == ["2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02"]
        # On 2026-01-04 with 2 days' retention everything before 2026-01-02 is gone.
        assert {day: service.day_stats(day).requests for day in DAYS} == {
            "2026-01-01": 0,
            "2026-01-02": 3,
            "2026-01-03": 3,
            "2026-01-04": 3,
        }
        assert client.get("/api/v1/stats/today").json()["requests"] == 3


def test_a_failed_purge_is_retried_at_most_once_an_hour(tmp_path: Path) -> None:
    now = [T0]
    client, store = _app(tmp_path, now)
    with client:
        service: ClassifierService = client.app.state.classifier.service  # type: ignore[attr-defined]
        store.fail_purges = True
        now[0] = T0 + 2 * DAY  # 2026-01-03: its first request tries the purge, which fails
        for _ in range(5):
            _check_cache(client)
            service.writer.flush()
        assert store.cutoffs == ["2025-12-30", "2026-01-01"]
        now[0] += PURGE_RETRY_SECONDS - 1
        _check_cache(client)
        service.writer.flush()
        assert len(store.cutoffs) == 2  # still within the hour: no new try
        store.fail_purges = False
        now[0] += 2
        _check_cache(client)
        _check_cache(client)
        service.writer.flush()
        assert store.cutoffs == ["2025-12-30", "2026-01-01", "2026-01-01"]  # one retry, then done
        assert service.day_stats("2026-01-03").requests == 8  # a failing purge lost no records
