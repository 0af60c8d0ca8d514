"""Leave-one-city-out evaluation: how cswb does on a city it has never seen.

For each city in the labelled file, the model is retrained without it, overrides of that city
are dropped, and the city's types are classified and scored. The rules are the shipped ones
(see docs/classify.md for how they were written). A plain character n-gram logistic regression
trained the same way is scored alongside as the baseline. Known labelling habits of a city that
contradict CALL_TAXONOMY.md (``label_habits.yaml``) are listed, and the figures are shown
with and without those types.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from cswb.classify.classifier import Classifier
from cswb.classify.evaluate import Evaluation, Prediction, predict, score
from cswb.classify.labels import LabelledType
from cswb.classify.normalise import normalise
from cswb.classify.rules import load_rules
from cswb.classify.taxonomy import Taxonomy, load_taxonomy, taxonomy_text
from cswb.classify.training import train_from_labels, volume_weight
from cswb.errors import ClassifyError


@dataclass(frozen=True)
class LabelHabit:
    """A city's labelling habit that contradicts the taxonomy."""

    city: str
    pattern: str
    label: str
    taxonomy: str
    reason: str

    def matches(self, item: LabelledType) -> bool:
        return (item.city.casefold() == self.city.casefold() and item.category == self.label
                and re.search(self.pattern, normalise(item.call_type)) is not None)


@dataclass
class Disagreement:
    """A labelled type where a rule (the taxonomy) and the city's label differ."""

    call_type: str
    count: int
    label: str
    predicted: str
    decided_by: str
    habit: str | None


@dataclass
class CityResult:
    """Everything printed for one held-out city."""

    city: str
    evaluation: Evaluation
    without_habits: Evaluation | None
    habit_types: int
    habit_volume: int
    baseline: dict[str, float]
    disagreements: list[Disagreement]


@cache
def load_habits() -> tuple[LabelHabit, ...]:
    """The documented labelling habits (package data ``label_habits.yaml``)."""
    text = resources.files("cswb.classify").joinpath("label_habits.yaml").read_text("utf-8")
    raw = yaml.safe_load(text) or {}
    out = []
    for i, item in enumerate(raw.get("habits", [])):
        try:
            out.append(LabelHabit(item["city"], item["pattern"], item["label"],
                                  item["taxonomy"], " ".join(str(item["reason"]).split())))
            re.compile(item["pattern"])
        except (KeyError, TypeError, re.error) as exc:
            raise ClassifyError(f"label_habits.yaml: habits[{i}] is invalid: {exc}") from None
    return tuple(out)


def cross_city(labels: Sequence[LabelledType], overrides: Sequence[LabelledType] = (),
               review_below: float = 0.6, model_min_confidence: float = 0.3,
               top: int = 15) -> list[CityResult]:
    """Leave-one-city-out over every city of ``labels``."""
    taxonomy = load_taxonomy()
    cities = sorted({x.city for x in labels})
    if len(cities) < 2:
        raise ClassifyError("cross-city evaluation needs labelled types of at least two cities")
    results = []
    for city in cities:
        held = [x for x in labels if x.city == city]
        model = train_from_labels(labels, exclude_cities=[city])
        kept = [o for o in overrides if o.city.casefold() != city.casefold()]
        classifier = Classifier(taxonomy, load_rules(taxonomy), model, kept,
                                review_below=review_below,
                                model_min_confidence=model_min_confidence,
                                version_parts=(taxonomy_text(),))
        predictions = predict(classifier, held)
        results.append(_city_result(city, held, predictions, labels=labels, taxonomy=taxonomy,
                                    top=top))
    return results


def _city_result(city: str, held: list[LabelledType], predictions: list[Prediction], *,
                 labels: Sequence[LabelledType], taxonomy: Taxonomy, top: int) -> CityResult:
    habits = [h for h in load_habits() if h.city.casefold() == city.casefold()]
    habit_of = [next((h for h in habits if h.matches(x)), None) for x in held]
    evaluation = score(city, held, predictions, taxonomy)
    keep = [i for i, h in enumerate(habit_of) if h is None]
    without = None
    if len(keep) < len(held):
        without = score(f"{city} without its labelling habits", [held[i] for i in keep],
                        [predictions[i] for i in keep], taxonomy)
    disagreements = [
        Disagreement(x.call_type, x.count, x.category, p.category, p.decided_by,
                     h.reason if h else None)
        for x, p, h in zip(held, predictions, habit_of, strict=True)
        if p.category != x.category and (h is not None or p.decided_by.startswith("rule:"))]
    disagreements.sort(key=lambda d: -d.count)
    return CityResult(city, evaluation, without, len(held) - len(keep),
                      sum(held[i].count for i in range(len(held)) if habit_of[i] is not None),
                      baseline(labels, city, taxonomy), disagreements[:top])


def baseline(labels: Sequence[LabelledType], city: str, taxonomy: Taxonomy) -> dict[str, float]:
    """A plain character n-gram logistic regression on the raw strings, trained without
    ``city``: the figure cswb has to beat."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train = [x for x in labels if x.city != city]
    test = [x for x in labels if x.city == city]
    vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=True)
    matrix = vectoriser.fit_transform([x.call_type for x in train])
    model = LogisticRegression(max_iter=2000)
    model.fit(matrix, [x.category for x in train])
    predicted = model.predict(vectoriser.transform([x.call_type for x in test]))
    fake = [Prediction(str(p), (), "baseline", 1.0) for p in predicted]
    result = score(f"{city} baseline", test, fake, taxonomy)
    return {"accuracy": result.accuracy, "macro_f1": result.macro_f1}


def result_dict(result: CityResult) -> dict[str, Any]:
    """A JSON-ready form of one city's result."""
    return {
        "city": result.city, "figures": result.evaluation.as_dict(),
        "without_habits": result.without_habits.as_dict() if result.without_habits else None,
        "habit_types": result.habit_types, "habit_volume": result.habit_volume,
        "baseline": result.baseline,
        "disagreements": [d.__dict__ for d in result.disagreements],
    }


__all__ = ["CityResult", "LabelHabit", "cross_city", "load_habits", "result_dict",
           "volume_weight"]
