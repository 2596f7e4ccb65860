"""The plan file: a versioned JSON document of what a run will do, with a digest inside, and
the Markdown summary written beside it. Pure: values in, text out.

A plan holds no secret: the provider, the account id (Plivo's auth id, which is not secret)
and the base URL, never a token or an API key. Its ``digest`` is ``sha256:`` and the hex
SHA-256 of the canonical JSON (keys sorted, no spaces, UTF-8) of every other key: a plan
edited after it was written no longer matches it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulk._errors import ConfigError
from bulk._states import TERMINAL, State
from bulk.providers import NumberState

FORMAT = "bulk-plan"
VERSION = 1
#: rows shown per group in the Markdown summary
FIRST_ROWS = 10


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes a digest is taken over: keys sorted, no spaces, UTF-8."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def digest_of(document: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` over every key of ``document`` but ``digest``."""
    body = {k: v for k, v in document.items() if k != "digest"}
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def sealed(document: dict[str, Any]) -> dict[str, Any]:
    """The document with its digest inside."""
    return {**document, "digest": digest_of(document)}


def summary_path(plan: Path) -> Path:
    """The Markdown summary beside a plan: its suffix replaced by ``.md`` (``plan.json`` ->
    ``plan.md``), or ``.md`` appended to a plan without one."""
    return plan.with_suffix(".md") if plan.suffix else plan.with_name(plan.name + ".md")


def drift_path(plan: Path) -> Path:
    """The drift file beside a plan: ``plan.json`` -> ``plan.drift.csv``."""
    stem = plan.stem if plan.suffix else plan.name
    return plan.with_name(stem + ".drift.csv")


def check_plan_path(plan: Path) -> None:
    """Refuse a plan path whose summary would be the plan itself (a ``.md`` plan)."""
    if plan.suffix.lower() == ".md":
        raise ConfigError(f"--plan-out {plan}: the summary is written beside it as .md; "
                          "give the plan another extension (.json)")
    if plan.is_dir():
        raise ConfigError(f"--plan-out {plan}: is a directory; give a file name")


# --- one row ------------------------------------------------------------------------------


def seen(states: Mapping[str, NumberState] | None) -> dict[str, dict[str, str | None]] | None:
    """What planning saw of a number, per campaign: its settlement and the provider's raw
    status (JSON-ready)."""
    if states is None:
        return None
    return {
        campaign: {"status": state.settlement.value, "provider_status": state.provider_status}
        for campaign, state in sorted(states.items())
    }


def seen_text(states: Mapping[str, Mapping[str, str | None]] | None) -> str:
    """``CUOGHIN absent; CMIGOLD active (COMPLETED)``, or ``not read``."""
    if not states:
        return "not read"
    parts = []
    for campaign, state in states.items():
        raw = state.get("provider_status")
        parts.append(f"{campaign} {state.get('status')}" + (f" ({raw})" if raw else ""))
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Intent:
    """What a row will do: ``do`` is the request it sends (``link``, ``unlink``, ``move``),
    ``poll`` (a link already in progress: nothing sent, polled until it settles), ``none``
    (its outcome is known: ``outcome``), or ``check`` (a resumed row in flight: read first)."""

    do: str
    outcome: str | None
    request: str

    def key(self) -> tuple[str, str | None]:
        """What a drift check compares (the request, or the known outcome)."""
        return self.do, self.outcome


def intent(
    action: str,
    state: State,
    campaign: str | None,
    source: str | None,
    *,
    two_step: bool,
    reason: str | None = None,
) -> Intent:
    """A row's intent from its state once planning decided (or left it to be sent)."""
    if state is State.PLANNED:
        if action == "unlink":
            return Intent("unlink", None, f"unlink from {campaign}")
        if action == "move" and two_step:
            return Intent("move", None, f"unlink from {source}, then link to {campaign}")
        if action == "move":
            return Intent("move", None, f"attach to {campaign} (leaves {source})")
        return Intent("link", None, f"link to {campaign}")
    if state is State.RELEASED:  # a two-step move whose number is not in its old campaign
        return Intent("link", None, f"link to {campaign} ({reason or f'not in {source}'})")
    if state is State.SUBMITTED:
        return Intent("poll", None, "none: a link is already in progress; polled to the end")
    if state in TERMINAL:
        return Intent("none", state.value, "none")
    return Intent("check", None, "read first: a change may be in flight")


def row_entry(
    line: int,
    number: str | None,
    e164: str | None,
    action: str | None,
    campaign: str | None,
    source: str | None,
    account: str | None,
    observed: Mapping[str, NumberState] | None,
    observed_at: str | None,
    what: Intent,
    reason: str | None,
) -> dict[str, Any]:
    """One row of a plan file."""
    return {
        "line": line,
        "number": number,
        "e164": e164,
        "action": action,
        "campaign_id": campaign,
        "from_campaign": source,
        "account": account,
        "observed": None if observed is None else {"at": observed_at, "campaigns": seen(observed)},
        "do": what.do,
        "request": what.request,
        "outcome": what.outcome,
        "reason": reason,
    }


# --- reading -------------------------------------------------------------------------------


def read_plan(path: Path) -> dict[str, Any]:
    """A plan file, checked: readable JSON of this format and version, whose content matches
    its digest. :class:`ConfigError` (one line, exit 2) saying which check failed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the plan ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ConfigError(f"{path}: not a plan (not JSON); nothing was sent") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a bulk plan (no \"format\": \"{FORMAT}\"); nothing sent")
    version = document.get("version")
    if version != VERSION:
        raise ConfigError(
            f"{path}: unknown plan format version {version!r} (this bulk reads version "
            f"{VERSION}); nothing was sent"
        )
    if document.get("digest") != digest_of(document):
        raise ConfigError(
            f"{path}: the plan does not match its digest: it was changed after it was "
            "written; nothing was sent (make and review a new plan)"
        )
    rows = document.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{path}: the plan has no list of rows; nothing was sent")
    return document


# --- the Markdown summary ------------------------------------------------------------------


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _group(row: Mapping[str, Any]) -> str:
    """The summary's group of a row: its request and campaigns, or its known outcome."""
    do, campaign, source = row.get("do"), row.get("campaign_id"), row.get("from_campaign")
    account = f"{row['account']}: " if row.get("account") else ""
    if do == "link":
        return f"{account}link to {campaign}"
    if do == "unlink":
        return f"{account}unlink from {campaign}"
    if do == "move":
        return f"{account}move {source} -> {campaign}"
    if do == "poll":
        return f"{account}in progress in {campaign} (poll only)"
    return f"{account}{row.get('outcome') or do}" + (f" in {campaign}" if campaign else "")


def markdown(document: Mapping[str, Any], plan_name: str) -> str:
    """The plan's summary for a change ticket: where, what, counts by action and campaign,
    the first rows of each, and every row that will fail or be skipped."""
    rows: Sequence[Mapping[str, Any]] = document["rows"]
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_group(row), []).append(row)
    sending = [r for r in rows if r.get("do") in ("link", "unlink", "move")]
    known = Counter(str(r.get("outcome")) for r in rows if r.get("do") == "none")
    where = document.get("base_url") or "-"
    account = document.get("account") or "-"
    lines = [
        f"# bulk plan: {document['command']} of {len(rows)} rows",
        "",
        f"- Plan file: `{_cell(plan_name)}`, digest `{document['digest']}`",
        f"- Made {document['created_at']} by bulk {document['bulk_version']}",
        f"- Provider: {_cell(document['provider'])}, account {_cell(account)}, {_cell(where)}",
        f"- Input: `{_cell(document['input']['path'])}` (sha256 {document['input']['sha256']})",
        f"- Requests to send: {len(sending)} rows change"
        + "".join(f"; {n} {o}" for o, n in sorted(known.items())),
        f"- Run it with: `bulk execute {_cell(plan_name)}` (refused if edited, if the provider "
        "state drifted, or when older than --max-plan-age, 24 h by default)",
        "",
        "## By action and campaign",
        "",
        "| what | rows |",
        "|---|---:|",
        *(f"| {_cell(name)} | {len(members)} |" for name, members in groups.items()),
    ]
    for name, members in groups.items():
        lines += [
            "",
            f"### {_cell(name)}: first {min(FIRST_ROWS, len(members))} of {len(members)}",
            "",
            "| line | number | observed | request |",
            "|---:|---|---|---|",
        ]
        for row in members[:FIRST_ROWS]:
            observed = row.get("observed") or {}
            lines.append(
                f"| {row['line']} | {_cell(row.get('e164') or row.get('number'))} | "
                f"{_cell(seen_text(observed.get('campaigns')))} | {_cell(row.get('request'))} |"
            )
    skipped = [r for r in rows if r.get("outcome") not in (None, "already")]
    lines += ["", f"## Rows that will fail or be skipped: {len(skipped)}", ""]
    if skipped:
        lines += ["| line | number | outcome | reason |", "|---:|---|---|---|"]
        lines += [
            f"| {r['line']} | {_cell(r.get('number'))} | {_cell(r.get('outcome'))} | "
            f"{_cell(r.get('reason'))} |"
            for r in skipped
        ]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"
