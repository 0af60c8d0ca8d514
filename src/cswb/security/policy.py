"""The one authorisation policy, used by the API, the web pages and the CLI.

Deny by default: an action is allowed only when the role grants it (:data:`ROLE_GRANTS`) and,
for an action on a case, the user's agency is involved in that case and has not left it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cswb.domain.cases import Role
from cswb.errors import PermissionDeniedError
from cswb.security.principal import Principal


class Action(StrEnum):
    CASE_CREATE = "case.create"
    CASE_LIST = "case.list"
    CASE_READ = "case.read"
    CASE_UPDATE = "case.update"
    CASE_NOTE = "case.note"
    CASE_INVOLVE = "case.involve"
    IDENTITY_READ = "identity.read"
    IDENTITY_WRITE = "identity.write"
    IDENTITY_SEARCH = "identity.search"
    USERS_MANAGE = "users.manage"
    AUDIT_VERIFY = "audit.verify"
    KEYS_ROTATE = "keys.rotate"
    RETENTION_RUN = "retention.run"
    ANALYTICS_DETAIL = "analytics.detail"


CASE_ACTIONS = frozenset({Action.CASE_READ, Action.CASE_UPDATE, Action.CASE_NOTE,
                          Action.CASE_INVOLVE, Action.IDENTITY_READ, Action.IDENTITY_WRITE})
"""Actions on one case: also need the user's agency to be involved in it."""

_CASE_WORK = frozenset({Action.CASE_CREATE, Action.CASE_LIST, Action.CASE_READ,
                        Action.CASE_NOTE})

ROLE_GRANTS: dict[Role, frozenset[Action]] = {
    Role.ADMINISTRATOR: frozenset({Action.USERS_MANAGE, Action.AUDIT_VERIFY,
                                   Action.KEYS_ROTATE, Action.RETENTION_RUN}),
    Role.TABLE_CHAIR: _CASE_WORK | {Action.CASE_UPDATE, Action.CASE_INVOLVE,
                                    Action.IDENTITY_READ, Action.IDENTITY_WRITE,
                                    Action.IDENTITY_SEARCH},
    Role.AGENCY_REPRESENTATIVE: _CASE_WORK | {Action.CASE_UPDATE, Action.IDENTITY_READ,
                                              Action.IDENTITY_WRITE, Action.IDENTITY_SEARCH},
    Role.NAVIGATOR: _CASE_WORK,
    Role.ANALYST: frozenset({Action.ANALYTICS_DETAIL}),
    Role.PUBLIC: frozenset(),
}
"""What each role may do. Administrators run the platform but see no case; analysts work in
the analytic zone only (and alone see its detailed metrics: repeat locations, response
times); navigators see the de-identified case of an involved agency."""


def is_allowed(principal: Principal, action: Action,
               involved_agencies: Iterable[int] | None = None) -> bool:
    """True when ``principal`` may do ``action`` (on a case with these active agencies)."""
    if action not in ROLE_GRANTS.get(principal.role, frozenset()):
        return False
    if action in CASE_ACTIONS:
        return involved_agencies is not None and principal.agency_id is not None \
            and principal.agency_id in set(involved_agencies)
    return True


def authorize(principal: Principal, action: Action,
              involved_agencies: Iterable[int] | None = None) -> None:
    """Raise :class:`PermissionDeniedError` unless :func:`is_allowed`."""
    if not is_allowed(principal, action, involved_agencies):
        raise PermissionDeniedError(f"{principal.role.value} {principal.username!r} may not "
                                    f"{action.value}" + (" on this case" if action in
                                                         CASE_ACTIONS else ""))
