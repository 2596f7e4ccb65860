"""What ``bulk link|unlink|move|status|apply`` prints on stdout at the end: the rows per
outcome, why rows did not end as asked (per reason, then the first rows, as ``validate``
shows its rejected rows), the requests, the files written, and what the exit code means.

On a terminal the counts are tables; piped (cron mail, a log, ``| less``) every line is plain
text, never wrapped and never drawn with box characters.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from bulk._defaults import adaptive
from bulk._jobvalues import JobResult, JobSpec
from bulk._report import EXIT_DEFERRED, SUCCESS_OUTCOMES
from bulk._why import Why
from bulk.cli._shown import cell, visible
from bulk.engine import Plan
from bulk.providers import entry


def plan_text(spec: JobSpec, plan: Plan) -> str:
    """The plan in one line (before anything is sent, and after a dry run)."""
    batch = spec.batch_size or entry(spec.provider).default_batch
    linking = sum(len(v) for v in plan.to_link.values())
    where = "campaigns" if spec.accounts is None else "campaigns of all accounts"
    return (
        f"Plan: {plan.link_requests(batch)} link requests for {linking} numbers in "
        f"{len(plan.to_link)} {where}, {len(plan.to_unlink)} unlinks, "
        f"{len(plan.to_release)} two-step moves; {plan.already} already in place, "
        f"{plan.in_progress} already in progress, {plan.unusable} not possible."
    )


def _line(out: Console, text: str) -> None:
    """One line as it is: no markup read, no highlighting, never wrapped."""
    out.print(visible(text), markup=False, highlight=False, soft_wrap=True)


def _settled_text(spec: JobSpec, result: JobResult) -> str:
    """The rate the run ended on, when it was found (``--rate auto``)."""
    found = adaptive(spec.rate, entry(spec.provider).default_rate_mode)
    if not found or result.rate_settled is None:
        return ""
    return f"; rate settled at {result.rate_settled:.1f} req/s (auto)"


def _outcomes(out: Console, spec: JobSpec, result: JobResult) -> None:
    title = f"bulk {spec.command}: {result.rows} rows" + (" (dry run)" if spec.dry_run else "")
    shown = [(o, n) for o, n in result.counts.items() if n or o in ("failed", "unknown")]
    _line(out, title)
    if not out.is_terminal:
        for outcome, n in shown:
            _line(out, f"  {outcome:<9} {n:>7}")
        return
    table = Table(show_header=True)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for outcome, n in shown:
        table.add_row(outcome, str(n))
    out.print(table)


def _why(out: Console, why: Why, everything: str) -> None:
    """The rows not ended as asked: per outcome and reason, then the first rows."""
    if not why.total:
        return
    _line(out, "Rows not ended as asked, by reason:")
    width = max(len(outcome) for outcome, _ in why.reasons)
    for (outcome, reason), n in why.reasons.items():
        _line(out, f"  {n:>7}  {outcome:<{width}}  {reason}")
    more = f" (all {why.total} are in {everything})" if why.total > len(why.first) else ""
    _line(out, f"First of them{more}:")
    for row in why.first:
        where = "pruned" if row.line is None else f"line {row.line}"
        _line(out, f"  {where}: {row.number!r} {row.outcome}: {row.reason}")


def _resent(out: Console, result: JobResult) -> None:
    """Why more change requests went out than the plan said."""
    if result.resent:
        why = "; ".join(f"{n} x {what}" for what, n in sorted(result.resent.items()))
        _line(out, f"More requests than planned: {why}.")


def _exit_line(result: JobResult, where: str) -> str | None:
    """What a non-zero exit code means, for this run."""
    counts = result.counts
    bad = {o: n for o, n in counts.items() if n and o not in SUCCESS_OUTCOMES}
    if result.exit_code == 0 or not bad:
        return None
    parts = ", ".join(f"{n} {o}" for o, n in bad.items())
    if result.exit_code == EXIT_DEFERRED:
        return (
            f"exit {EXIT_DEFERRED}: {counts.get('deferred', 0)} rows deferred by --send-until; "
            f"the same command continues them ({parts}; see {where})"
        )
    return (
        f"exit {result.exit_code}: {sum(bad.values())} rows did not end as asked ({parts}); "
        f"see {where}"
    )


def summary(out: Console, spec: JobSpec, result: JobResult) -> None:
    """Everything a finished run prints on stdout."""
    _outcomes(out, spec, result)
    if result.plan is not None and spec.dry_run:
        _line(out, plan_text(spec, result.plan) + " Nothing was sent (dry run).")
    stats = result.stats
    by_kind = ", ".join(f"{k} {v}" for k, v in sorted(stats.requests.items()))
    _line(
        out,
        f"Requests: {stats.total} ({by_kind or 'none'}); 429s: {stats.rate_limited}; "
        f"retries: {stats.retries}; elapsed {result.elapsed:.1f} s; "
        f"average rate {stats.effective_rate():.1f} req/s" + _settled_text(spec, result),
    )
    _resent(out, result)
    if result.accounts:
        if out.is_terminal:
            out.print(accounts_table(result))
        else:
            for text in accounts_lines(result):
                _line(out, text)
    where = str(result.failures or result.report or "the report")
    _why(out, result.why, where)
    if result.settled_before:
        _line(out, f"{result.settled_before} rows had their outcome before this run and are "
                   f"reported as they were (the journal {result.journal}; delete it to start "
                   "over).")
    if result.report:
        _line(out, f"Report: {result.report}")
    if result.failures:
        _line(out, f"Rows to retry: {result.failures}  (re-feed it as INPUT)")
    if result.journal:
        _line(out, f"Journal: {result.journal}")
    ending = _exit_line(result, where)
    if ending:
        _line(out, ending)


def _shown_outcomes(result: JobResult) -> list[str]:
    return [
        o
        for o in result.counts
        if o in ("failed", "unknown") or any(a.counts.get(o) for a in result.accounts.values())
    ]


def _left(result: JobResult) -> dict[str, int]:
    """Rows no account holds (rejected before any account could take them), per outcome."""
    return {
        o: n - sum(a.counts.get(o, 0) for a in result.accounts.values())
        for o, n in result.counts.items()
    }


def accounts_lines(result: JobResult) -> list[str]:
    """The per-account counts as plain lines (for output that is not a terminal)."""
    shown = _shown_outcomes(result)
    lines = ["per account:"]
    for name, account in result.accounts.items():
        rate = account.rate_settled
        counts = ", ".join(f"{o} {account.counts.get(o, 0)}" for o in shown)
        stopped = " (stopped)" if account.stopped else ""
        lines.append(
            f"  {name}{stopped}: rows {account.rows}, {counts}, requests "
            f"{account.requests}, 429s {account.http_429}, rate "
            + ("-" if rate is None else f"{rate:.1f}/s")
        )
    left = _left(result)
    if any(left.values()):
        counts = ", ".join(f"{o} {left.get(o, 0)}" for o in shown)
        lines.append(f"  (none): rows {sum(left.values())}, {counts}")
    return lines


def accounts_table(result: JobResult) -> Table:
    """Outcomes and requests per account (``--accounts``), and the rows that name no account
    (rejected before any account could take them) on a line of their own, so the rows add up
    to the run's. Columns one space apart, so an 80-column terminal shows every header."""
    shown = _shown_outcomes(result)
    table = Table(title="per account", box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False)
    for column in ("account", "rows", *shown, "requests", "429s", "rate"):
        table.add_column(column, justify="left" if column == "account" else "right")
    for name, account in result.accounts.items():
        rate = account.rate_settled
        table.add_row(
            cell(name) + (" (stopped)" if account.stopped else ""),
            str(account.rows),
            *(str(account.counts.get(o, 0)) for o in shown),
            str(account.requests),
            str(account.http_429),
            "-" if rate is None else f"{rate:.1f}/s",
        )
    left = _left(result)
    if any(left.values()):
        shown_left = [str(left.get(o, 0)) for o in shown]
        table.add_row("(none)", str(sum(left.values())), *shown_left, "0", "0", "-")
    return table


__all__ = ["accounts_lines", "accounts_table", "plan_text", "summary"]
