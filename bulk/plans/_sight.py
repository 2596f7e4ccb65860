"""What a run's planning saw, handed to ``--plan-out`` and ``bulk execute`` before anything
is sent (see :func:`bulk._job.run_job`'s ``on_planned``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bulk._journal import RowRecord
from bulk.engine import Plan
from bulk.inputs import Loaded

if TYPE_CHECKING:
    from bulk._jobvalues import JobSpec


@dataclass(frozen=True, slots=True)
class LaneSight:
    """One account's connection (the run's only one without ``--accounts``)."""

    name: str | None  #: the account's name in the accounts file; None without one
    provider: str
    where: str  #: the base URL, or ``sandbox``
    account: str | None  #: the provider's account id (never a secret), if it has one
    two_step: bool  #: a move goes out as an unlink, then a link
    batch_size: int  #: numbers per link request it sends with (its own, the run's, or the
    #: provider's default)


@dataclass(frozen=True, slots=True)
class PlanSight:
    """The rows after planning (decided or waiting to be sent), the plan with what it
    observed per row, and where the requests would go."""

    spec: JobSpec
    loaded: Loaded
    rows: Mapping[int, RowRecord]
    plan: Plan
    input_sha256: str
    lanes: tuple[LaneSight, ...]
