"""Classify calls into the taxonomy of CALL_TAXONOMY.md: overrides, rules, a learned model.

Public interface (used by ingest and the store)::

    from cswb.classify import load_classifier, Classifier
    clf: Classifier = load_classifier(settings)
    out = clf.classify_keys(keys)   # pyarrow.Table in, pyarrow.Table out, same rows and order
    clf.version                     # changes when rules, model or overrides change
"""

from cswb.classify.classifier import (
    KEY_COLUMNS,
    OUTPUT_SCHEMA,
    Classifier,
    bare_keys,
    build_classifier,
    load_classifier,
)
from cswb.classify.taxonomy import Taxonomy, load_taxonomy

__all__ = ["KEY_COLUMNS", "OUTPUT_SCHEMA", "Classifier", "Taxonomy", "bare_keys",
           "build_classifier", "load_classifier", "load_taxonomy"]
