"""Ground truth of every synthetic call, for evaluating classification and analytics.

A call's truth is its final call type's category and flags (what the call really was, by
CALL_TAXONOMY.md), plus what the call-type text cannot show: the underlying need (a welfare
check driven by a mental-health crisis carries ``mental_health``) and whether an officer
initiated it. ``type_flags`` are the flags the call type alone implies, so an evaluation can
tell what a classifier could have known from the text from what it could not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cswb.synth.calls import ONVIEW, ORIGINS, CallBatch, incident_numbers
from cswb.synth.faults import FAULT_NAMES, RowCells
from cswb.synth.vocab import NEEDS, TAXONOMY_FLAGS

if TYPE_CHECKING:
    from cswb.synth.city import City

CANONICAL_ORIGIN = {"911": "911", "TELEPHONE": "phone", "ONVIEW": "officer_initiated",
                    "ALARM COMPANY": "other", "TEXT TO 911": "911", "WALK-IN": "other"}
SOURCE = "synthetic_cad"

TRUTH_SCHEMA = pa.schema([
    ("call_id", pa.string()), ("source_record_id", pa.string()),
    ("received_at", pa.timestamp("s", tz="UTC")), ("initial_call_type", pa.string()),
    ("final_call_type", pa.string()), ("call_type", pa.string()), ("category", pa.string()),
    ("flags", pa.list_(pa.string())), ("type_flags", pa.list_(pa.string())),
    ("need", pa.string()), ("priority", pa.int8()), ("disposition", pa.string()),
    ("disposition_group", pa.string()), ("origin", pa.string()), ("neighbourhood", pa.string()),
    ("district", pa.string()), ("beat", pa.string()), ("site", pa.int32()),
    ("export_row", pa.int64()), ("export_fault", pa.string()),
])


def _ordered(flags: set[str]) -> list[str]:
    return [f for f in TAXONOMY_FLAGS if f in flags]


class TruthWriter:
    """Writes the truth of each chunk of calls to one Parquet file."""

    def __init__(self, city: City, path: Path) -> None:
        vocab = city.vocabulary
        types = vocab.call_types
        self.city = city
        self.types = pa.array(types.names)
        self.categories = pa.array(types.category)
        self.type_flags = pa.array([_ordered(set(f)) for f in types.flags],
                                   pa.list_(pa.string()))
        combos = []
        for flags in types.flags:
            for need in NEEDS:
                for onview in (False, True):
                    extra = {need} - {"none"} | ({"officer_initiated"} if onview else set())
                    combos.append(_ordered(set(flags) | extra))
        self.flags = pa.array(combos, pa.list_(pa.string()))
        self.needs = pa.array(list(NEEDS))
        self.dispositions = pa.array(list(vocab.dispositions.codes))
        self.groups = pa.array(list(vocab.dispositions.group))
        self.origins = pa.array([CANONICAL_ORIGIN[o] for o in ORIGINS])
        hoods = city.neighbourhoods
        self.hood_of_site = city.sites.neighbourhood.astype(np.int64)
        self.hood_names = pa.array(list(hoods.names))
        self.districts = pa.array(list(hoods.districts))
        self.beats = pa.array(list(hoods.beats))
        self.faults: pa.Array | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(path, TRUTH_SCHEMA, compression="zstd")

    def write(self, batch: CallBatch, cells: RowCells, row_of_call: np.ndarray) -> None:
        """Append the truth of one chunk."""
        self.writer.write_table(self.table(batch, cells, row_of_call))

    def table(self, batch: CallBatch, cells: RowCells, row_of_call: np.ndarray) -> pa.Table:
        final = pa.array(batch.final_type.astype(np.int64))
        initial = pa.array(batch.initial_type.astype(np.int64))
        ids = incident_numbers(batch)
        hood = pa.array(self.hood_of_site[batch.site])
        combo = (batch.final_type.astype(np.int64) * len(NEEDS) + batch.need) * 2 \
            + (batch.origin == ONVIEW)
        seen = np.where(batch.final_blank, batch.initial_type, batch.final_type).astype(np.int64)
        fault = pc.take(pa.array(list(FAULT_NAMES)),
                        pa.array(cells.fault.astype(np.int64), mask=cells.fault < 0))
        columns = [
            pc.binary_join_element_wise(f"{SOURCE}:", ids, ""), ids,
            pa.array(batch.received, pa.timestamp("s", tz="UTC")),
            pc.take(self.types, initial), pc.take(self.types, final),
            pc.take(self.types, pa.array(seen)), pc.take(self.categories, final),
            pc.take(self.flags, pa.array(combo)), pc.take(self.type_flags, final),
            pc.take(self.needs, pa.array(batch.need.astype(np.int64))),
            pa.array(batch.priority, pa.int8()),
            pc.take(self.dispositions, pa.array(batch.disposition.astype(np.int64))),
            pc.take(self.groups, pa.array(batch.disposition.astype(np.int64))),
            pc.take(self.origins, pa.array(batch.origin.astype(np.int64))),
            pc.take(self.hood_names, hood), pc.take(self.districts, hood),
            pc.take(self.beats, hood), pa.array(batch.site, pa.int32()),
            pa.array(row_of_call, pa.int64()), fault,
        ]
        return pa.Table.from_arrays(columns, schema=TRUTH_SCHEMA)

    def close(self) -> None:
        self.writer.close()
