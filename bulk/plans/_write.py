"""``--plan-out PLAN``: the plan file (and its Markdown summary) from what a dry run's
planning saw (:class:`bulk.plans._sight.PlanSight`)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from bulk import __version__
from bulk._journal import iso
from bulk._report import write_text
from bulk.plans._format import (
    FORMAT,
    VERSION,
    check_plan_path,
    intent,
    markdown,
    row_entry,
    sealed,
    summary_path,
)
from bulk.plans._sight import PlanSight
from bulk.plans._sync import PRUNED
from bulk.providers import entry


def _file(path: Path | None, sha256: str | None = None) -> dict[str, str] | None:
    if path is None:
        return None
    if sha256 is None:
        with path.open("rb") as handle:
            sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"path": str(path), "sha256": sha256}


def _iso_ms(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def options_of(sight: PlanSight) -> dict[str, Any]:
    """The options that shape the requests (and which rows are valid)."""
    spec = sight.spec
    batch = {lane.name or lane.provider: lane.batch_size for lane in sight.lanes}
    return {
        "campaign": spec.campaign,
        "from_campaign": spec.from_campaign,
        "batch_size": spec.batch_size,
        "batch_size_in_effect": batch,
        "callback_url": spec.callback_url,
        "regions": list(spec.regions),
        "number_type": spec.number_type,
        "account_name": spec.account_name,
        "shard": spec.shard,
        **({"prune": spec.prune, "max_unlink": spec.max_unlink} if spec.command == "sync" else {}),
    }


def document(sight: PlanSight, created: float | None = None) -> dict[str, Any]:
    """The plan, sealed with its digest."""
    spec, plan = sight.spec, sight.plan
    created = time.time() if created is None else created
    lanes = {lane.name: lane for lane in sight.lanes}
    frame = sight.loaded.frame
    accounts = "account" in frame.columns
    columns = ["line", "number", "e164", "action", "campaign_id", "from_campaign"]
    at = iso(plan.observed_at) if plan.observed_at else None
    pruned: set[int] = set()
    if PRUNED in frame.columns:
        pruned = set(frame.filter(pl.col(PRUNED)).get_column("line"))
    rows = []
    for line, number, e164, action, campaign, source, *rest in frame.select(
        *columns, *(["account"] if accounts else [])
    ).iter_rows():
        record = sight.rows[line]
        account = rest[0] if rest else None
        lane = lanes.get(account if accounts else None)
        what = intent(
            record.action,
            record.state,
            record.campaign_id,
            record.from_campaign,
            two_step=lane.two_step if lane is not None else False,
            reason=record.reason,
        )
        observed = plan.observed.get(line)
        rows.append(
            row_entry(
                line,
                number,
                e164,
                action if record.action != "none" else None,
                campaign,
                source,
                account,
                observed,
                at if observed is not None else None,
                what,
                record.reason,
            )
        )
        if line in pruned:  # bulk sync --prune: not a line of the input
            rows[-1]["pruned"] = True
    single = sight.lanes[0] if len(sight.lanes) == 1 and not accounts else None
    fallback = "sandbox" if spec.sandbox else spec.base_url or entry(spec.provider).default_base_url
    counts = Counter(str(r["outcome"] or r["do"]) for r in rows)
    body: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "bulk_version": __version__,
        "created_at": _iso_ms(created),
        "command": spec.command,
        "provider": "accounts" if accounts else spec.provider,
        "account": single.account if single is not None else None,
        "base_url": None if accounts else (single.where if single is not None else fallback),
        "accounts": (
            {
                str(lane.name): {
                    "provider": lane.provider,
                    "account": lane.account,
                    "base_url": lane.where,
                }
                for lane in sight.lanes
            }
            if accounts
            else None
        ),
        "input": _file(spec.input, sight.input_sha256),
        "campaigns_file": _file(spec.campaigns),
        "accounts_file": _file(spec.accounts),
        "options": options_of(sight),
        "observed_at": at,
        "counts": dict(sorted(counts.items())),
        "rows": rows,
    }
    return sealed(body)


def write_plan(path: Path, sight: PlanSight) -> dict[str, Any]:
    """Write the plan and its summary beside it (each to a temporary file renamed into
    place); the plan's document."""
    check_plan_path(path)
    plan = document(sight)
    write_text(path, json.dumps(plan, indent=1, ensure_ascii=False) + "\n", "the plan")
    write_text(summary_path(path), markdown(plan, path.name), "the plan")
    return plan
