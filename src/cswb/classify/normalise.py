"""Normalise raw call-type strings before rules and the model read them.

CAD call types carry shorthand that says the same thing many ways: ``I/P`` and ``IP`` (in
progress), ``J/O`` and ``JO`` (just occurred), ``W/`` (with), ``SUBJ``, ``DV``, ``OD``, ``EDP``,
``MVA``, ``UNK``; ProQA-style code prefixes such as ``121C_``; leading dashes and asterisks used
for sorting; suffixes such as ``_In Progress`` or ``_Past``; words cut to fit a 16-character field.
:func:`normalise` turns each string into lower-case words separated by single spaces with the
shorthand spelled out, so one rule vocabulary serves every city. The expansions are general CAD
abbreviations, not strings of any one city (see docs/classify.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Shorthand spelled out (whole words only, after lower-casing). Multi-word keys first.
EXPANSIONS: dict[str, str] = {
    "w/o": "without", "i/p": "in progress", "j/o": "just occurred", "h&r": "hit and run",
    "b&e": "breaking and entering", "st arm": "strong arm", "ip": "in progress",
    "jo": "just occurred", "subj": "subject", "subjs": "subjects", "susp": "suspicious",
    "dv": "domestic violence", "dom": "domestic", "od": "overdose",
    "edp": "emotionally disturbed person",
    "mva": "motor vehicle accident", "mvc": "motor vehicle collision", "unk": "unknown",
    "unkn": "unknown", "unknwn": "unknown", "acc": "accident", "accidnt": "accident",
    "veh": "vehicle", "vehs": "vehicles", "dist": "disturbance", "disturb": "disturbance",
    "disturbnce": "disturbance", "distrb": "disturbance", "aslt": "assault", "asslt": "assault",
    "burg": "burglary", "tfc": "traffic", "traf": "traffic", "traff": "traffic",
    "traffc": "traffic", "wpn": "weapon", "wpns": "weapons", "weapn": "weapon",
    "weapns": "weapons", "wp": "weapon", "wpon": "weapon", "resid": "residential",
    "resi": "residential", "res": "residential", "comm": "commercial", "commer": "commercial",
    "intox": "intoxicated", "narc": "narcotics", "nars": "narcotics", "ck": "check",
    "chk": "check", "chks": "checks", "trbl": "trouble", "troubl": "trouble", "trb": "trouble",
    "pers": "person", "persn": "person", "prsn": "person", "juv": "juvenile",
    "juvs": "juveniles", "med": "medical", "inj": "injury", "injs": "injuries",
    "pi": "personal injury", "pdo": "noninjury", "ts": "traffic stop", "prop": "property",
    "dam": "damage", "damg": "damage", "dest": "destruction", "viols": "violations",
    "svc": "service", "svcs": "services", "srvc": "service", "pub": "public",
    "admn": "administrative", "adm": "administrative", "admin": "administrative",
    "info": "information", "addl": "additional", "crcmstncs": "circumstances",
    "circum": "circumstances", "circ": "circumstances", "starm": "strong arm",
    "thft": "theft", "harrassment": "harassment", "haras": "harassment",
    "misc": "miscellaneous", "disordr": "disorder", "violnt": "violent",
    "attmptd": "attempted", "frm": "from", "pkg": "package", "pckg": "package",
    "schl": "school", "reck": "reckless", "ofc": "officer", "offcr": "officer",
    "govt": "government", "mtng": "meeting", "maint": "maintenance", "dwi": "dui",
    "owi": "dui", "doa": "dead on arrival", "mgmnt": "management", "mgmt": "management",
    "emerg": "emergency", "nonemerg": "nonemergency", "amb": "ambulance",
    "perp": "suspect", "lic": "license", "cmplnt": "complaint", "compl": "complaint",
    "comp": "complaint", "prowl": "prowler", "mntl": "mental", "sgt": "sergeant",
    "hazmat": "hazardous materials", "hzmat": "hazardous materials", "haz": "hazard",
    "cond": "condition", "condi": "condition", "abandond": "abandoned", "aband": "abandoned",
    "negl": "neglect", "vand": "vandalism", "mis": "mischief", "nuis": "nuisance",
    "progr": "progress", "progres": "progress", "occ": "occurred", "occur": "occurred",
    "occurr": "occurred", "occurre": "occurred", "accidnet": "accident",
}

_WORD = r"(?<![a-z0-9])(?:{})(?![a-z0-9])"
_EXPANSION_RE = re.compile(_WORD.format("|".join(
    re.escape(k) for k in sorted(EXPANSIONS, key=len, reverse=True))))
#: ProQA-style determinant codes (``121C_``, ``104D ``) and sort marks (``--``, ``*``) in front.
_PREFIX_RE = re.compile(r"^[\s*\-.#]*(?:(?:\d{2,4}[a-z](?:[_ ]+|\s*-\s*)|\d{2,4}_+)(?=[a-z]))?"
                        r"[\s*\-.#]*")
_WITH_RE = re.compile(r"(?<![a-z0-9])w/(?!o(?![a-z]))")
_NON_PREFIX_RE = re.compile(r"(?<![a-z0-9])non[\s\-]+(?=[a-z])")
_UNARMED_RE = re.compile(r"\b(?:no|without) (?:weapons?|wpns?)\b")
_SEPARATORS_RE = re.compile(r"[^a-z0-9&/]+")
_SLASH_RE = re.compile(r"[/&]")
_SPACES_RE = re.compile(r"\s+")


def normalise(raw: str | None) -> str:
    """One call-type string as lower-case words with CAD shorthand spelled out."""
    if raw is None:
        return ""
    text = raw.lower().replace("_", " ")
    text = _PREFIX_RE.sub("", text, count=1)
    text = _WITH_RE.sub("with ", text)
    text = _SEPARATORS_RE.sub(" ", text)
    text = _EXPANSION_RE.sub(lambda m: EXPANSIONS[m.group(0)], text)
    text = text.replace("&", " and ")
    text = _SLASH_RE.sub(" ", text)
    text = _NON_PREFIX_RE.sub("non", text)
    text = _UNARMED_RE.sub("unarmed", text)
    return _SPACES_RE.sub(" ", text).strip()


def normalise_many(raws: Iterable[str | None]) -> list[str]:
    """:func:`normalise` over many strings (call it on distinct values only)."""
    return [normalise(r) for r in raws]
