"""Providers behind one protocol. One module per provider; this registry picks one by name."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bulk._errors import ConfigError
from bulk.providers._base import (
    CampaignCheck,
    Glance,
    Kind,
    LinkOutcome,
    NumberState,
    Provider,
    ProviderUnavailable,
    Request,
    Response,
    Send,
    Settlement,
    UnlinkOutcome,
    Verdict,
    WindowClosed,
    check_then_list,
)


class Secret:
    """A credential that never shows itself in a repr, a log line or an exception."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a provider needs to sign requests. ``account`` is not secret (Plivo's auth id)."""

    account: str | None = None
    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class CredentialOption:
    """One command-line option a provider takes its credentials from."""

    flag: str  #: the long option, e.g. ``--auth-token``
    env: str  #: the environment variable it falls back to
    help: str
    metavar: str
    #: which part of :class:`Credentials` it fills
    field: Literal["account", "token"]
    secret: bool  #: never accepted in a job file; never shown

    @property
    def param(self) -> str:
        """The option's Python parameter name (``--auth-token`` -> ``auth_token``)."""
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """Everything bulk needs to know about a provider, outside its adapter."""

    name: str  #: ``--provider NAME``
    title: str  #: for help text: ``Plivo``
    default_base_url: str
    options: tuple[CredentialOption, ...]
    headers: Callable[[Credentials], Mapping[str, str]]
    #: ``create(send, credentials, batch_size or None, callback_url or None)``
    create: Callable[[Send, Credentials, int | None, str | None], Provider]
    default_batch: int  #: numbers per link request
    default_rate: float  #: requests per second, with headroom (where ``--rate auto`` starts)
    #: ``--rate``'s default: "fixed" (``default_rate``, for a documented limit) or "auto"
    #: (start at ``default_rate`` and find the limit: for a limit that is not published)
    default_rate_mode: Literal["fixed", "auto"] = "fixed"
    #: the running sandbox (:class:`bulk.sandbox.Sandbox`) -> credentials it accepts
    sandbox_credentials: Callable[[Any], Credentials] | None = None
    #: an account of an accounts file under ``--sandbox``: (its name, its account id) -> the
    #: key the sandbox seeds it under (``seed_for_accounts(<provider name>={key: None})``)
    sandbox_account_key: Callable[[str, str | None], str] | None = None
    #: (the running sandbox, that key) -> the credentials the sandbox accepts for it
    sandbox_account_credentials: Callable[[Any, str], Credentials] | None = None

    @property
    def env(self) -> tuple[str | None, str | None]:
        """The environment variables read for (account, token)."""
        by_field = {o.field: o.env for o in self.options}
        return by_field.get("account"), by_field.get("token")


REGISTRY: dict[str, ProviderEntry] = {}
#: ``--provider``'s default
DEFAULT_PROVIDER = "plivo"


def register(provider: ProviderEntry) -> None:
    """Make a provider available to the CLI (``--provider NAME``) and :func:`bulk.run_job`.

    Registering a name again replaces its entry."""
    REGISTRY[provider.name] = provider


def entry(name: str) -> ProviderEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown provider {name!r}; choose one of {', '.join(REGISTRY)}"
        ) from None


def credential_options() -> list[CredentialOption]:
    """Every registered provider's credential options, each flag once, in registry order."""
    seen: dict[str, CredentialOption] = {}
    for provider in REGISTRY.values():
        for option in provider.options:
            seen.setdefault(option.flag, option)
    return list(seen.values())


def credentials_from_env(name: str, account: str | None, token: str | None) -> Credentials:
    """Options win over the environment. Surrounding whitespace is dropped (a secret file's
    last newline, as Kubernetes ``--from-file`` keeps it, is never part of a secret); a value
    with a line break, space or control character inside is refused (:class:`ConfigError`
    naming where it came from, never the value)."""
    account_var, token_var = entry(name).env
    # click may have read the variable into the option: name both
    account_from = f"{account_var or 'the account id'} (or its option)"
    token_from = f"{token_var or 'the secret'} (or its option)"
    account = clean_credential(account, account_from) or clean_credential(
        os.environ.get(account_var) if account_var else None, account_from
    )
    token = clean_credential(token, token_from) or clean_credential(
        os.environ.get(token_var) if token_var else None, token_from
    )
    return Credentials(account=account, token=Secret(token) if token else None)


def clean_credential(value: str | None, source: str) -> str | None:
    """A credential as given (an option, an environment variable): ``value`` without
    surrounding whitespace (None when blank); :class:`ConfigError` naming ``source``, never
    the value, when a line break, space or control character is left inside. One rule for
    every credential bulk reads, with or without ``--accounts``."""
    value = (value or "").strip()
    if not value:
        return None
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ConfigError(
            f"{source} holds a line break, space or control character inside its value; "
            "nothing was sent"
        )
    return value


# --- the built-in providers: every fact comes from the provider's own module ---------------


def _plivo() -> ProviderEntry:
    from bulk.providers import plivo

    def headers(creds: Credentials) -> Mapping[str, str]:
        if not creds.account or not creds.token:
            raise ConfigError(
                "Plivo needs credentials: set PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN "
                "(or --auth-id/--auth-token), or use --sandbox"
            )
        if not plivo.is_valid_auth_id(creds.account):
            raise ConfigError(
                "PLIVO_AUTH_ID is not a Plivo auth id (20 characters starting MA or SA)"
            )
        raw = f"{creds.account}:{creds.token.reveal()}".encode()
        return {
            "Authorization": "Basic " + base64.b64encode(raw).decode("ascii"),
            "Accept": "application/json",
        }

    def create(send: Send, creds: Credentials, batch: int | None, callback: str | None) -> Provider:
        return plivo.PlivoProvider(
            send,
            str(creds.account),
            batch_size=batch or plivo.DEFAULT_BATCH_SIZE,
            callback_url=callback,
        )

    def sandbox(sb: Any) -> Credentials:
        return Credentials(sb.plivo_auth_id, Secret(sb.plivo_auth_token))

    def sandbox_account(sb: Any, auth_id: str) -> Credentials:
        return Credentials(auth_id, Secret(sb.plivo_accounts[auth_id]))

    return ProviderEntry(
        name="plivo",
        title="Plivo",
        default_base_url=plivo.DEFAULT_BASE_URL,
        options=(
            CredentialOption(
                "--auth-id",
                "PLIVO_AUTH_ID",
                "Plivo auth id (20 characters, MA... or SA...).",
                "ID",
                "account",
                secret=False,
            ),
            CredentialOption(
                "--auth-token",
                "PLIVO_AUTH_TOKEN",
                "Plivo auth token. Prefer the environment variable.",
                "TOKEN",
                "token",
                secret=True,
            ),
        ),
        headers=headers,
        create=create,
        default_batch=plivo.DEFAULT_BATCH_SIZE,
        default_rate=plivo.PlivoProvider.default_rate,
        sandbox_credentials=sandbox,
        # each account of an accounts file is its own auth id in the sandbox
        sandbox_account_key=lambda name, account_id: str(account_id),
        sandbox_account_credentials=sandbox_account,
    )


def _agentmessage() -> ProviderEntry:
    from bulk.providers import agentmessage

    def headers(creds: Credentials) -> Mapping[str, str]:
        if not creds.token:
            raise ConfigError(
                "AgentMessage needs an API key: set AGENTMESSAGE_API_KEY (or --api-key), "
                "or use --sandbox"
            )
        return {"Authorization": "Bearer " + creds.token.reveal(), "Accept": "application/json"}

    def create(send: Send, creds: Credentials, batch: int | None, callback: str | None) -> Provider:
        return agentmessage.AgentMessageProvider(send)

    def sandbox(sb: Any) -> Credentials:
        return Credentials(None, Secret(sb.agentmessage_api_key))

    def sandbox_account(sb: Any, name: str) -> Credentials:
        return Credentials(None, Secret(sb.agentmessage_keys[f"org_{name}"]))

    return ProviderEntry(
        name="agentmessage",
        title="AgentMessage",
        default_base_url=agentmessage.DEFAULT_BASE_URL,
        options=(
            CredentialOption(
                "--api-key",
                "AGENTMESSAGE_API_KEY",
                "AgentMessage API key (am_live_...). Prefer the environment variable.",
                "KEY",
                "token",
                secret=True,
            ),
        ),
        headers=headers,
        create=create,
        default_batch=agentmessage.AgentMessageProvider.max_batch,
        default_rate=agentmessage.AgentMessageProvider.default_rate,
        default_rate_mode="auto",  # its rate limit is not published
        sandbox_credentials=sandbox,
        # each account of an accounts file is an organisation org_<name> in the sandbox
        sandbox_account_key=lambda name, account_id: name,
        sandbox_account_credentials=sandbox_account,
    )


register(_plivo())
register(_agentmessage())


__all__ = [
    "DEFAULT_PROVIDER",
    "REGISTRY",
    "CampaignCheck",
    "CredentialOption",
    "Credentials",
    "Glance",
    "Kind",
    "LinkOutcome",
    "NumberState",
    "Provider",
    "ProviderEntry",
    "ProviderUnavailable",
    "Request",
    "Response",
    "Secret",
    "Send",
    "Settlement",
    "UnlinkOutcome",
    "Verdict",
    "WindowClosed",
    "check_then_list",
    "clean_credential",
    "credential_options",
    "credentials_from_env",
    "entry",
    "register",
]
