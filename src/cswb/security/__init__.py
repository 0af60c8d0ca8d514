"""Accounts, authorisation policy, field encryption and retention of the operational zone."""
