"""Rejection reason codes and their one-line descriptions (the manual, terminal summary, report)."""

from __future__ import annotations

# Order matters: it is the order the summary lists reasons in, and per row the first reason
# found wins (number problems first, then the row's request, then cross-row checks).
REASONS: dict[str, str] = {
    "empty": "the number cell is empty",
    "invalid": "not a valid phone number (wrong length, unassigned area code or exchange, "
    "stray characters)",
    "not_us": "a valid number, but of a region that is not allowed (by default only US)",
    "toll_free": "a toll-free number (800/888/877/866/855/844/833): toll-free is not 10DLC",
    "premium_rate": "a premium-rate number (900): not usable for 10DLC",
    "not_geographic": "a valid number that is neither fixed line nor mobile "
    "(e.g. 5XX personal numbers)",
    "wrong_type": "fixed line where --number-type mobile was asked, or mobile where "
    "fixed_line was asked",
    "precision_lost": "scientific notation that lost digits (e.g. 1.41566678E10): "
    "re-export the column as text",
    "letters": "contains letters (vanity numbers such as 1-800-FLOWERS are never converted)",
    "extension": "has an extension (x123, ext. 12, ;ext=): a 10DLC number cannot have one",
    "missing_account": "accounts are in use (--accounts) but the row names none and no "
    "--account was given",
    "unknown_account": "the row's account is not in the accounts file",
    "account_mismatch": "the row's account differs from --account",
    "missing_campaign": "no campaign on the row and no --campaign given",
    "unknown_campaign": "the campaign (alias or id) is not in the campaigns file",
    "unknown_action": "the action column is not link, unlink or move",
    "action_mismatch": "the row's action differs from the command being run",
    "missing_from_campaign": "a move with no from_campaign (and no --from given)",
    "same_campaign": "a move whose from and to campaigns are the same",
    "conflict": "the same number is asked for different things in this file "
    "(two campaigns, link and unlink, ...): all its rows are rejected",
    "duplicate": "an exact repeat of an earlier row (same number, action and campaigns): "
    "the first is kept",
}
