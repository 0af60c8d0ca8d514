"""The layered call classifier: overrides, then rules, then the learned model.

:meth:`Classifier.classify_keys` takes one row per distinct call key (source, initial and final
call type, disposition, priority) and returns one classification per row, in order. Work is done
once per distinct string: call types are normalised and matched once each, the model predicts
in batches over the distinct normalised strings that no rule placed, and the results are
gathered back to rows with NumPy. How the two call types combine:

- the final type decides unless it is missing or ``unknown``, or the initial type is much more
  certain (``CONFIDENCE_MARGIN``); flags of both types are kept (an initial "person in crisis"
  closed as a disturbance is still a mental-health call);
- when the two disagree with equal confidence, a priority 1-2 call takes the crime-group one;
- the disposition only adds flags (e.g. transported for a mental-health evaluation);
- flags implied by others (``suicide`` → ``mental_health``) or by the category
  (``domestic_violence`` → ``domestic``) are added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cswb.classify.labels import LabelledType, label_key
from cswb.classify.model import TextModel, load_model
from cswb.classify.normalise import normalise
from cswb.classify.overrides import read_overrides
from cswb.classify.rules import RuleSet, first_category_rule, flag_bits, load_rules, rules_text
from cswb.classify.taxonomy import UNKNOWN, Taxonomy, load_taxonomy, taxonomy_text
from cswb.errors import ClassifyError
from cswb.settings import Settings

#: Bump when the combination logic changes, so stored classifications are redone.
LOGIC_VERSION = "2"  # 2: the model never decides a text it knows nothing of
KEY_COLUMNS = ("source", "initial_call_type", "final_call_type", "disposition_raw",
               "priority_raw", "priority")
OUTPUT_SCHEMA = pa.schema([
    pa.field("category", pa.string(), nullable=False),
    pa.field("flags", pa.list_(pa.string()), nullable=False),
    pa.field("confidence", pa.float64(), nullable=False),
    pa.field("decided_by", pa.string(), nullable=False),
    pa.field("taxonomy_version", pa.string(), nullable=False),
    pa.field("unknown_reason", pa.string()),
    pa.field("review", pa.bool_(), nullable=False),
])
#: The initial type wins over the final one only when this much more confident.
CONFIDENCE_MARGIN = 0.25
#: A rule this weak (a generic word) lets a more confident model decide.
WEAK_RULE = 0.6
CATEGORY_FLAGS = {"domestic_violence": ("domestic",)}
REASON_EMPTY = "empty call type"
REASON_NO_WORDS = "call type has no words"
DECIDED_EMPTY = "rule:empty"
DECIDED_NO_MATCH = "rule:no_match"


@dataclass
class Verdicts:
    """Per-string results: category, confidence, flags (bit mask), decider, unknown reason."""

    category: np.ndarray  # object (str)
    confidence: np.ndarray  # float64
    flags: np.ndarray  # int64 bit mask
    decided_by: np.ndarray  # object (str)
    reason: np.ndarray  # object (str | None)

    @classmethod
    def empty(cls, n: int) -> Verdicts:
        return cls(np.full(n, UNKNOWN, dtype=object), np.zeros(n), np.zeros(n, dtype=np.int64),
                   np.full(n, DECIDED_EMPTY, dtype=object), np.full(n, REASON_EMPTY, dtype=object))

    def take(self, index: np.ndarray) -> Verdicts:
        return Verdicts(self.category[index], self.confidence[index], self.flags[index],
                        self.decided_by[index], self.reason[index])


@dataclass
class _OverrideTable:
    """The overrides as arrays, for vectorised lookup."""

    keys: pa.Array
    category: np.ndarray
    reason: np.ndarray
    flags: np.ndarray
    has_flags: np.ndarray

    @classmethod
    def build(cls, overrides: dict[str, LabelledType], bit: Callable[[str], int]
              ) -> _OverrideTable:
        items = list(overrides.values())
        return cls(
            pa.array(list(overrides), type=pa.string()),
            np.array([o.category for o in items], dtype=object),
            np.array([None if o.category != UNKNOWN else
                      (o.note or "set to unknown by an analyst's override") for o in items],
                     dtype=object),
            np.array([sum(bit(f) for f in o.flags) for o in items], dtype=np.int64),
            np.array([bool(o.flags) for o in items], dtype=bool))


class Classifier:
    """Overrides, rules and model over a taxonomy; see the module docstring."""

    def __init__(self, taxonomy: Taxonomy, rules: RuleSet, model: TextModel | None,
                 overrides: Sequence[LabelledType] = (), *, review_below: float = 0.6,
                 model_min_confidence: float = 0.3, version_parts: Sequence[str] = ()) -> None:
        self.taxonomy = taxonomy
        self.rules = rules
        self.model = model
        self.review_below = review_below
        self.model_min_confidence = model_min_confidence
        self._flag_codes = taxonomy.flag_codes
        self._implied = {self._bit(f): sum(self._bit(i) for i in implied)
                         for f, implied in taxonomy.implied_flags().items()}
        self._category_bits = {c: sum(self._bit(f) for f in flags)
                               for c, flags in CATEGORY_FLAGS.items()}
        self._overrides = {label_key(o.city, o.call_type): o for o in overrides}
        self._override_table = _OverrideTable.build(self._overrides, self._bit)
        digest = hashlib.sha256()
        for part in (LOGIC_VERSION, str(review_below), str(model_min_confidence),
                     model.label if model else "no-model", *version_parts,
                     *sorted(f"{k}={o.category};{','.join(o.flags)}"
                             for k, o in self._overrides.items())):
            digest.update(part.encode("utf-8") + b"\0")
        self.version = digest.hexdigest()[:16]

    def _bit(self, flag: str) -> int:
        return 1 << self._flag_codes.index(flag)

    # --- per distinct string -------------------------------------------------------------
    def type_verdicts(self, raw_types: Sequence[str]) -> Verdicts:
        """Rules and model over distinct raw call types (no overrides, no combination)."""
        texts = np.array([normalise(t) for t in raw_types], dtype=object)
        distinct, inverse = np.unique(texts.astype(str), return_inverse=True)
        verdicts = self._text_verdicts(distinct)
        return verdicts.take(inverse.reshape(-1))

    def _text_verdicts(self, texts: np.ndarray) -> Verdicts:
        n = len(texts)
        out = Verdicts.empty(n)
        array = pa.array(texts.tolist(), type=pa.string())
        chosen = first_category_rule(self.rules, array)
        out.flags = flag_bits(self.rules.flag_rules, array, self._flag_codes)
        for i in np.unique(chosen[chosen >= 0]):
            rule = self.rules.category_rules[i]
            hit = chosen == i
            out.category[hit] = rule.category
            out.confidence[hit] = rule.confidence
            out.decided_by[hit] = f"rule:{rule.id}"
            out.reason[hit] = None
        words = np.array([bool(t) for t in texts], dtype=bool)
        out.reason[~words] = REASON_NO_WORDS
        unmatched = words & (chosen < 0)
        out.decided_by[unmatched] = DECIDED_NO_MATCH
        out.reason[unmatched] = "unrecognised call type: no rule matched and no model is loaded"
        ask = words & ((chosen < 0) | (out.confidence < WEAK_RULE))
        self._apply_model(out, texts, ask)
        return out

    def _apply_model(self, out: Verdicts, texts: np.ndarray, ask: np.ndarray) -> None:
        if not ask.any():
            return
        rows = np.flatnonzero(ask)
        if self.model is None:
            return
        asked = texts[rows].tolist()
        proba = self.model.predict_proba(asked)
        known = self.model.knows(asked)
        best = proba.argmax(axis=1)
        p = proba[np.arange(len(rows)), best]
        classes = np.array(self.model.classes, dtype=object)
        better = p > out.confidence[rows]
        usable = better & (p >= self.model_min_confidence) & known
        take = rows[usable]
        out.category[take] = classes[best[usable]]
        out.confidence[take] = p[usable]
        out.decided_by[take] = self.model.label
        out.reason[take] = None
        unplaced = ~usable & (out.category[rows] == UNKNOWN)
        for row, guess, prob, knew in zip(rows[unplaced], classes[best[unplaced]], p[unplaced],
                                          known[unplaced], strict=True):
            out.reason[row] = (
                f"unrecognised call type: no rule matched and the model's best guess ({guess}, "
                f"{prob:.2f}) is below {self.model_min_confidence:.2f}" if knew else
                "unrecognised call type: no rule matched and the model knows none of its "
                "words or longer letter groups")
            out.decided_by[row] = self.model.label

    # --- per key row ----------------------------------------------------------------------
    def classify_keys(self, keys: pa.Table) -> pa.Table:
        """One classification per row of ``keys`` (see ``KEY_COLUMNS``), in the same order."""
        missing = [c for c in KEY_COLUMNS if c not in keys.column_names]
        if missing:
            raise ClassifyError(f"classify_keys: missing column(s) {', '.join(missing)}; "
                                f"expected {', '.join(KEY_COLUMNS)}")
        n = keys.num_rows
        source = _strings(keys, "source")
        initial = _strings(keys, "initial_call_type")
        final = _strings(keys, "final_call_type")
        raw = pc.unique(pa.concat_arrays([initial, final]).drop_null())
        per_type = self.type_verdicts(raw.to_pylist())
        v_init = self._row_verdicts(per_type, raw, source, initial)
        v_final = self._row_verdicts(per_type, raw, source, final)
        chosen = self._combine(v_init, v_final, _priorities(keys))
        chosen.flags |= self._disposition_bits(_strings(keys, "disposition_raw"))
        for category, bits in self._category_bits.items():
            chosen.flags[chosen.category == category] |= bits
        chosen.flags = self._close_flags(chosen.flags)
        return self._table(chosen, n)

    def _row_verdicts(self, per_type: Verdicts, raw: pa.Array, source: pa.Array,
                      column: pa.Array) -> Verdicts:
        index = pc.index_in(column, value_set=raw).fill_null(-1).to_numpy()
        present = index >= 0
        verdicts = Verdicts.empty(len(column))
        if present.any():
            got = per_type.take(index[present])
            for name in ("category", "confidence", "flags", "decided_by", "reason"):
                getattr(verdicts, name)[present] = getattr(got, name)
        if self._overrides:
            self._apply_overrides(verdicts, source, column)
        return verdicts

    def _apply_overrides(self, verdicts: Verdicts, source: pa.Array, column: pa.Array) -> None:
        norm_source = pc.utf8_lower(pc.utf8_trim_whitespace(source.fill_null("")))
        norm_type = pc.utf8_lower(pc.utf8_trim_whitespace(column))
        table = self._override_table
        for scope in (pa.scalar(""), norm_source):  # any-source overrides, then per source
            pair = pc.binary_join_element_wise(scope, norm_type, "\x1f")
            found = pc.index_in(pair, value_set=table.keys).fill_null(-1).to_numpy()
            rows = np.flatnonzero(found >= 0)
            if not len(rows):
                continue
            which = found[rows]
            verdicts.category[rows] = table.category[which]
            verdicts.confidence[rows] = 1.0
            verdicts.decided_by[rows] = "override"
            verdicts.reason[rows] = table.reason[which]
            has_flags = table.has_flags[which]
            verdicts.flags[rows[has_flags]] = table.flags[which[has_flags]]

    def _combine(self, initial: Verdicts, final: Verdicts, priority: np.ndarray) -> Verdicts:
        has_final = final.category != UNKNOWN
        has_initial = initial.category != UNKNOWN
        initial_surer = has_initial & (initial.confidence - final.confidence >= CONFIDENCE_MARGIN)
        use_final = has_final & ~initial_surer
        tie = has_final & has_initial & (np.abs(initial.confidence - final.confidence) < 1e-9) & (
            initial.category != final.category) & (priority >= 1) & (priority <= 2)
        crime = {c.code for c in self.taxonomy.categories if c.group == "crime"}
        initial_crime = np.isin(initial.category.astype(str), list(crime))
        final_crime = np.isin(final.category.astype(str), list(crime))
        use_final &= ~(tie & initial_crime & ~final_crime)
        use_final |= ~has_initial & (final.reason != REASON_EMPTY)  # keep final's own reason
        chosen = initial.take(np.arange(len(priority)))
        for name in ("category", "confidence", "decided_by", "reason"):
            getattr(chosen, name)[use_final] = getattr(final, name)[use_final]
        agree = has_final & has_initial & (initial.category == final.category)
        chosen.confidence[agree] = np.maximum(initial.confidence, final.confidence)[agree]
        chosen.flags = initial.flags | final.flags
        return chosen

    def _disposition_bits(self, disposition: pa.Array) -> np.ndarray:
        if not self.rules.disposition_flag_rules or disposition.null_count == len(disposition):
            return np.zeros(len(disposition), dtype=np.int64)
        distinct = pc.unique(disposition.drop_null())
        texts = pa.array([normalise(t) for t in distinct.to_pylist()], type=pa.string())
        bits = flag_bits(self.rules.disposition_flag_rules, texts, self._flag_codes)
        index = pc.index_in(disposition, value_set=distinct).fill_null(-1).to_numpy()
        return np.where(index >= 0, bits[np.maximum(index, 0)], 0)

    def _close_flags(self, bits: np.ndarray) -> np.ndarray:
        for bit, implied in self._implied.items():
            bits = np.where(bits & bit, bits | implied, bits)
        return bits

    def _table(self, chosen: Verdicts, n: int) -> pa.Table:
        masks, inverse = np.unique(chosen.flags, return_inverse=True)
        lists = pa.array([sorted(f for k, f in enumerate(self._flag_codes) if int(m) >> k & 1)
                          for m in masks], type=pa.list_(pa.string()))
        category = chosen.category.astype(str)
        reason = [(r or REASON_EMPTY) if c == UNKNOWN else None
                  for c, r in zip(category.tolist(), chosen.reason.tolist(), strict=True)]
        review = (chosen.confidence < self.review_below) | (category == UNKNOWN)
        return pa.table([
            pa.array(category.tolist(), pa.string()),
            lists.take(pa.array(inverse.reshape(-1))),
            pa.array(np.round(chosen.confidence, 4), pa.float64()),
            pa.array(chosen.decided_by.astype(str).tolist(), pa.string()),
            pa.array(np.full(n, self.taxonomy.version).tolist(), pa.string()),
            pa.array(reason, pa.string()),
            pa.array(review, pa.bool_()),
        ], schema=OUTPUT_SCHEMA)

    def narrative_flags(self, narratives: pa.Array) -> pa.Array:
        """Flags found in free-text narratives (list<string> per row, sorted; null stays
        empty). One vectorised pass of the flag rules over the normalised texts; the text is
        never logged or stored by this function."""
        texts = pa.array([normalise(t) for t in narratives.to_pylist()], type=pa.string())
        bits = self._close_flags(flag_bits(self.rules.flag_rules, texts, self._flag_codes))
        masks, inverse = np.unique(bits, return_inverse=True)
        lists = pa.array([sorted(f for k, f in enumerate(self._flag_codes) if int(m) >> k & 1)
                          for m in masks], type=pa.list_(pa.string()))
        return lists.take(pa.array(inverse.reshape(-1)))

    # --- conveniences ---------------------------------------------------------------------
    def classify_types(self, call_types: Sequence[str | None],
                       sources: Sequence[str | None] | None = None) -> pa.Table:
        """Classify bare call types (one row each, optional source for overrides)."""
        return self.classify_keys(bare_keys(call_types, sources))


def bare_keys(call_types: Sequence[str | None],
              sources: Sequence[str | None] | None = None) -> pa.Table:
    """A keys table for bare call types: the type is the final type; nothing else is known."""
    n = len(call_types)
    nulls = pa.nulls(n, pa.string())
    return pa.table({
        "source": pa.array(list(sources) if sources is not None else [None] * n, pa.string()),
        "initial_call_type": nulls,
        "final_call_type": pa.array(list(call_types), pa.string()),
        "disposition_raw": nulls, "priority_raw": nulls,
        "priority": pa.nulls(n, pa.int8()),
    })


def _priorities(table: pa.Table) -> np.ndarray:
    """Normalised priorities 1-4 as int64, 0 where null or outside 1-4."""
    column = table.column("priority").combine_chunks()
    try:
        values = column.cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ClassifyError("classify_keys: priority must be a number 1-4 (or null), got "
                            f"a column of type {column.type}") from None
    return np.where((values >= 1) & (values <= 4), values, 0).astype(np.int64)


def _strings(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name).combine_chunks()
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    return column


def build_classifier(settings: Settings, *, model: TextModel | None = None,
                     overrides: Sequence[LabelledType] | None = None,
                     use_shipped_model: bool = True) -> Classifier:
    """A classifier from settings, with the model or overrides replaced when given."""
    taxonomy = load_taxonomy()
    rules = load_rules(taxonomy)
    if model is None and use_shipped_model:
        model = load_model(settings.classify_model_path)
    if overrides is None:
        overrides = read_overrides(settings.resolved_overrides_path, taxonomy)
    return Classifier(taxonomy, rules, model, overrides,
                      review_below=settings.classify_review_below,
                      model_min_confidence=settings.classify_model_min_confidence,
                      version_parts=(taxonomy_text(), rules_text()))


def load_classifier(settings: Settings) -> Classifier:
    """The classifier ingest uses: shipped (or configured) model, rules and overrides file."""
    return build_classifier(settings)


def overrides_path_of(settings: Settings) -> Path:
    """Where ``cswb classify override`` writes."""
    return settings.resolved_overrides_path
