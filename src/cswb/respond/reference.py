"""The default response policy as a documentation page, generated from the policy itself."""

from __future__ import annotations

from cswb.respond.policy import load_policy
from cswb.respond.tiers import tier_table_markdown


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def policy_page(header: str) -> str:
    """docs/reference/response-policy.md: the tiers and the default policy, rule by rule."""
    policy = load_policy()
    lines = [header, "", "# The default response policy", "",
             f"`{policy.name}` version {policy.version}, shipped with cswb as "
             "`src/cswb/respond/default_policy.yaml`. Rules are tried in order and the first "
             "that matches decides; see [Respond](../respond.md) for the format.", "",
             _cell(policy.description), "", "## Tiers", "", tier_table_markdown(), "",
             "## Rules", "", "| # | rule | tier | when | why | follows |",
             "|---|---|---|---|---|---|"]
    for number, rule in enumerate(policy.rules, 1):
        lines.append(f"| {number} | `{rule.id}` | `{rule.tier.value}` | {_cell(rule.describe())} "
                     f"| {_cell(rule.rationale)} | {', '.join(rule.follows) or '-'} |")
    lines.append(f"| - | (default) | `{policy.default_tier.value}` | no rule matched | "
                 f"{_cell(policy.default_rationale)} | - |")
    return "\n".join(lines) + "\n"
