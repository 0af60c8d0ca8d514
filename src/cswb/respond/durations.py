"""Distributions of durations (minutes): travel and on-scene times of a crisis team.

Four kinds: ``quantiles`` (an empirical quantile function at equally spaced probabilities,
linearly interpolated: the non-parametric fit used by default), ``lognormal`` (``mu``,
``sigma`` of the log), ``exponential`` (``mean``) and ``constant`` (``value``). Every kind can
be sampled (vectorised, from a seeded generator), and gives its mean, CDF and quantiles, which
is what the Erlang-C estimate and the impossible-target check need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from cswb.errors import ConfigError

Kind = Literal["quantiles", "lognormal", "exponential", "constant"]
_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True)
class Duration:
    """A distribution of a non-negative duration in minutes."""

    kind: Kind
    mu: float = 0.0
    sigma: float = 0.0
    mean_minutes: float = 0.0
    value: float = 0.0
    quantiles: tuple[float, ...] = ()

    @classmethod
    def exponential(cls, mean: float) -> Duration:
        return cls("exponential", mean_minutes=mean)

    @classmethod
    def constant(cls, value: float) -> Duration:
        return cls("constant", value=value)

    @classmethod
    def lognormal(cls, mu: float, sigma: float) -> Duration:
        return cls("lognormal", mu=mu, sigma=sigma)

    @classmethod
    def from_quantiles(cls, values: list[float] | tuple[float, ...]) -> Duration:
        if len(values) < 2 or any(b < a for a, b in pairwise(values)):
            raise ConfigError("a quantile distribution needs at least two non-decreasing values")
        return cls("quantiles", quantiles=tuple(float(v) for v in values))

    @property
    def _probs(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, len(self.quantiles))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws."""
        if self.kind == "quantiles":
            return np.interp(rng.random(n), self._probs, np.asarray(self.quantiles))
        if self.kind == "lognormal":
            return rng.lognormal(self.mu, self.sigma, n)
        if self.kind == "exponential":
            return rng.exponential(self.mean_minutes, n)
        return np.full(n, self.value)

    def mean(self) -> float:
        if self.kind == "quantiles":
            return float(np.trapezoid(self.quantiles, self._probs))
        if self.kind == "lognormal":
            return math.exp(self.mu + self.sigma**2 / 2)
        if self.kind == "exponential":
            return self.mean_minutes
        return self.value

    def cdf(self, minutes: float) -> float:
        """P(duration <= minutes)."""
        if self.kind == "quantiles":
            values = np.asarray(self.quantiles)
            if minutes < values[0]:
                return 0.0
            if minutes >= values[-1]:
                return 1.0
            return _cdf_with_ties(values, self._probs, minutes)
        if self.kind == "lognormal":
            return 0.0 if minutes <= 0 else _STANDARD_NORMAL.cdf(
                (math.log(minutes) - self.mu) / self.sigma)
        if self.kind == "exponential":
            return 0.0 if minutes < 0 else 1.0 - math.exp(-minutes / self.mean_minutes)
        return 1.0 if minutes >= self.value else 0.0

    def cdf_array(self, minutes: np.ndarray) -> np.ndarray:
        """P(duration <= m) for every m of ``minutes`` (vectorised :meth:`cdf`)."""
        x = np.asarray(minutes, dtype=float)
        if self.kind == "quantiles":
            values, probs = np.asarray(self.quantiles), self._probs
            above = np.searchsorted(values, x, side="right")
            inner = np.clip(above, 1, len(values) - 1)
            low, high = values[inner - 1], values[inner]
            width = np.where(high > low, high - low, 1.0)
            fraction = np.where(high > low, (x - low) / width, 0.0)
            result = probs[inner - 1] + fraction * (probs[inner] - probs[inner - 1])
            return np.where(above == 0, 0.0, np.where(above >= len(values), 1.0, result))
        if self.kind == "exponential":
            return np.where(x < 0, 0.0, 1.0 - np.exp(-np.maximum(x, 0) / self.mean_minutes))
        if self.kind == "constant":
            return (x >= self.value).astype(float)
        return np.array([self.cdf(float(v)) for v in x])

    def quantile(self, p: float) -> float:
        if self.kind == "quantiles":
            return float(np.interp(p, self._probs, np.asarray(self.quantiles)))
        if self.kind == "lognormal":
            return math.exp(self.mu + self.sigma * _STANDARD_NORMAL.inv_cdf(p))
        if self.kind == "exponential":
            return -self.mean_minutes * math.log(1.0 - p)
        return self.value

    def grid(self, points: int = 2000) -> np.ndarray:
        """``points`` equally weighted values (mid-quantiles), for numerical expectations."""
        probs = (np.arange(points) + 0.5) / points
        if self.kind == "quantiles":
            return np.interp(probs, self._probs, np.asarray(self.quantiles))
        return np.array([self.quantile(float(p)) for p in probs])

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "quantiles":
            return {"kind": "quantiles", "quantiles": [round(v, 3) for v in self.quantiles]}
        if self.kind == "lognormal":
            return {"kind": "lognormal", "mu": self.mu, "sigma": self.sigma}
        if self.kind == "exponential":
            return {"kind": "exponential", "mean": self.mean_minutes}
        return {"kind": "constant", "value": self.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Duration:
        kind = data.get("kind")
        try:
            if kind == "quantiles":
                return cls.from_quantiles(list(data["quantiles"]))
            if kind == "lognormal":
                return cls.lognormal(float(data["mu"]), float(data["sigma"]))
            if kind == "exponential":
                return cls.exponential(float(data["mean"]))
            if kind == "constant":
                return cls.constant(float(data["value"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"duration of kind {kind!r} is missing or has a bad {exc}") from None
        raise ConfigError(f"unknown duration kind {kind!r} "
                          "(quantiles, lognormal, exponential, constant)")


def _cdf_with_ties(values: np.ndarray, probs: np.ndarray, minutes: float) -> float:
    """CDF of a piecewise-linear quantile function whose values repeat (minute-rounded data)."""
    above = int(np.searchsorted(values, minutes, side="right"))
    if above >= len(values):
        return 1.0
    low, high = values[above - 1], values[above]
    fraction = 0.0 if high == low else (minutes - low) / (high - low)
    return float(probs[above - 1] + fraction * (probs[above] - probs[above - 1]))
