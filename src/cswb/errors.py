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
class ConflictError(CswbError):
    """A record was changed by someone else since it was read (optimistic concurrency)."""

    code = "conflict"
    exit_code = 14


class InvalidTransitionError(CswbError):
    """A status change that the record's transition table does not allow."""

    code = "invalid_transition"
    exit_code = 15


class CryptoError(CswbError):
    """An encrypted field cannot be decrypted: unknown key id, wrong key or altered ciphertext."""

    code = "crypto_error"
    exit_code = 16


class AuthenticationError(CswbError):
    """Login failed, or a session or token is missing, expired or revoked."""

    code = "unauthenticated"
    exit_code = 17


class PermissionDeniedError(CswbError):
    """The policy does not allow this user this action on this record."""

    code = "forbidden"
    exit_code = 18


class AuditChainError(CswbError):
    """The audit chain is broken: an entry was edited, deleted, inserted or reordered."""

    code = "audit_chain_broken"
    exit_code = 12


class InvalidInputError(CswbError):
    """A value given to a service is not acceptable (says which field and why)."""

    code = "invalid_input"
    exit_code = 19


class LinkageError(CswbError):
    """The linkage zone cannot take or give identifying values (no keyring, store problem)."""

    code = "linkage_error"
    exit_code = 20
