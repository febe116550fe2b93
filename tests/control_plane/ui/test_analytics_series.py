"""Chart series from analytics answers: empty buckets drawn as zeros, groups as datasets."""

from __future__ import annotations

from control_plane.ui.analytics import latency, series, totals


def _row(bucket: int, status: str, requests: int, p50: float) -> dict[str, object]:
    return {
        "bucket": bucket,
        "group": {"status_class": status},
        "requests": requests,
        "latency_ms": {"p50": p50, "p95": p50 * 2, "p99": p50 * 3},
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "cost": 0.5,
    }


BODY = {
    "data": [_row(120, "2xx", 2, 10.0), _row(240, "2xx", 1, 20.0), _row(240, "5xx", 4, 30.0)],
    "start": 60,
    "end": 300,
    "interval": "minute",
}


def test_every_bucket_of_the_range_is_drawn() -> None:
    chart = series(BODY, "requests")
    assert chart["labels"] == ["01-01 00:01", "01-01 00:02", "01-01 00:03", "01-01 00:04"]
    assert chart["datasets"] == [
        {"label": "2xx", "data": [0.0, 2.0, 0.0, 1.0]},
        {"label": "5xx", "data": [0.0, 0.0, 0.0, 4.0]},
    ]


def test_latency_has_gaps_where_nothing_was_measured() -> None:
    body = {**BODY, "data": [_row(120, "", 2, 10.0), _row(240, "", 1, 20.0)]}
    chart = latency(body)
    assert chart["datasets"][0]["data"] == [None, 10.0, None, 20.0]
    assert chart["datasets"][1]["data"] == [None, 20.0, None, 40.0]


def test_totals_rank_groups_by_spend() -> None:
    ranked = totals(BODY)
    assert [(r["group"], r["requests"], r["cost"]) for r in ranked] == [
        ("2xx", 3.0, 1.0),
        ("5xx", 4.0, 0.5),
    ]
