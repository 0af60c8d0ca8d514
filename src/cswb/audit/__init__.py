"""The tamper-evident audit log: append in the action's transaction, chain in a sealer."""

from cswb.audit.chain import ChainBreak, VerifyReport, record, seal_pending, verify

__all__ = ["ChainBreak", "VerifyReport", "record", "seal_pending", "verify"]
