"""Providers behind one protocol. One module per provider; this registry picks one by name."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bulk._errors import ConfigError
from bulk.providers._base import (
    CampaignCheck,
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
class ProviderEntry:
    name: str
    default_base_url: str
    #: environment variables read for (account, token)
    env: tuple[str | None, str]
    headers: Callable[[Credentials], Mapping[str, str]]
    create: Callable[[Send, Credentials, int | None, str | None], Provider]
    default_batch: int


def _plivo_headers(creds: Credentials) -> Mapping[str, str]:
    from bulk.providers.plivo import is_valid_auth_id

    if not creds.account or not creds.token:
        raise ConfigError(
            "Plivo needs credentials: set PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN "
            "(or --auth-id/--auth-token), or use --sandbox"
        )
    if not is_valid_auth_id(creds.account):
        raise ConfigError("PLIVO_AUTH_ID is not a Plivo auth id (20 characters starting MA or SA)")
    raw = f"{creds.account}:{creds.token.reveal()}".encode()
    return {
        "Authorization": "Basic " + base64.b64encode(raw).decode("ascii"),
        "Accept": "application/json",
    }


def _plivo_create(
    send: Send, creds: Credentials, batch: int | None, callback: str | None
) -> Provider:
    from bulk.providers.plivo import DEFAULT_BATCH_SIZE, PlivoProvider

    return PlivoProvider(
        send, str(creds.account), batch_size=batch or DEFAULT_BATCH_SIZE, callback_url=callback
    )


def _agentmessage_headers(creds: Credentials) -> Mapping[str, str]:
    if not creds.token:
        raise ConfigError(
            "AgentMessage needs an API key: set AGENTMESSAGE_API_KEY (or --api-key), "
            "or use --sandbox"
        )
    return {"Authorization": "Bearer " + creds.token.reveal(), "Accept": "application/json"}


def _agentmessage_create(
    send: Send, creds: Credentials, batch: int | None, callback: str | None
) -> Provider:
    from bulk.providers.agentmessage import AgentMessageProvider

    return AgentMessageProvider(send)


REGISTRY: dict[str, ProviderEntry] = {
    "plivo": ProviderEntry(
        "plivo",
        "https://api.plivo.com",
        ("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN"),
        _plivo_headers,
        _plivo_create,
        20,
    ),
    "agentmessage": ProviderEntry(
        "agentmessage",
        "https://api.agentmsg.io",
        (None, "AGENTMESSAGE_API_KEY"),
        _agentmessage_headers,
        _agentmessage_create,
        1,
    ),
}


def entry(name: str) -> ProviderEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown provider {name!r}; choose one of {', '.join(REGISTRY)}"
        ) from None


def credentials_from_env(name: str, account: str | None, token: str | None) -> Credentials:
    """Options win over the environment."""
    account_var, token_var = entry(name).env
    account = account or (os.environ.get(account_var) if account_var else None)
    token = token or os.environ.get(token_var)
    return Credentials(account=account, token=Secret(token) if token else None)


__all__ = [
    "REGISTRY",
    "CampaignCheck",
    "Credentials",
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
    "credentials_from_env",
    "entry",
]
