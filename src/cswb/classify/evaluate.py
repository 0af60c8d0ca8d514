"""Evaluation of the classifier against labelled call types, and leave-one-city-out.

Every figure is weighted by call volume (the ``count`` of each labelled type), as
CALL_TAXONOMY.md asks: a type with 100,000 calls matters 100,000 times more than a type seen once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cswb.classify.classifier import Classifier
from cswb.classify.labels import LabelledType
from cswb.classify.taxonomy import Taxonomy


@dataclass
class CategoryScore:
    """Precision and recall of one category (volume-weighted) and its shares of volume."""

    precision: float | None
    recall: float | None
    f1: float | None
    labelled_volume: int
    predicted_volume: int
    labelled_share_pct: float
    predicted_share_pct: float

    @property
    def share_gap_pp(self) -> float:
        return self.predicted_share_pct - self.labelled_share_pct


@dataclass
class Evaluation:
    """Figures of one labelled set."""

    name: str
    call_types: int
    volume: int
    accuracy: float
    macro_f1: float
    bh_recall: float | None
    categories: dict[str, CategoryScore]
    confusion: dict[str, dict[str, int]]
    decided_by: dict[str, int] = field(default_factory=dict)
    #: Share of calls cswb marks as behavioural health (category or a BH flag), in percent.
    bh_share_pct: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for code, score in self.categories.items():
            data["categories"][code]["share_gap_pp"] = round(score.share_gap_pp, 3)
        return data


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one labelled type."""

    category: str
    flags: tuple[str, ...]
    decided_by: str
    confidence: float


def predict(classifier: Classifier, labels: Sequence[LabelledType]) -> list[Prediction]:
    """Classify the labelled types as bare call types of their city."""
    table = classifier.classify_types([x.call_type for x in labels], [x.city for x in labels])
    return [Prediction(c, tuple(f), d, conf) for c, f, d, conf in zip(
        table.column("category").to_pylist(), table.column("flags").to_pylist(),
        table.column("decided_by").to_pylist(), table.column("confidence").to_pylist(),
        strict=True)]


def score(name: str, labels: Sequence[LabelledType], predictions: Sequence[Prediction],
          taxonomy: Taxonomy) -> Evaluation:
    """Volume-weighted figures of ``predictions`` against ``labels``."""
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    decided: dict[str, int] = defaultdict(int)
    volume = correct = bh_volume = bh_found = bh_marked = 0
    for label, pred in zip(labels, predictions, strict=True):
        bh_marked += label.count if taxonomy.is_bh(pred.category, pred.flags) else 0
        confusion[label.category][pred.category] += label.count
        decided[pred.decided_by.split("@")[0].split(":")[0]] += label.count
        volume += label.count
        correct += label.count if label.category == pred.category else 0
        if label.category == "behavioral_health":
            bh_volume += label.count
            bh_found += label.count if taxonomy.is_bh(pred.category, pred.flags) else 0
    categories = _category_scores(confusion, volume)
    present = [s.f1 or 0.0 for s in categories.values() if s.labelled_volume > 0]
    return Evaluation(name, len(labels), volume, correct / volume if volume else math.nan,
                      sum(present) / len(present) if present else math.nan,
                      bh_found / bh_volume if bh_volume else None, categories,
                      {k: dict(v) for k, v in confusion.items()}, dict(decided),
                      100 * bh_marked / volume if volume else 0.0)


def _category_scores(confusion: dict[str, dict[str, int]], volume: int
                     ) -> dict[str, CategoryScore]:
    predicted: dict[str, int] = defaultdict(int)
    for row in confusion.values():
        for pred, count in row.items():
            predicted[pred] += count
    out = {}
    for code in sorted(set(confusion) | set(predicted)):
        labelled = sum(confusion.get(code, {}).values())
        hit = confusion.get(code, {}).get(code, 0)
        precision = hit / predicted[code] if predicted[code] else None
        recall = hit / labelled if labelled else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision and recall else (0.0 if labelled else None))
        out[code] = CategoryScore(precision, recall, f1, labelled, predicted[code],
                                  100 * labelled / volume if volume else 0.0,
                                  100 * predicted[code] / volume if volume else 0.0)
    return out


def targets_met(evaluation: Evaluation) -> dict[str, bool | None]:
    """The held-out-city targets of issue 3, each as met or not (None: it cannot be measured,
    e.g. BH recall where nothing is labelled behavioural health)."""
    bh = evaluation.categories.get("behavioral_health")
    others = [s for c, s in evaluation.categories.items() if c != "behavioral_health"]
    return {
        "accuracy>=0.93": evaluation.accuracy >= 0.93,
        "macro_f1>=0.80": evaluation.macro_f1 >= 0.80,
        "bh_recall>=0.90": (None if evaluation.bh_recall is None
                            else evaluation.bh_recall >= 0.90),
        "bh_share<=0.5pp": bh is None or abs(bh.share_gap_pp) <= 0.5,
        "other_shares<=2pp": all(abs(s.share_gap_pp) <= 2.0 for s in others),
    }
