"""``bulk execute PLAN``: send exactly a reviewed plan's requests, through the same engine,
journal and report as any run.

Before anything is sent: the plan must match its digest, be of a known format version, be
younger than ``--max-plan-age``, and name the provider, account and base URL the run's
credentials and options reach (:func:`prepare`). Then each account's planning reads the
provider's state as any run does, and every row the plan saw is compared with what is there
now (:class:`Review`): a row whose number stands elsewhere, or for which planning would now
decide otherwise, has drifted. Drift stops the run (exit 2, nothing sent, ``PLAN.drift.csv``
beside the plan), or with ``--skip-drifted`` ends those rows ``drifted`` and sends the others.

The plan's rows are the run's rows (:func:`plan_rows`): same lines, numbers, actions and
campaigns. The journal's fingerprint holds the plan's digest: a second ``execute`` of the
same plan resumes its journal (rows already done are not sent again).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from bulk._accounts import accounts_for
from bulk._errors import ConfigError
from bulk._jobvalues import JobSpec
from bulk._journal import Change
from bulk._states import Event, next_state
from bulk.engine import Engine, Plan
from bulk.inputs import Loaded
from bulk.plans._drift import Drift, drift_of, write_drift
from bulk.plans._format import drift_path, intent, read_plan
from bulk.plans._sight import PlanSight
from bulk.plans._sync import PRUNED
from bulk.providers import credentials_from_env, entry

#: the commands a plan can be made of (``--plan-out``)
EXECUTABLE = ("link", "unlink", "move", "apply", "sync")
_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_age(text: str) -> float:
    """``--max-plan-age``: ``90s``, ``45m``, ``24h``, ``2d`` as seconds."""
    found = _AGE.match(text.strip())
    if found is None:
        raise ConfigError(f"--max-plan-age {text!r}: give a duration such as 90m, 24h or 2d")
    return float(found.group(1)) * _UNIT[found.group(2)]


@dataclass(slots=True)
class Settings:
    """What ``bulk execute`` takes besides the plan: where it runs and how fast."""

    journal: Path | None = None
    report: Path | None = None
    failures: Path | None = None
    summary_json: Path | None = None
    base_url: str | None = None
    sandbox: bool = False
    accounts: Path | None = None
    skip_drifted: bool = False
    max_plan_age: float = 24 * 3600.0
    #: timing and limits (never what is sent): ``rate``, ``concurrency``, ``poll_interval``...
    tuning: dict[str, Any] = field(default_factory=dict)
    #: credential options as given (click fills them from the environment too), by
    #: parameter name; the plan's provider picks its own
    credentials: dict[str, Any] = field(default_factory=dict)

    def credential(self, provider: str, which: Literal["account", "token"]) -> str | None:
        """The plan's provider's account id or secret (``which``: account, token), if given."""
        chosen = {o.field: o.param for o in entry(provider).options}
        param = chosen.get(which)
        value = None if param is None else self.credentials.get(param)
        return None if value is None else str(value)


def _created(document: Mapping[str, Any], path: Path) -> float:
    try:
        return datetime.fromisoformat(str(document.get("created_at"))).timestamp()
    except ValueError:
        raise ConfigError(f"{path}: the plan has no readable created_at; nothing sent") from None


def _age_text(seconds: float) -> str:
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def prepare(path: Path, settings: Settings, now: float | None = None) -> tuple[JobSpec, Review]:
    """The run that executes the plan at ``path``, and its review; :class:`ConfigError`
    (exit 2, one line, nothing sent) when the plan must not run."""
    document = read_plan(path)
    if document.get("command") not in EXECUTABLE:
        raise ConfigError(
            f"{path}: the plan's command {document.get('command')!r} is none of "
            f"{', '.join(EXECUTABLE)}; nothing was sent"
        )
    now = time.time() if now is None else now
    age = now - _created(document, path)
    if age > settings.max_plan_age:
        raise ConfigError(
            f"{path}: the plan was made {_age_text(age)} ago, more than --max-plan-age "
            f"{_age_text(settings.max_plan_age)}: nothing was sent (make and review a new plan)"
        )
    provider = str(document.get("provider"))
    accounts = settings.accounts
    if provider == "accounts":
        accounts = accounts or _plan_accounts_file(document, path)
        _check_accounts(document, path, accounts, settings.sandbox)
        provider = next(iter(document["accounts"].values()))["provider"]
    else:
        entry(provider)  # a provider this bulk knows
        _check_where(document, path, provider, settings)
    options = document.get("options") or {}
    spec = JobSpec(
        command=document["command"],
        input=path,
        provider=provider,
        base_url=None if settings.sandbox or accounts else _base_url(document, settings),
        account=settings.credential(provider, "account"),
        token=settings.credential(provider, "token"),
        batch_size=options.get("batch_size"),
        callback_url=options.get("callback_url"),
        report=settings.report,
        failures=settings.failures,
        journal=settings.journal or _journal_of(path, document, provider, accounts),
        sandbox=settings.sandbox,
        summary_json=settings.summary_json,
        accounts=accounts,
        preloaded=(_rows_or_refuse(document, path), str(document["digest"])),
        **settings.tuning,
    )
    return spec, Review(document, path, settings.skip_drifted)


def _rows_or_refuse(document: Mapping[str, Any], path: Path) -> Loaded:
    """The plan's rows; a plan whose rows are not what ``--plan-out`` writes is refused."""
    try:
        loaded = plan_rows(document, path)
        lines = [int(r["line"]) for r in document["rows"]]
    except (KeyError, TypeError, ValueError, pl.exceptions.PolarsError):
        raise ConfigError(f"{path}: the plan's rows are malformed; nothing was sent") from None
    if len(set(lines)) != len(lines):
        raise ConfigError(f"{path}: the plan lists a line twice; nothing was sent")
    return loaded


def _journal_of(
    path: Path, document: Mapping[str, Any], provider: str, accounts: Path | None
) -> Path:
    """The plan's own journal: named after the plan and its digest
    (``change.1a2b3c4d.link.plivo.journal``), so the same plan resumes it and a new plan
    written to the same path starts its own."""
    digest = str(document["digest"]).removeprefix("sha256:")[:8]
    via = "accounts" if accounts is not None else provider
    stem = path.stem if path.suffix else path.name
    return path.with_name(f"{stem}.{digest}.{document['command']}.{via}.journal")


def _base_url(document: Mapping[str, Any], settings: Settings) -> str | None:
    where = document.get("base_url")
    return settings.base_url or (None if where in (None, "sandbox") else str(where))


def _check_where(
    document: Mapping[str, Any], path: Path, provider: str, settings: Settings
) -> None:
    """The plan's provider, base URL and account are the run's."""
    where = document.get("base_url")
    if (where == "sandbox") != settings.sandbox:
        made = "against the sandbox" if where == "sandbox" else f"against {where}"
        give = "give --sandbox" if where == "sandbox" else "run it without --sandbox"
        raise ConfigError(f"{path}: the plan was made {made}: {give}; nothing was sent")
    if settings.base_url and where not in (None, "sandbox"):
        if settings.base_url.rstrip("/") != str(where).rstrip("/"):
            raise ConfigError(
                f"{path}: the plan was made against {where}, not --base-url "
                f"{settings.base_url}; nothing was sent"
            )
    planned = document.get("account")
    if settings.sandbox or planned is None:
        return
    given = settings.credential(provider, "account"), settings.credential(provider, "token")
    have = credentials_from_env(provider, *given).account
    if have != planned:
        raise ConfigError(
            f"{path}: the plan is for {provider} account {planned}, the credentials are for "
            f"{have or 'no account'}; nothing was sent"
        )


def _plan_accounts_file(document: Mapping[str, Any], path: Path) -> Path:
    recorded = document.get("accounts_file") or {}
    if not recorded.get("path"):
        raise ConfigError(f"{path}: the plan names no accounts file; give --accounts")
    return Path(recorded["path"])


def _check_accounts(
    document: Mapping[str, Any], path: Path, accounts: Path, sandbox: bool
) -> None:
    """Every account the plan's rows use is in the accounts file, reached as planned."""
    try:
        have = accounts_for(accounts, None) or {}
    except ConfigError as exc:
        raise ConfigError(f"{exc}; nothing was sent") from None
    for name, planned in (document.get("accounts") or {}).items():
        account = have.get(name)
        if account is None:
            raise ConfigError(f"{path}: the plan's account {name} is not in {accounts}")
        base = account.base_url or entry(account.provider).default_base_url
        where = "sandbox" if sandbox else base
        if (account.provider, account.account_id, where) != (
            planned.get("provider"),
            planned.get("account"),
            planned.get("base_url"),
        ):
            raise ConfigError(
                f"{path}: account {name} in {accounts} is {account.where()}, the plan's was "
                f"{planned.get('provider')}:{planned.get('account') or '-'}@"
                f"{planned.get('base_url')}; nothing was sent"
            )


def plan_rows(document: Mapping[str, Any], path: Path) -> Loaded:
    """The plan's rows as a run's input: same lines, numbers, actions and campaigns; a row
    the plan rejected is rejected again with the plan's reason."""
    rows = document["rows"]
    accounts = document.get("provider") == "accounts"

    def column(key: str) -> list[Any]:
        return [r.get(key) for r in rows]

    rejected = [r.get("reason") if r.get("outcome") == "rejected" else None for r in rows]
    frame = pl.DataFrame(
        {
            "line": column("line"),
            "number": column("number"),
            "e164": column("e164"),
            "campaign_id": column("campaign_id"),
            "action": column("action"),
            "from_campaign": column("from_campaign"),
            "reason": rejected,
            "detail": [None] * len(rows),
            **({"account": column("account")} if accounts else {}),
            PRUNED: [bool(r.get("pruned")) for r in rows],
        },
        schema={
            "line": pl.Int64,
            **dict.fromkeys(
                ["number", "e164", "campaign_id", "action", "from_campaign", "reason", "detail"],
                pl.Utf8,
            ),
            **({"account": pl.Utf8} if accounts else {}),
            PRUNED: pl.Boolean,
        },
    )
    raw = frame.select(
        pl.col("campaign_id").fill_null("").alias("campaign"),
        pl.col("action").fill_null(""),
        pl.col("from_campaign").fill_null(""),
        (pl.col("account") if accounts else pl.lit(None, pl.Utf8)).fill_null("").alias("account"),
    )
    headers = ["number", "campaign_id", "action", "from_campaign"]
    return Loaded(
        frame=frame,
        extra_columns=[],
        columns={"number": "number", "campaign": "campaign_id", "action": "action"},
        path=str(path),
        encoding="utf-8",
        separator=",",
        headers=headers,
        raw=raw,
    )


class Review:
    """The drift check: each account's planning decisions, compared row by row with the
    plan's before they apply (``on_review``), then, once every account has planned, the
    run refused or let go (``on_planned``)."""

    def __init__(self, document: Mapping[str, Any], path: Path, skip_drifted: bool) -> None:
        self.document = document
        self.path = path
        self.skip_drifted = skip_drifted
        self.rows = {int(r["line"]): r for r in document["rows"]}
        self.drifts: list[Drift] = []

    def hooks(self) -> dict[str, Any]:
        return {"on_review": self.on_review, "on_planned": self.on_planned}

    def on_review(self, engine: Engine, plan: Plan, changes: list[Change]) -> list[Change]:
        """Compare; without ``--skip-drifted`` an account with drift applies nothing (its
        rows stay as they were, and ``on_planned`` stops the run); with it, drifted rows end
        ``drifted`` and the others go on as decided."""
        by_line = {c.line: c for c in changes}
        two_step = not engine.provider.move_in_one_step
        found: list[Drift] = []
        for line, observed in sorted(plan.observed.items()):
            row = engine.journal.get(line)
            change = by_line.get(line)
            state = row.state if change is None else next_state(row.action, row.state, change.event)
            assert state is not None  # the engine's decisions are legal ones
            reason = (change.reason if change is not None else None) or row.reason
            now = intent(
                row.action, state, row.campaign_id, row.from_campaign, two_step=two_step,
                reason=reason,
            )
            drift = drift_of(self.rows[line], observed, now)
            if drift is not None:
                found.append(drift)
        self.drifts += found
        if not found:
            return changes
        if not self.skip_drifted:
            return []
        lines = {d.line for d in found}
        kept = [c for c in changes if c.line not in lines]
        return kept + [Change(d.line, Event.DRIFT, reason=d.reason) for d in found]

    def on_planned(self, sight: PlanSight) -> None:
        """Before anything is sent: the plan's connections are the run's, and drift (unless
        skipped) stops the run, naming the drift file."""
        self._check_lanes(sight)
        target = drift_path(self.path)
        if not self.drifts:
            target.unlink(missing_ok=True)  # an earlier execute's drift is not this one's
            return
        write_drift(target, self.drifts)
        if self.skip_drifted:
            return
        first = min(self.drifts, key=lambda d: d.order)
        raise ConfigError(
            f"{len(self.drifts)} row(s) drifted since the plan was made ({first.where}, "
            f"{first.number}: the plan saw {first.planned}, now {first.now}); nothing was "
            f"sent; see {target}. Make and review a new plan, or give --skip-drifted to send "
            "the others"
        )

    def _check_lanes(self, sight: PlanSight) -> None:
        planned = self.document.get("accounts")
        for lane in sight.lanes:
            if lane.name is None:
                want = [self.document.get("provider"), self.document.get("account")]
            else:
                recorded = (planned or {}).get(lane.name) or {}
                want = [recorded.get("provider"), recorded.get("account")]
            have = [lane.provider, lane.account]
            if want[1] is None:  # a provider without account ids: the provider alone
                want, have = want[:1], have[:1]
            if want != have:
                raise ConfigError(
                    f"{self.path}: the plan is for {':'.join(map(str, want))}, the run reaches "
                    f"{':'.join(map(str, have))}; nothing was sent"
                )
