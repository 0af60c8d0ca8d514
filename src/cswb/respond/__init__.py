"""Respond: the local response policy, scenarios over stored calls, and staffing of an
alternative team (see ``docs/respond.md``)."""
