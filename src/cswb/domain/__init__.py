"""Canonical records and vocabularies of cswb. Pure data: no I/O here."""
