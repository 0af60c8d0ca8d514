"""Who is acting, from where, and on what basis: passed to every service call."""

from __future__ import annotations

from dataclasses import dataclass

from cswb.domain.cases import Role


@dataclass(frozen=True)
class Principal:
    """An authenticated user (or the operating-system account running the CLI)."""

    user_id: int | None
    username: str
    agency_id: int | None
    agency_code: str | None
    role: Role


@dataclass(frozen=True)
class Actor:
    """A principal in one request: the client address and the stated basis of the access."""

    principal: Principal
    source: str = ""
    basis: str = ""

    def because(self, basis: str) -> Actor:
        """The same actor with another stated basis."""
        return Actor(self.principal, self.source, basis)


SYSTEM = Principal(user_id=None, username="cswb-system", agency_id=None, agency_code=None,
                   role=Role.ADMINISTRATOR)
"""The CLI's own maintenance jobs (retention, key rotation): audited under this name."""
