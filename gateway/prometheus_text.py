"""The Prometheus text exposition format (version 0.0.4), written by both planes' `/metrics`."""

from __future__ import annotations

import math
from collections.abc import Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Sequence[tuple[str, str]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Writes the Prometheus text format (version 0.0.4)."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: Labels, value: float) -> None:
        if labels:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            self._lines.append(f"{name}{{{inner}}} {_number(value)}")
        else:
            self._lines.append(f"{name} {_number(value)}")

    def histogram(
        self,
        name: str,
        labels: Labels,
        bounds: Sequence[float],
        buckets: Sequence[int],
        total: float,
    ) -> None:
        """One labelled histogram: `buckets` are per-bucket counts (not cumulative), one per
        bound plus the overflow."""
        running = 0
        for bound, count in zip((*bounds, math.inf), buckets, strict=True):
            running += count
            self.sample(f"{name}_bucket", (*labels, ("le", _number(bound))), running)
        self.sample(f"{name}_count", labels, running)
        self.sample(f"{name}_sum", labels, total)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"
