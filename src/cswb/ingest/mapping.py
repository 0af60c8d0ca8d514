"""Declarative per-source mappings: how one source's export becomes canonical calls.

A mapping is a YAML file (see ``docs/mappings.md`` for the format and a worked example). It is
validated on load into the models below; every problem is reported at once, with its place in
the file. Built-in mappings live in ``cswb/ingest/mappings/<name>.yaml`` and are loaded by name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from cswb.domain.vocab import DispositionGroup, Origin, Precision
from cswb.errors import MappingError, NotFoundError
from cswb.files import load_yaml
from cswb.ingest.timezones import zone

FileFormat = Literal["auto", "csv", "excel", "parquet", "jsonl"]
LinkageKind = Literal["phone", "name", "text"]

TEXT_FIELDS: tuple[str, ...] = (
    "initial_call_type",
    "final_call_type",
    "priority_raw",
    "disposition_raw",
    "origin_raw",
    "location",
    "latitude",
    "longitude",
    "district",
    "sector",
    "beat",
    "neighbourhood",
    "narrative",
)
"""Canonical fields a mapping fills from source columns (timestamps are declared apart)."""

TIME_FIELDS: tuple[str, ...] = ("received_at", "dispatched_at", "arrived_at", "cleared_at")

_PRECISION_BY_DIRECTIVE = (
    (("%S", "%T", "%s"), Precision.SECOND),
    (("%M", "%R"), Precision.MINUTE),
    (("%H", "%I"), Precision.HOUR),
)


def re2_problem(pattern: str) -> str | None:
    """Why RE2, the engine the ingest's SQL runs patterns with, refuses ``pattern`` (None if
    it compiles). RE2 has no look-around and no back-references: a pattern Python accepts may
    still be refused here, and must be caught when the mapping is loaded, not mid-ingest."""
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern=pattern)
    except pa.ArrowInvalid as exc:
        return str(exc).removeprefix("Invalid regular expression: ")
    return None


def _re2(pattern: str, prefix: str = "") -> str:
    """``pattern`` if RE2 compiles it (as run: after ``prefix``), else a ValueError."""
    problem = re2_problem(prefix + pattern)
    if problem:
        raise ValueError(f"invalid regular expression {pattern!r} (RE2 syntax: no look-around "
                         f"or back-references): {problem}")
    return pattern


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSpec(_Model):
    """How to read the file."""

    format: FileFormat = "auto"
    encoding: str = Field("auto", description="utf-8, utf-8-sig, utf-16, latin-1, cp1252 or auto")
    delimiter: str = Field("auto", description="a single character, or auto to sniff it")
    quote: str = '"'
    header: bool = True
    column_names: list[str] | None = Field(None, description="names when the file has no header")
    sheet: str | None = Field(None, description="Excel sheet; required when there are several")

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if value != "auto" and len(value.encode("utf-8")) != 1:
            raise ValueError("delimiter must be one single-byte character or 'auto'")
        return value

    @model_validator(mode="after")
    def _names_without_header(self) -> FileSpec:
        if not self.header and not self.column_names:
            raise ValueError("a file without a header needs column_names")
        return self


class _Sourced(_Model):
    """A field read from one source column, or from several joined."""

    column: str | None = None
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Sourced:
        if (self.column is None) == (not self.columns):
            raise ValueError("give either column or columns")
        return self

    @property
    def source_columns(self) -> list[str]:
        return [self.column] if self.column is not None else list(self.columns or [])


class TimeSpec(_Sourced):
    """A timestamp column (or a date and a time column, joined with a space) and its formats."""

    formats: list[str] = Field(min_length=1)
    precision: Precision | None = None

    @property
    def resolved_precision(self) -> Precision:
        """The declared precision, else the finest unit every format has in common."""
        if self.precision is not None:
            return self.precision
        return coarsest(format_precision(f) for f in self.formats)


class ColumnSpec(_Sourced):
    """A canonical field taken from one column, or from several joined with ``join``."""

    join: str = " | "


class PatternRule(_Model):
    """A regular expression (RE2 syntax, case-insensitive) and the value it maps to."""

    pattern: str
    value: StrictStr | StrictInt

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _re2(value, "(?i)")


class ValueMap(_Model):
    """Raw value to standard value: exact values first (case-insensitive), then patterns."""

    source: str | None = Field(
        None, description="canonical raw field or source column to map (default: the raw field)"
    )
    values: dict[str, StrictStr | StrictInt] = Field(default_factory=dict)
    patterns: list[PatternRule] = Field(default_factory=list)
    default: StrictStr | StrictInt | None = None
    use_default_rules: bool = Field(
        True, description="also apply cswb's default patterns (dispositions and origins)"
    )


class Placeholders(_Model):
    """Values meaning 'not recorded': exact values and regular expressions."""

    values: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _compile(cls, value: list[str]) -> list[str]:
        return [_re2(p) for p in value]


class LocationSpec(_Model):
    """How to generalise the published location (DATA_POLICY.md)."""

    strip: list[str] = Field(
        default_factory=list, description="regular expressions removed before generalising"
    )
    keep_exact: bool = Field(
        False, description="keep exact addresses (only when a deployment says so explicitly)"
    )

    @field_validator("strip")
    @classmethod
    def _compile(cls, value: list[str]) -> list[str]:
        return [_re2(p, "(?i)") for p in value]


class Bounds(_Model):
    """The source's bounding area; coordinates outside it are nulled and flagged."""

    min_latitude: float = Field(ge=-90, le=90)
    max_latitude: float = Field(ge=-90, le=90)
    min_longitude: float = Field(ge=-180, le=180)
    max_longitude: float = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min_latitude >= self.max_latitude or self.min_longitude >= self.max_longitude:
            raise ValueError("bounds: each min must be below its max")
        return self


class Identifying(_Model):
    """Columns that identify people: never stored in the analytic store, logs or errors."""

    drop: list[str] = Field(default_factory=list)
    linkage: list[str] = Field(
        default_factory=list,
        description="kept only in the linkage zone (encrypted, with a keyed hash), keyed by "
        "source and record id"
    )
    kinds: dict[str, LinkageKind] = Field(
        default_factory=dict,
        description="how a linkage column's value is normalised before its keyed hash: phone "
        "(digits only), name or text (case and spaces folded; the default)"
    )

    @model_validator(mode="after")
    def _known_kinds(self) -> Identifying:
        unknown = sorted(set(self.kinds) - set(self.all))
        if unknown:
            raise ValueError(f"identifying.kinds names columns {unknown} that are not "
                             "identifying (list them under drop or linkage)")
        both = sorted(set(self.drop) & set(self.linkage))
        if both:
            raise ValueError(f"columns {both} are both dropped and sent to the linkage zone")
        return self

    @property
    def all(self) -> list[str]:
        return [*self.drop, *self.linkage]

    def kind(self, column: str) -> LinkageKind:
        """How ``column``'s values are normalised for their keyed hash."""
        return self.kinds.get(column, "text")

    def linking(self, columns: list[str]) -> Identifying:
        """A copy sending ``columns`` (dropped here) to the linkage zone instead."""
        unknown = sorted(set(columns) - set(self.drop))
        if unknown:
            raise ValueError(f"only columns the mapping drops as identifying can be sent to "
                             f"the linkage zone; {unknown} are not among {self.drop}")
        return self.model_copy(update={
            "drop": [c for c in self.drop if c not in columns],
            "linkage": list(dict.fromkeys([*self.linkage, *columns]))})


class Mapping(_Model):
    """A whole source mapping."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")
    title: str = ""
    agency: str
    time_zone: str
    file: FileSpec = Field(default_factory=FileSpec)
    record_id: str | None = None
    natural_key: list[str] | None = None
    timestamps: dict[str, TimeSpec]
    fields: dict[str, ColumnSpec | str] = Field(default_factory=dict)
    attributes: list[str] = Field(default_factory=list)
    value_maps: dict[str, ValueMap] = Field(
        default_factory=dict, description="priority, disposition_group and origin"
    )
    placeholders: dict[str, Placeholders] = Field(default_factory=dict)
    location: LocationSpec = Field(default_factory=LocationSpec)
    bounds: Bounds | None = None
    identifying: Identifying = Field(default_factory=Identifying)
    call_type_field: Literal["final_or_initial", "initial", "final"] = "final_or_initial"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except MappingError as exc:  # reported with the mapping's other problems
            raise ValueError(str(exc)) from None
        return value

    @field_validator("timestamps")
    @classmethod
    def _known_time_fields(cls, value: dict[str, TimeSpec]) -> dict[str, TimeSpec]:
        unknown = sorted(set(value) - set(TIME_FIELDS))
        if unknown:
            raise ValueError(f"unknown timestamp fields {unknown}; use {list(TIME_FIELDS)}")
        if not value:
            raise ValueError("declare at least one timestamp")
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, ColumnSpec | str]) -> dict[str, ColumnSpec | str]:
        unknown = sorted(set(value) - set(TEXT_FIELDS))
        if unknown:
            raise ValueError(f"unknown fields {unknown}; use {list(TEXT_FIELDS)}")
        if "initial_call_type" not in value and "final_call_type" not in value:
            raise ValueError("map initial_call_type or final_call_type")
        return value

    @field_validator("value_maps")
    @classmethod
    def _known_map_values(cls, value: dict[str, ValueMap]) -> dict[str, ValueMap]:
        """Every value map's targets are values of its field (all problems at once)."""
        allowed: dict[str, set[Any]] = {
            "disposition_group": {g.value for g in DispositionGroup},
            "origin": {o.value for o in Origin},
            "priority": {1, 2, 3, 4},
        }
        problems = []
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            problems.append(f"unknown {unknown}; use {sorted(allowed)}")
        for name, vmap in value.items():
            if name not in allowed:
                continue
            targets = [*vmap.values.values(), *(p.value for p in vmap.patterns)]
            if vmap.default is not None:
                targets.append(vmap.default)
            bad = sorted({str(t) for t in targets if t not in allowed[name]})
            if bad:
                problems.append(f"{name}: {bad} not in {sorted(map(str, allowed[name]))}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        problems = []
        if self.record_id and self.natural_key:
            problems.append("give record_id or natural_key, not both")
        if not self.record_id and not self.natural_key:
            problems.append("give record_id, or natural_key (a list of columns)")
        known = set(TIME_FIELDS) | set(TEXT_FIELDS) | {"*"}
        unknown = sorted(set(self.placeholders) - known)
        if unknown:
            problems.append(f"placeholders for unknown fields {unknown}")
        identifying = set(self.identifying.all)
        leaked = sorted(identifying & set(self.used_columns()))
        if leaked:
            problems.append(f"columns {leaked} are marked identifying but are mapped to fields")
        if problems:  # every one, not the first
            raise ValueError("; ".join(problems))
        return self

    def column_spec(self, field: str) -> ColumnSpec | None:
        """The source column(s) of a canonical text field, if the mapping fills it."""
        spec = self.fields.get(field)
        if spec is None:
            return None
        return ColumnSpec(column=spec) if isinstance(spec, str) else spec

    def used_columns(self) -> list[str]:
        """Every source column the mapping reads, in a stable order without repeats."""
        cols: list[str] = []
        if self.record_id:
            cols.append(self.record_id)
        cols.extend(self.natural_key or [])
        for spec in self.timestamps.values():
            cols.extend(spec.source_columns)
        for name in TEXT_FIELDS:
            column_spec = self.column_spec(name)
            if column_spec:
                cols.extend(column_spec.source_columns)
        cols.extend(self.attributes)
        cols.extend(v.source for v in self.value_maps.values() if v.source and v.source not in
                    TEXT_FIELDS)
        return list(dict.fromkeys(cols))


def format_precision(fmt: str) -> Precision:
    """Precision of a strptime format: the finest directive it contains."""
    for directives, precision in _PRECISION_BY_DIRECTIVE:
        if any(d in fmt for d in directives):
            return precision
    if fmt in {"excel", "epoch_ms", "epoch_s", "iso", "iso_offset"}:
        return Precision.SECOND
    return Precision.DAY


_ORDER = [Precision.SECOND, Precision.MINUTE, Precision.HOUR, Precision.DAY]


def coarsest(precisions: Any) -> Precision:
    """The coarsest of several precisions (what can be promised for every value)."""
    return max(precisions, key=_ORDER.index, default=Precision.SECOND)


def with_linkage(mapping: Mapping, columns: list[str]) -> Mapping:
    """``mapping`` sending ``columns``, which it drops as identifying, to the linkage zone."""
    if not columns:
        return mapping
    try:
        identifying = mapping.identifying.linking(columns)
    except ValueError as exc:
        raise MappingError(f"mapping {mapping.name}: {exc}") from None
    return mapping.model_copy(update={"identifying": identifying})


def parse_mapping(data: Any, origin: str = "mapping") -> Mapping:
    """Validate a mapping given as parsed YAML; errors name the place in the file."""
    if not isinstance(data, dict):
        raise MappingError(f"{origin}: a mapping is a YAML dictionary")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  - {line}" for line in _problem_lines(exc))
        raise MappingError(f"{origin} is not a valid mapping:\n{problems}") from None


_UNION_BRANCHES = {"str", "int"}
"""Where pydantic tries each type of a ``text or number`` field, the last part of the error's
place names the type tried: one problem, said once."""


def _problem_lines(exc: ValidationError) -> list[str]:
    """One line per place in the mapping with a problem (the branches of a union merged)."""
    places: dict[str, tuple[list[str], str]] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        message, got = str(err["msg"]).removeprefix("Value error, "), ""
        if loc and loc[-1] in _UNION_BRANCHES:
            loc, message = loc[:-1], message.removeprefix("Input should be ")
            got = f" (got {err['input']!r})"
        messages, _ = places.setdefault(".".join(loc) or "(top)", ([], got))
        messages.append(message)
    return [f"{where}: {'should be ' if got else ''}{' or '.join(dict.fromkeys(messages))}{got}"
            for where, (messages, got) in places.items()]


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"mapping file {path} does not exist") from None
    except UnicodeDecodeError:
        raise MappingError(f"mapping file {path} is not UTF-8") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path} is not valid YAML: {exc}") from None
    except RecursionError:
        raise MappingError(f"{path}: nested too deeply to be a mapping") from None
    return parse_mapping(data, str(path))


def builtin_names() -> list[str]:
    """Names of the mappings shipped with cswb."""
    folder = resources.files("cswb.ingest") / "mappings"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def builtin_mapping(name: str) -> Mapping:
    """A built-in mapping by name."""
    resource = resources.files("cswb.ingest") / "mappings" / f"{name}.yaml"
    if not resource.is_file():
        raise NotFoundError(
            f"no built-in mapping named {name!r}; known: {', '.join(builtin_names()) or 'none'}"
        )
    with resources.as_file(resource) as path:
        return load_mapping(path)
