"""The one exception root of cswb and its families.

Every error cswb raises on purpose derives from :class:`CswbError`, so the CLI, the API and
callers can tell an expected, explained failure (bad input, bad configuration) from a bug.
Messages are written for the person who has to act on them and never contain identifying
values from the data (names, phones, addresses): they name columns, rows and rules instead.
"""

from __future__ import annotations


class CswbError(Exception):
    """Root of every error cswb raises on purpose."""

    #: Short machine-readable code used by the API's error shape and the CLI's exit status.
    code = "cswb_error"
    exit_code = 1


class ConfigError(CswbError):
    """Settings or a configuration file are invalid."""

    code = "config_error"
    exit_code = 2


class MappingError(CswbError):
    """A source mapping (YAML) is invalid or does not fit the file it is applied to."""

    code = "mapping_error"
    exit_code = 2


class SourceFileError(CswbError):
    """An input file cannot be read at all (empty, wrong delimiter, unknown format...)."""

    code = "source_file_error"
    exit_code = 3


class PortalError(CswbError):
    """An open-data portal answered with something cswb cannot use."""

    code = "portal_error"
    exit_code = 4


class StoreError(CswbError):
    """The analytic store is missing, locked or inconsistent."""

    code = "store_error"
    exit_code = 5


class NotFoundError(CswbError):
    """A named thing (source, batch, quarantined row) does not exist."""

    code = "not_found"
    exit_code = 6


class ClassifyError(CswbError):
    """The classifier's taxonomy, rules, model, overrides or labels are invalid."""

    code = "classify_error"
    exit_code = 7


class PolicyError(CswbError):
    """A response policy (YAML) is invalid: unknown category, flag or tier, or a dead rule."""

    code = "policy_error"
    exit_code = 2


class NoClassifiedCallsError(CswbError):
    """A response scenario or staffing needs classified calls and the source has none."""

    code = "no_classified_calls"
    exit_code = 9


class TargetUnreachableError(CswbError):
    """A response-time target cannot be met at any staffing (travel alone exceeds it)."""

    code = "target_unreachable"
    exit_code = 10
