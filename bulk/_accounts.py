"""Many accounts in one run: the accounts file, where each account's secret comes from, and
which shard an account belongs to (pure: no sockets; the environment is passed in).

An accounts file is TOML, one table per account (the manual's "Many accounts" page shows both
providers)::

    [accounts.east]
    provider = "<a registered provider's name>"
    auth-id = "SAXXXXXXXXXXXXXXXXXX"       # a provider's account id key, when it has one
    auth-token-env = "EAST_TOKEN"          # names the variable holding the secret
    base-url = "https://..."               # optional
    rate = 58                              # optional: requests/s for this account, or "auto"
    concurrency = 8                        # optional

The credential keys come from each provider's command-line options: ``--auth-id`` becomes
``auth-id``, a secret option ``--auth-token`` or ``--api-key`` becomes ``auth-token-env`` or
``api-key-env``.

Secrets never sit in the file: a key that would hold a token or an API key itself
(``auth-token``, ``api-key``, anything naming a token, key, secret or password that is not
``...-env``) is refused, naming the key and never echoing its value. A job file
(``bulk run JOB.toml``) may hold the same ``[accounts.NAME]`` tables inline.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from bulk._errors import ConfigError
from bulk._toml import SECRET_WORDS, read_toml
from bulk.engine import check_base_url
from bulk.providers import REGISTRY, Credentials, Secret, clean_credential, entry

#: account names: what the input's ``account`` column and ``--account`` say
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
#: the keys every account table takes; each provider adds its credential keys (from its
#: command-line options: ``auth-id`` for Plivo's account id, and ``auth-token-env`` or
#: ``api-key-env`` naming the variable that holds the secret)
_KEYS = ("provider", "base-url", "rate", "max-rate", "concurrency", "batch-size")


def credential_keys(provider: str) -> tuple[str | None, str]:
    """The provider's account id key (None when it has none) and its secret's ``-env`` key."""
    options = entry(provider).options
    account = next((o.flag.removeprefix("--") for o in options if o.field == "account"), None)
    secret = next((o.flag.removeprefix("--") for o in options if o.secret), "token")
    return account, f"{secret}-env"


@dataclass(frozen=True, slots=True)
class Account:
    """One account of an accounts file. Holds where its secret is, never the secret."""

    name: str
    provider: str
    secret_env: str  #: the environment variable holding its token or API key
    account_id: str | None = None  #: Plivo's auth id (``auth-id``); None for AgentMessage
    base_url: str | None = None
    rate: float | Literal["auto"] | None = None  #: None: the run's ``--rate``
    max_rate: float | None = None  #: None: the run's ``--max-rate``
    concurrency: int | None = None  #: None: the run's ``--concurrency``
    batch_size: int | None = None  #: None: the run's ``--batch-size``

    def credentials(self, environ: Mapping[str, str]) -> Credentials:
        """Its credentials from ``environ``; :class:`ConfigError` naming the account and the
        variable when that variable is unset or empty."""
        # a secret file's last newline (Kubernetes --from-file) is never part of the secret
        source = f"account {self.name!r}: the environment variable {self.secret_env}"
        token = clean_credential(environ.get(self.secret_env), source)
        if token is None:
            raise ConfigError(
                f"{source} is not set (it holds the account's {_secret_word(self.provider)}); "
                "nothing was sent"
            )
        return Credentials(account=self.account_id, token=Secret(token))

    def where(self) -> str:
        """What the journal's fingerprint records of it: provider, account id, base URL."""
        base = self.base_url or entry(self.provider).default_base_url
        return f"{self.provider}:{self.account_id or '-'}@{base}"


def _secret_word(provider: str) -> str:
    """How the provider's help names its secret: ``auth token``, ``API key``."""
    option = next((o for o in entry(provider).options if o.secret), None)
    return "secret" if option is None else option.metavar.lower().replace("key", "API key")


def read_accounts(path: Path) -> dict[str, Account]:
    """The accounts of ``path`` (an accounts file, or a job file with ``[accounts.NAME]``
    tables), in file order; :class:`ConfigError` naming the file and the key that is wrong."""
    data = read_toml(path, "accounts file")
    tables = data.get("accounts")
    if "command" not in data:  # a job file's other keys are the job's; here none are allowed
        for key in data:
            if key != "accounts":
                raise ConfigError(
                    f"{path}: unknown key {key!r}; an accounts file holds [accounts.NAME] tables"
                )
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{path}: no accounts; add a table such as [accounts.east]")
    accounts = {name: parse_account(path, name, table) for name, table in tables.items()}
    by_case: dict[str, str] = {}
    for name in accounts:
        other = by_case.setdefault(name.lower(), name)
        if other != name:
            raise ConfigError(f"{path}: accounts {other!r} and {name!r} differ only in case")
    _refuse_twins(path, accounts.values())
    return accounts


def _refuse_twins(path: Path, accounts: Iterable[Account]) -> None:
    """Two tables for one provider account (the same account id, or the same secret) would
    each use the account's whole rate limit: twice what it allows."""
    seen: dict[tuple[str, str], str] = {}
    for account in accounts:
        keys = [("secret variable", account.secret_env)]
        if account.account_id is not None:
            base = _origin(account.base_url or entry(account.provider).default_base_url)
            keys.append(("account id", f"{account.provider}:{account.account_id}@{base}"))
        for kind, value in keys:
            other = seen.setdefault((kind, value), account.name)
            if other != account.name:
                raise ConfigError(
                    f"{path}: accounts {other!r} and {account.name!r} have the same {kind}: "
                    "one provider account, whose limit two lanes would each use in full; "
                    "keep one table per account"
                )


def _origin(url: str) -> str:
    """A base URL as the server sees it: ``https://API.plivo.com:443/`` is
    ``https://api.plivo.com``."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a port: the URL as given, which no other spelling matches
        return url
    default = {"http": 80, "https": 443}.get(parts.scheme)
    where = parts.hostname if port in (None, default) else f"{parts.hostname}:{port}"
    return f"{parts.scheme}://{where}{parts.path.rstrip('/')}"


def parse_account(path: Path, name: str, table: Any) -> Account:
    """One ``[accounts.NAME]`` table, checked."""
    where = f"{path}: [accounts.{name}]"
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{path}: account name {name!r}: use letters, digits, '_', '-' or '.' "
            "(at most 64, starting with a letter or digit)"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of keys")
    provider = table.get("provider")
    if not isinstance(provider, str) or provider not in REGISTRY:
        raise ConfigError(f"{where}: key 'provider' must be one of {', '.join(REGISTRY)}")
    id_key, secret_key = credential_keys(provider)
    _refuse_secrets(where, table, secret_key)
    known = (*_KEYS, *((id_key,) if id_key else ()), secret_key)
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
    env = table.get(secret_key)
    if not isinstance(env, str) or not _ENV_NAME.fullmatch(env) or _looks_like_secret(env):
        raise ConfigError(
            f"{where}: key {secret_key!r} must name the environment variable that holds the "
            f"{_secret_word(provider)} (such as {name.upper().replace('-', '_')}_TOKEN)"
        )
    base_url = _optional(where, table, "base-url", str)
    if base_url is not None:
        try:
            check_base_url(base_url)
        except ConfigError as exc:
            raise ConfigError(f"{where}: key 'base-url': {exc}") from None
    return Account(
        name=name,
        provider=provider,
        secret_env=env,
        account_id=_account_id(where, provider, id_key, table.get(id_key) if id_key else None),
        base_url=base_url,
        rate=_rate(where, table.get("rate")),
        max_rate=_positive(where, "max-rate", table.get("max-rate")),
        concurrency=_count(where, "concurrency", table.get("concurrency"), MAX_CONCURRENCY),
        batch_size=_count(where, "batch-size", table.get("batch-size"), MAX_BATCH_SIZE),
    )


def _refuse_secrets(where: str, table: Mapping[str, Any], secret_key: str) -> None:
    for key in table:
        if key == secret_key or key.endswith("-env"):
            continue
        if SECRET_WORDS.search(key):
            raise ConfigError(
                f"{where}: key {key!r} would hold a secret: accounts files hold no secrets; "
                f"put it in an environment variable and name that variable in {secret_key!r}"
            )


def _looks_like_secret(value: str) -> bool:
    """A value given where a variable's name belongs that is surely the secret itself."""
    lowered = value.lower()
    if lowered.startswith(("am_live_", "am_test_")):
        return True
    mixed = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return len(value) >= 30 and mixed and any(c.isdigit() for c in value)


def _account_id(where: str, provider: str, key: str | None, value: Any) -> str | None:
    """The account id a provider needs (Plivo's auth id), checked as its adapter checks it."""
    if key is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: key {key!r} is missing ({entry(provider).title} needs it)")
    try:
        entry(provider).headers(Credentials(account=value, token=Secret("-")))
    except ConfigError:
        raise ConfigError(
            f"{where}: key {key!r} is not a valid {entry(provider).title} account id"
        ) from None
    return value


def _optional(where: str, table: Mapping[str, Any], key: str, kind: type) -> Any:
    value = table.get(key)
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"{where}: key {key!r} must be a {kind.__name__}")
    return value


#: the numbers an account's keys take: what the command line's options take (``--rate``,
#: ``--max-rate``: at least 0.01 and finite; ``--concurrency`` 1 to 256; ``--batch-size``
#: 1 to 1000). A rate of ``inf`` divided by zero, one of ``nan`` paced nothing: a hung run.
MIN_RATE = 0.01
MAX_CONCURRENCY = 256
MAX_BATCH_SIZE = 1000


def _rate(where: str, value: Any) -> float | Literal["auto"] | None:
    if value == "auto":
        return "auto"
    return _positive(where, "rate", value, ' (or "auto")')


def _positive(where: str, key: str, value: Any, other: str = "") -> float | None:
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < MIN_RATE:
        shown = f", not {value!r}" if number else ""
        raise ConfigError(
            f"{where}: key {key!r} must be a finite number of at least {MIN_RATE:g}{other}{shown}"
        )
    return float(value)


def _count(where: str, key: str, value: Any, most: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        shown = f", not {value!r}" if isinstance(value, int | float) else ""
        raise ConfigError(f"{where}: key {key!r} must be a whole number from 1 to {most}{shown}")
    return value


def accounts_for(path: Path | None, account_name: str | None) -> dict[str, Account] | None:
    """The accounts of ``--accounts`` (None without it), with ``--account NAME`` checked
    against them: :class:`ConfigError` for a name not in the file, or ``--account`` given
    without the file."""
    if path is None:
        if account_name is not None:
            raise ConfigError("--account names an account of --accounts FILE; give the file too")
        return None
    accounts = read_accounts(path)
    if account_name is not None and account_name not in accounts:
        raise ConfigError(
            f"--account {account_name!r} is not in {path} (known: {', '.join(accounts)})"
        )
    return accounts


def check_environment(accounts: Iterable[Account], environ: Mapping[str, str]) -> None:
    """Every account's secret is set: else :class:`ConfigError` naming the first account
    and variable that is not (before anything is sent)."""
    for account in accounts:
        account.credentials(environ)


# --- shards --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shard:
    """``--shard K/N``: this process runs shard ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, account: str | None) -> bool:
        """Whether this shard runs the rows of ``account`` (rows naming no account: shard 0)."""
        return shard_of(account, self.count) == self.index

    def holds_row(self, account: str | None, accounts: Collection[str]) -> bool:
        """Whether this shard holds a row whose ``account`` column (after validation, over the
        whole input) says ``account``: the shard of that account when it is one of
        ``accounts`` (every account of the file, as the file spells it); a row naming none, or
        one not in the file, is shard 0's alone."""
        return self.holds(account if account in accounts else None)


def parse_shard(text: str) -> Shard:
    """``"K/N"`` with 0 <= K < N; :class:`ConfigError` otherwise."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*", text)
    if match is None:
        raise ConfigError(f"--shard {text!r}: write K/N, such as 0/4 (shard K of N, from 0)")
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count:
        raise ConfigError(f"--shard {text!r}: K must be 0 to N-1 and N at least 1")
    return Shard(index, count)


def shard_of(account: str | None, count: int) -> int:
    """The shard of an account name: a stable hash (SHA-256, the same on every machine and
    Python version), so every pod of a sharded job agrees without talking to the others."""
    if account is None or not account or count == 1:
        return 0
    digest = hashlib.sha256(account.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count
