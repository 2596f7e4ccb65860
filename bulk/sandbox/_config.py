"""Configuration of the sandbox: :class:`SandboxConfig` and :class:`FaultConfig` (pure data)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from bulk.sandbox._core import RATE_SHAPES

#: Endpoint names used by counters and by :attr:`FaultConfig.endpoints`.
PLIVO_ENDPOINTS = ("plivo.link", "plivo.list", "plivo.get", "plivo.unlink", "plivo.campaign")
AGENTMESSAGE_ENDPOINTS = (
    "agentmessage.list_numbers",
    "agentmessage.get_number",
    "agentmessage.attach",
    "agentmessage.detach",
    "agentmessage.list_campaigns",
)
ENDPOINTS = PLIVO_ENDPOINTS + AGENTMESSAGE_ENDPOINTS

_RATE_FIELDS = (
    "error_5xx_rate",
    "reset_rate",
    "hang_rate",
    "truncated_rate",
    "non_json_rate",
)


@dataclass(frozen=True)
class FaultConfig:
    """Faults injected on provider paths (never on the admin API).

    Every request to a provider path (limited to :attr:`endpoints` when set) first waits a
    latency drawn from ``latency_min..latency_max``, then may be answered by a 429 burst, then
    draws at most one of the exclusive faults below (their rates must sum to at most 1).
    """

    latency_min: float = 0.0
    latency_max: float = 0.0
    error_5xx_rate: float = 0.0
    reset_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    truncated_rate: float = 0.0
    non_json_rate: float = 0.0
    burst_429_rate: float = 0.0
    burst_429_length: int = 5
    after_rate: float = 0.0
    endpoints: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.endpoints is not None and not isinstance(self.endpoints, frozenset):
            object.__setattr__(self, "endpoints", frozenset(self.endpoints))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ValueError` when a value is out of range. NaN and infinity are out of
        every range: a NaN latency or hang stalled every request after it."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        for name in (*_RATE_FIELDS, "burst_429_rate", "after_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if sum(getattr(self, name) for name in _RATE_FIELDS) > 1.0 + 1e-9:
            raise ValueError("the fault rates (5xx, reset, hang, truncated, non-json) sum above 1")
        if self.latency_min < 0 or self.latency_max < self.latency_min:
            raise ValueError("latency must satisfy 0 <= latency_min <= latency_max")
        if self.hang_seconds < 0:
            raise ValueError("hang_seconds must be >= 0")
        if self.burst_429_length < 1:
            raise ValueError("burst_429_length must be >= 1")
        if self.endpoints is not None:
            unknown = set(self.endpoints) - set(ENDPOINTS)
            if unknown:
                raise ValueError(f"unknown endpoint names: {sorted(unknown)}; known: {ENDPOINTS}")

    @property
    def active(self) -> bool:
        """True when any fault or latency can strike."""
        return (
            self.latency_max > 0
            or self.burst_429_rate > 0
            or any(getattr(self, name) > 0 for name in _RATE_FIELDS)
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Build from JSON-like data; unknown keys raise :class:`ValueError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault options: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "endpoints":
                if value is None:
                    kwargs[key] = None
                elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                    kwargs[key] = frozenset(value)
                else:
                    raise ValueError("endpoints must be a list of endpoint names or null")
            elif key == "burst_429_length":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("burst_429_length must be an integer")
                kwargs[key] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{key} must be a number")
                kwargs[key] = float(value)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the inverse of :meth:`from_dict`)."""
        out = dataclasses.asdict(self)
        out["endpoints"] = None if self.endpoints is None else sorted(self.endpoints)
        return out


UnlinkWhilePending = Literal["accept", "refuse"]
RelinkFailed = Literal["accept", "refuse"]
ListOrder = Literal["link", "changed"]
ReattachFailed = Literal["restart", "no_change"]

#: Each switch: its allowed readings, today's (the default) first, the other one second.
SWITCH_READINGS: dict[str, tuple[str, str]] = {
    "unlink_while_pending": ("accept", "refuse"),
    "relink_failed": ("accept", "refuse"),
    "list_order": ("link", "changed"),
    "reattach_failed": ("no_change", "restart"),
}


@dataclass(frozen=True)
class Switches:
    """How the sandbox reads behaviours the providers do not document (see WIRE.md, *Switches*).

    The defaults are the published behaviour where providers.md states one (re-attaching the
    same campaign changes nothing) and the sandbox's historical readings elsewhere;
    :meth:`strict` turns every switch to
    its other reading.
    """

    unlink_while_pending: UnlinkWhilePending = "accept"
    relink_failed: RelinkFailed = "accept"
    list_order: ListOrder = "link"
    reattach_failed: ReattachFailed = "no_change"

    def __post_init__(self) -> None:
        for name, readings in SWITCH_READINGS.items():
            value = getattr(self, name)
            if value not in readings:
                raise ValueError(f"{name} must be one of {list(readings)}, got {value!r}")

    @classmethod
    def strict(cls) -> Switches:
        """Every switch on its non-default reading."""
        return cls.from_dict({name: other for name, (_, other) in SWITCH_READINGS.items()})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Switches:
        """Build from JSON-like data; unknown keys or readings raise :class:`ValueError`."""
        unknown = set(data) - set(SWITCH_READINGS)
        if unknown:
            raise ValueError(f"unknown switches: {sorted(unknown)}; known: {list(SWITCH_READINGS)}")
        return cls(**cast(dict[str, Any], dict(data)))

    @classmethod
    def build(cls, given: Mapping[str, Any], *, strict: bool = False) -> Switches:
        """Each switch in ``given`` (``None`` or absent: not given), else ``strict``'s reading
        (the non-default one) when ``strict``, else today's."""
        base = cls.strict() if strict else cls()
        chosen = {k: v for k, v in given.items() if v is not None}
        return cls.from_dict({**base.to_dict(), **chosen})

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form (the inverse of :meth:`from_dict`)."""
        return {name: getattr(self, name) for name in SWITCH_READINGS}


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes a sandbox run. The defaults suit a quick demo."""

    seed: int = 0
    settle_min: float = 0.5
    settle_max: float = 2.0
    fail_rate: float = 0.0
    slow_tail_rate: float = 0.0
    slow_tail_min: float = 10.0
    slow_tail_max: float = 30.0
    plivo_rate_limit: int = 300
    plivo_rate_window: float = 5.0
    #: most numbers one Plivo link request may carry (more: 400, WIRE.md)
    plivo_max_batch: int = 100
    agentmessage_rate_limit: int = 100
    agentmessage_rate_window: float = 10.0
    agentmessage_retry_after: int = 1
    #: the shape of every account's limit unless its seed names one: ``sliding`` (window),
    #: ``fixed`` (window) or ``bucket`` (token bucket), see WIRE.md *Limit shapes*
    rate_shape: str = "sliding"
    time_factor: float = 1.0
    state_file: Path | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    #: Switches (WIRE.md, *Switches*). ``None`` means today's reading, or the other one when
    #: ``strict`` is true; a value given here wins over ``strict``.
    unlink_while_pending: UnlinkWhilePending | None = None
    relink_failed: RelinkFailed | None = None
    list_order: ListOrder | None = None
    reattach_failed: ReattachFailed | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        self.switches  # noqa: B018 - validates the readings now, not at the first request
        if self.settle_min < 0 or self.settle_max < self.settle_min:
            raise ValueError("settle must satisfy 0 <= settle_min <= settle_max")
        if self.slow_tail_min < 0 or self.slow_tail_max < self.slow_tail_min:
            raise ValueError("slow tail must satisfy 0 <= slow_tail_min <= slow_tail_max")
        for name in ("fail_rate", "slow_tail_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.plivo_rate_limit < 0 or self.agentmessage_rate_limit < 0:
            raise ValueError("rate limits must be >= 0")
        if self.plivo_rate_window < 0 or self.agentmessage_rate_window < 0:
            raise ValueError("rate windows must be >= 0")
        if self.plivo_max_batch < 1:
            raise ValueError("plivo_max_batch must be >= 1")
        retry_after = self.agentmessage_retry_after
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            # it goes on the wire as Retry-After, published as whole seconds
            raise ValueError(f"agentmessage_retry_after must be a whole number of seconds >= 0, "
                             f"got {retry_after!r}")
        if self.rate_shape not in RATE_SHAPES:
            raise ValueError(f"rate_shape must be one of {list(RATE_SHAPES)}, "
                             f"got {self.rate_shape!r}")
        if self.time_factor < 0:
            raise ValueError("time_factor must be >= 0")
        if self.state_file is not None and not isinstance(self.state_file, Path):
            object.__setattr__(self, "state_file", Path(self.state_file))

    @property
    def switches(self) -> Switches:
        """The readings in force: each switch given, else ``strict``'s or today's reading."""
        given = {name: getattr(self, name) for name in SWITCH_READINGS}
        return Switches.build(given, strict=self.strict)
