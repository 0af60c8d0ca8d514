"""The minimal case record: open, involve agencies, change status, timeline, identifying details.

Later issues (situation-table discussions, referrals) extend it. Every function takes a session
and an :class:`~cswb.security.principal.Actor`, checks the policy and writes the audit entry in
the same transaction; the API, web pages and CLI only call these functions.
"""
