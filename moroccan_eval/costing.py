"""Token and hosting cost, currency conversion, latency statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .stats.spill import FloatColumn

Currency = Literal["MAD", "USD"]

#: MAD per USD used when no rate is given. Shown in every report next to converted figures;
#: override with ``--usd-mad`` or ``MOROCCAN_EVAL_USD_MAD``.
DEFAULT_USD_MAD = 10.0


class Pricing(BaseModel):
    """What a model costs: per-1M-token prices and/or an hourly hosting price."""

    model_config = ConfigDict(extra="forbid")
    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
    hosting_per_hour: float = Field(default=0.0, ge=0)
    currency: Currency = "USD"

    def token_cost(self, input_tokens: int, output_tokens: int) -> float:
        """Cost of one request's tokens, in ``self.currency``."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6

    def hosting_cost_per_request(self, mean_latency_s: float, concurrency: int) -> float:
        """Hourly hosting spread over requests, assuming the server is kept busy at the
        configured concurrency: each request occupies ``latency / concurrency`` seconds."""
        if self.hosting_per_hour == 0 or concurrency <= 0:
            return 0.0
        return self.hosting_per_hour / 3600.0 * mean_latency_s / concurrency


def convert(amount: float, source: Currency, target: Currency, usd_mad: float) -> float:
    """Convert between MAD and USD at ``usd_mad`` dirhams per dollar."""
    if source == target:
        return amount
    return amount * usd_mad if source == "USD" else amount / usd_mad


class LatencyStats(TypedDict):
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None


def latency_stats(latencies_ms: FloatColumn) -> LatencyStats:
    """p50/p95/p99 and mean latency in milliseconds (``None`` when there are no samples):
    numpy's ``percentile`` and ``mean`` of them, to the bit."""
    if len(latencies_ms) == 0:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None}
    p50, p95, p99 = latencies_ms.percentiles([50, 95, 99])
    return {
        "p50_ms": round(p50, 3),
        "p95_ms": round(p95, 3),
        "p99_ms": round(p99, 3),
        "mean_ms": round(latencies_ms.mean(), 3),
    }
