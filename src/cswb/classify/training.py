"""Training the learned layer from labelled call types (``cswb classify train``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cswb.classify.labels import LabelledType
from cswb.classify.model import TextModel, train_model
from cswb.classify.normalise import normalise
from cswb.errors import ClassifyError


def volume_weight(count: int) -> float:
    """Training weight of a labelled type: grows with its volume, but only logarithmically,
    so a city's few huge types do not drown the many small ones."""
    return 1.0 + math.log1p(max(count, 0))


def train_from_labels(labels: Sequence[LabelledType], exclude_cities: Sequence[str] = ()
                      ) -> TextModel:
    """Fit the model on every labelled type except those of ``exclude_cities``."""
    excluded = {c.strip().casefold() for c in exclude_cities}
    rows = [x for x in labels if x.city.strip().casefold() not in excluded
            and x.category != "unknown"]
    if not rows:
        raise ClassifyError("no labelled call types left to train on after excluding "
                            f"{', '.join(sorted(exclude_cities))}")
    cities = sorted({x.city for x in rows})
    meta = {"trained_on": cities, "call_types": len(rows),
            "excluded": sorted(exclude_cities)}
    return train_model([normalise(x.call_type) for x in rows], [x.category for x in rows],
                       [volume_weight(x.count) for x in rows], meta)
