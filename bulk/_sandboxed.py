"""``--sandbox``: the run's provider is a sandbox in this process, whose state is kept beside
the journal, so that Ctrl-C, then the same command, finishes the job as it would against a real
account.

The state file is ``<journal without .journal>.sandbox-state.json``. A run that resumes a
journal starts the sandbox from it; a run that starts a new journal starts the sandbox afresh
(deleting the journal starts both over). It is written while the run goes (every few seconds)
and when it ends, however it ends, with every change under way written as it will settle (a
provider goes on working while no run is connected to it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bulk._accounts import Account
from bulk._defaults import SANDBOX
from bulk._errors import ConfigError
from bulk.providers import Credentials, entry

#: seconds between two saves of the sandbox's state while a run goes
SAVE_INTERVAL = 2.0
#: how fast the in-process sandbox settles a change (seconds, uniform): the sandbox profile's,
#: unless a test has set its own through :func:`bulk.testing.sandbox_settle`
_settle: list[tuple[float, float]] = [SANDBOX.settle]


def set_settle(settle: tuple[float, float] | None) -> tuple[float, float]:
    """The testing switch behind :func:`bulk.testing.sandbox_settle` (None: the profile's);
    returns the settle times it replaced."""
    previous = _settle[0]
    _settle[0] = SANDBOX.settle if settle is None else settle
    return previous


def state_path(journal: Path) -> Path:
    """Where the sandbox of the run holding ``journal`` keeps its state."""
    return journal.with_name(journal.name.removesuffix(".journal") + ".sandbox-state.json")


def seed_for(accounts: Mapping[str, Account] | None) -> Any:
    """The sandbox's starting state: the default one, or for an accounts file each Plivo
    account under its own auth id and each AgentMessage account an organisation
    ``org_<name>``. None: the default state."""
    if accounts is None:
        return None
    from bulk.sandbox import seed_for_accounts

    by_provider: dict[str, Any] = {}  # seed_for_accounts takes one keyword per provider
    for account in accounts.values():  # each provider says where its accounts are seeded
        by_provider.setdefault(account.provider, {})[_key(account)] = None
    return seed_for_accounts(**by_provider)


def _key(account: Account) -> str:
    """The key the sandbox seeds an account under, as its provider says."""
    key = entry(account.provider).sandbox_account_key
    if key is None:
        raise ConfigError(f"the sandbox does not simulate accounts of {account.provider}")
    return key(account.name, account.account_id)


def credentials(sb: Any, provider: str, account: Account | None) -> Credentials:
    """Credentials the running sandbox accepts for a lane (its account's, with accounts)."""
    if account is None:
        make = entry(provider).sandbox_credentials
        assert make is not None
        return make(sb)
    lookup = entry(provider).sandbox_account_credentials
    assert lookup is not None  # as _key, which seeded the account, checked
    return lookup(sb, _key(account))


def _saved(path: Path) -> Any:
    from bulk.sandbox import StateFileError
    from bulk.sandbox._seed import load_seed

    try:
        return load_seed(path)
    except StateFileError as exc:
        raise ConfigError(
            f"the sandbox's saved state cannot be used ({exc}); delete it and the journal "
            "beside it to start over"
        ) from None


@asynccontextmanager
async def in_process(
    accounts: Mapping[str, Account] | None, journal: Path, *, resume: bool, keep: bool
) -> AsyncIterator[Any]:
    """A sandbox on loopback for the run holding ``journal``: from its saved state when
    ``resume`` (and a state was saved), else from the starting state; with ``keep`` (a run
    that writes its journal) its state is saved beside the journal while the run goes and
    when it ends, once the journal exists."""
    from bulk.sandbox import SandboxConfig, run_sandbox
    from bulk.sandbox._persist import save_state

    path = state_path(journal)
    seed = _saved(path) if resume and path.is_file() else seed_for(accounts)
    low, high = _settle[0]
    config = SandboxConfig(settle_min=low, settle_max=high)
    async with run_sandbox(config, **({} if seed is None else {"seed": seed})) as sb:

        def save() -> None:
            if keep and journal.exists():
                save_state(sb.state, path)

        async def saving() -> None:
            while True:
                await asyncio.sleep(SAVE_INTERVAL)
                save()

        task = asyncio.get_running_loop().create_task(saving()) if keep else None
        try:
            yield sb
        finally:
            if task is not None:
                task.cancel()
            with contextlib.suppress(OSError):  # a folder gone: the journal says so too
                save()


__all__ = ["credentials", "in_process", "seed_for", "set_settle", "state_path"]
