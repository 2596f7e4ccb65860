"""The default sandbox state and the JSON state-file format that can replace parts of it."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulk.sandbox._core import RATE_SHAPES
from bulk.sandbox._numbers import number_range, to_e164

DEFAULT_PLIVO_AUTH_ID = "MASANDBOXAUTHID00001"
DEFAULT_PLIVO_AUTH_TOKEN = "sandbox-auth-token"
DEFAULT_AGENTMESSAGE_KEY = "am_live_sandboxkey0000000000000000"
READONLY_AGENTMESSAGE_KEY = "am_live_sandboxreadonly000000000000"
OTHER_ORG_AGENTMESSAGE_KEY = "am_live_sandboxotherorg000000000000"
DEFAULT_ORG = "org_sandbox"
OTHER_ORG = "org_other"
ALL_SCOPES = ("numbers:read", "numbers:write", "campaigns:read")

CAMPAIGN_ID_RE = re.compile(r"^C[A-Z0-9]{6}$")
#: A Plivo auth id: ``MA`` (an account) or ``SA`` (a subaccount), then 18 letters or digits.
PLIVO_AUTH_ID_RE = re.compile(r"^(MA|SA)[A-Za-z0-9]{18}$")
#: The counters' account name for a request that names no account of the sandbox.
UNKNOWN_ACCOUNT = "unknown"
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PLIVO_STATUSES = ("PROCESSING", "COMPLETED", "FAILED")
AM_CAMPAIGN_STATUSES = ("PENDING", "ACTIVE", "REJECTED", "EXPIRED")
NUMBER_TYPES = ("local", "toll_free", "short_code")

AM_CAMPAIGN_MARKETING = "4f1c2d3e-0000-4000-8000-000000000001"
AM_CAMPAIGN_ALERTS = "4f1c2d3e-0000-4000-8000-000000000002"
AM_CAMPAIGN_LEGACY = "4f1c2d3e-0000-4000-8000-000000000003"
AM_CAMPAIGN_SEASONAL = "4f1c2d3e-0000-4000-8000-000000000004"

#: Area code + exchange prefixes whose numbers ``...0100`` to ``...0199`` the AgentMessage org
#: owns by default.
SAMPLE_PREFIXES = ("+1415555", "+1212555", "+1312555", "+1650555", "+1206555", "+1303555",
                   "+1617555", "+1512555", "+1213555", "+1305555", "+1404555", "+1702555")


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID_RE.match(value) is not None


@dataclass
class PlivoCampaignSeed:
    campaign_id: str
    alias: str
    usecase: str
    registration_status: str = "ACTIVE"
    brand_id: str = "BSANDBX"


@dataclass
class PlivoSeed:
    auth_id: str = DEFAULT_PLIVO_AUTH_ID
    auth_token: str = DEFAULT_PLIVO_AUTH_TOKEN
    campaigns: list[PlivoCampaignSeed] = field(default_factory=list)
    unowned: set[str] = field(default_factory=set)
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (e164, campaign, status)
    #: requests per ``SandboxConfig.plivo_rate_window``; None: ``SandboxConfig.plivo_rate_limit``
    rate_limit: int | None = None
    #: the shape of its limit (``sliding``, ``fixed``, ``bucket``); None: the configured one
    rate_shape: str | None = None


@dataclass
class AMKeySeed:
    key: str
    org_id: str
    scopes: tuple[str, ...]


@dataclass
class AMCampaignSeed:
    id: str
    name: str
    status: str
    org_id: str = DEFAULT_ORG
    brand_verified: bool = True
    use_case: str = "MIXED"


@dataclass
class AMNumberSeed:
    number: str
    org_id: str = DEFAULT_ORG
    assigned: bool = True
    number_type: str = "local"


@dataclass
class AMSeed:
    keys: list[AMKeySeed] = field(default_factory=list)
    campaigns: list[AMCampaignSeed] = field(default_factory=list)
    numbers: list[AMNumberSeed] = field(default_factory=list)
    own_all: bool = False
    # (e164, campaign uuid, carrier_line_option_status)
    attachments: list[tuple[str, str, str]] = field(default_factory=list)
    #: org id -> requests per ``SandboxConfig.agentmessage_rate_window``; an org not named here
    #: has ``SandboxConfig.agentmessage_rate_limit``
    rate_limits: dict[str, int] = field(default_factory=dict)
    #: org id -> the shape of its limit; an org not named here has ``SandboxConfig.rate_shape``
    rate_shapes: dict[str, str] = field(default_factory=dict)


@dataclass
class Seed:
    #: every Plivo account, the default one first
    plivo_accounts: list[PlivoSeed]
    agentmessage: AMSeed
    always_fail: set[str]
    never_settle: set[str]

    @property
    def plivo(self) -> PlivoSeed:
        """The default (first) Plivo account."""
        return self.plivo_accounts[0]


def _sample_numbers() -> list[str]:
    return [f"{prefix}{i:04d}" for prefix in SAMPLE_PREFIXES for i in range(100, 200)]


def _pre_links() -> list[tuple[str, str]]:
    """(e164, alias) linked and settled at start."""
    out = [(f"+1415555{i:04d}", "marketing") for i in (100, 101, 102)]
    out += [(f"+1212555{i:04d}", "legacy") for i in range(110, 130)]
    out += [(f"+1312555{i:04d}", "alerts") for i in range(150, 170)]
    return out


def default_seed() -> Seed:
    """The state every sample and test of the project relies on (see WIRE.md)."""
    plivo_campaigns = [
        PlivoCampaignSeed("CUOGHIN", "marketing", "MARKETING"),
        PlivoCampaignSeed("CRIGC80", "alerts", "ACCOUNT_NOTIFICATION"),
        PlivoCampaignSeed("CMIGOLD", "legacy", "MIXED"),
    ]
    by_alias = {c.alias: c.campaign_id for c in plivo_campaigns}
    plivo = PlivoSeed(
        campaigns=plivo_campaigns,
        unowned={"+14155550144"},
        links=[(n, by_alias[a], "COMPLETED") for n, a in _pre_links()],
    )
    am_campaigns = [
        AMCampaignSeed(AM_CAMPAIGN_MARKETING, "marketing", "ACTIVE", use_case="MARKETING"),
        AMCampaignSeed(AM_CAMPAIGN_ALERTS, "alerts", "ACTIVE", use_case="ACCOUNT_NOTIFICATION"),
        AMCampaignSeed(AM_CAMPAIGN_LEGACY, "legacy", "ACTIVE", use_case="MIXED"),
        AMCampaignSeed(AM_CAMPAIGN_SEASONAL, "seasonal", "PENDING", use_case="MARKETING"),
    ]
    am_by_alias = {c.name: c.id for c in am_campaigns}
    numbers = [AMNumberSeed(n) for n in _sample_numbers() if n != "+14155550144"]
    numbers.append(AMNumberSeed("+14155550144", org_id=OTHER_ORG))
    am = AMSeed(
        keys=[
            AMKeySeed(DEFAULT_AGENTMESSAGE_KEY, DEFAULT_ORG, ALL_SCOPES),
            AMKeySeed(READONLY_AGENTMESSAGE_KEY, DEFAULT_ORG, ("numbers:read", "campaigns:read")),
            AMKeySeed(OTHER_ORG_AGENTMESSAGE_KEY, OTHER_ORG, ALL_SCOPES),
        ],
        campaigns=am_campaigns,
        numbers=numbers,
        attachments=[(n, am_by_alias[a], "active") for n, a in _pre_links()],
    )
    return Seed(
        plivo_accounts=[plivo],
        agentmessage=am,
        always_fail={"+14155550142"},
        never_settle={"+14155550143"},
    )


class StateFileError(ValueError):
    """The state file cannot be used; the message names the file and the problem."""


def _e164(value: object, where: str) -> str:
    e164 = to_e164(value)
    if e164 is None:
        raise StateFileError(f"{where}: not a valid-looking US number: {value!r}")
    return e164


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise StateFileError(f"{where}.{key} must be a list")
    return value


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateFileError(f"{where} must be an object")
    return value


def apply_state_data(seed: Seed, data: object) -> Seed:
    """Replace the parts of ``seed`` that ``data`` (a parsed state file) names."""
    root = _obj(data, "state file")
    unknown = set(root) - {"plivo", "agentmessage", "always_fail", "never_settle"}
    if unknown:
        raise StateFileError(f"unknown top-level keys: {sorted(unknown)}")
    if "always_fail" in root:
        seed.always_fail = {_e164(n, "always_fail") for n in _list(root, "always_fail", "")}
    if "never_settle" in root:
        seed.never_settle = {_e164(n, "never_settle") for n in _list(root, "never_settle", "")}
    if "plivo" in root:
        _apply_plivo_section(seed, _obj(root["plivo"], "plivo"))
    if "agentmessage" in root:
        _apply_am(seed.agentmessage, _obj(root["agentmessage"], "agentmessage"))
    check_seed(seed)
    return seed


def _apply_plivo_section(seed: Seed, d: dict[str, Any]) -> None:
    """``plivo``: one account's keys (the default account), or ``accounts``: a list of them,
    each applied to a copy of the default account."""
    if "accounts" not in d:
        _apply_plivo(seed.plivo, d, "plivo")
        return
    if set(d) != {"accounts"}:
        raise StateFileError(f"plivo: give either accounts or the one account's keys, not both "
                             f"(found {sorted(set(d) - {'accounts'})} beside accounts)")
    entries = _list(d, "accounts", "plivo")
    if not entries:
        raise StateFileError("plivo.accounts must list at least one account")
    template = seed.plivo
    accounts = []
    for i, raw in enumerate(entries):
        where = f"plivo.accounts[{i}]"
        account = copy.deepcopy(template)
        _apply_plivo(account, _obj(raw, where), where)
        accounts.append(account)
    seed.plivo_accounts = accounts


def _rate_limit(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateFileError(f"{where}.rate_limit must be an integer >= 0 (0: no limit)")
    return value


def _rate_shape(value: object, where: str) -> str:
    if value not in RATE_SHAPES:
        raise StateFileError(f"{where}.rate_shape must be one of {list(RATE_SHAPES)}")
    return str(value)


def _apply_plivo(p: PlivoSeed, d: dict[str, Any], where: str) -> None:
    unknown = set(d) - {"auth_id", "auth_token", "rate_limit", "rate_shape", "campaigns",
                        "unowned", "links"}
    if unknown:
        raise StateFileError(f"{where}: unknown keys {sorted(unknown)}")
    if "auth_id" in d:
        auth_id = d["auth_id"]
        if not isinstance(auth_id, str) or not PLIVO_AUTH_ID_RE.match(auth_id):
            raise StateFileError(f"{where}.auth_id must be 20 characters: MA or SA, then 18 "
                                 "letters or digits")
        p.auth_id = auth_id
    if "auth_token" in d:
        if not isinstance(d["auth_token"], str) or not d["auth_token"]:
            raise StateFileError(f"{where}.auth_token must be a non-empty string")
        p.auth_token = d["auth_token"]
    if "rate_limit" in d:
        p.rate_limit = _rate_limit(d["rate_limit"], where)
    if "rate_shape" in d:
        p.rate_shape = _rate_shape(d["rate_shape"], where)
    if "campaigns" in d:
        p.links = []  # the default links belong to the default campaigns
        p.campaigns = [_plivo_campaign(raw, f"{where}.campaigns[{i}]")
                       for i, raw in enumerate(_list(d, "campaigns", where))]
    if "unowned" in d:
        p.unowned = {_e164(n, f"{where}.unowned") for n in _list(d, "unowned", where)}
    if "links" in d:
        p.links = []
        for i, raw in enumerate(_list(d, "links", where)):
            link = _obj(raw, f"{where}.links[{i}]")
            status = link.get("status", "COMPLETED")
            if status not in PLIVO_STATUSES:
                raise StateFileError(f"{where}.links[{i}].status must be one of {PLIVO_STATUSES}")
            p.links.append(
                (_e164(link.get("number"), f"{where}.links[{i}]"), str(link.get("campaign_id")),
                 status)
            )


def _plivo_campaign(raw: object, where: str) -> PlivoCampaignSeed:
    c = _obj(raw, where)
    cid = c.get("campaign_id")
    if not isinstance(cid, str) or not CAMPAIGN_ID_RE.match(cid):
        raise StateFileError(f"{where}.campaign_id must match C[A-Z0-9]{{6}}")
    return PlivoCampaignSeed(
        campaign_id=cid,
        alias=str(c.get("alias", cid.lower())),
        usecase=str(c.get("usecase", "MIXED")),
        registration_status=str(c.get("registration_status", "ACTIVE")),
        brand_id=str(c.get("brand_id", "BSANDBX")),
    )


def _am_numbers(d: dict[str, Any]) -> list[AMNumberSeed]:
    """``numbers`` and ``number_ranges`` of the agentmessage section, in that order."""
    result: list[AMNumberSeed] = []
    for i, raw in enumerate(d.get("numbers", [])):
        where = f"agentmessage.numbers[{i}]"
        if isinstance(raw, str):
            result.append(AMNumberSeed(_e164(raw, where)))
            continue
        n = _obj(raw, where)
        number_type = n.get("number_type", "local")
        if number_type not in NUMBER_TYPES:
            raise StateFileError(f"{where}.number_type must be one of {NUMBER_TYPES}")
        result.append(
            AMNumberSeed(
                _e164(n.get("number"), where),
                org_id=str(n.get("org", DEFAULT_ORG)),
                assigned=bool(n.get("assigned", True)),
                number_type=number_type,
            )
        )
    for i, raw in enumerate(d.get("number_ranges", [])):
        r = _obj(raw, f"agentmessage.number_ranges[{i}]")
        count = r.get("count")
        if not isinstance(count, int) or count < 0:
            raise StateFileError(f"agentmessage.number_ranges[{i}].count must be an int")
        try:
            numbers = number_range(str(r.get("start")), count)
        except ValueError as exc:
            raise StateFileError(f"agentmessage.number_ranges[{i}]: {exc}") from None
        org = str(r.get("org", DEFAULT_ORG))
        result.extend(AMNumberSeed(n, org_id=org) for n in numbers)
    return result


def _apply_am(a: AMSeed, d: dict[str, Any]) -> None:
    known = {"keys", "campaigns", "numbers", "number_ranges", "own_all", "attachments", "orgs"}
    unknown = set(d) - known
    if unknown:
        raise StateFileError(f"agentmessage: unknown keys {sorted(unknown)}")
    if "keys" in d:
        a.keys = [_am_key(raw, f"agentmessage.keys[{i}]")
                  for i, raw in enumerate(_list(d, "keys", "agentmessage"))]
    if "campaigns" in d:
        a.attachments = []  # the default attachments belong to the default campaigns
        a.campaigns = [_am_campaign(raw, f"agentmessage.campaigns[{i}]")
                       for i, raw in enumerate(_list(d, "campaigns", "agentmessage"))]
    if "numbers" in d or "number_ranges" in d:
        a.attachments = []  # the default attachments point at the default numbers
        a.numbers = _am_numbers(d)
    if "own_all" in d:
        if not isinstance(d["own_all"], bool):
            raise StateFileError("agentmessage.own_all must be true or false")
        a.own_all = d["own_all"]
    if "attachments" in d:
        a.attachments = []
        for i, raw in enumerate(_list(d, "attachments", "agentmessage")):
            att = _obj(raw, f"agentmessage.attachments[{i}]")
            status = att.get("carrier_line_option_status", "active")
            a.attachments.append(
                (_e164(att.get("number"), f"agentmessage.attachments[{i}]"),
                 str(att.get("campaign_id")), str(status))
            )
    if "orgs" in d:
        a.rate_limits, a.rate_shapes = _am_orgs(_list(d, "orgs", "agentmessage"))


def _am_orgs(entries: list[Any]) -> tuple[dict[str, int], dict[str, str]]:
    """``orgs``: per-organization settings: its ``rate_limit`` and ``rate_shape``."""
    limits: dict[str, int] = {}
    shapes: dict[str, str] = {}
    named: set[str] = set()
    for i, raw in enumerate(entries):
        where = f"agentmessage.orgs[{i}]"
        org = _obj(raw, where)
        unknown = set(org) - {"org", "rate_limit", "rate_shape"}
        if unknown:
            raise StateFileError(f"{where}: unknown keys {sorted(unknown)}")
        org_id = org.get("org")
        if not isinstance(org_id, str) or not org_id:
            raise StateFileError(f"{where}.org must be a non-empty string")
        if org_id in named:
            raise StateFileError(f"{where}.org {org_id!r} is listed twice")
        named.add(org_id)
        if "rate_limit" in org:
            limits[org_id] = _rate_limit(org["rate_limit"], where)
        if "rate_shape" in org:
            shapes[org_id] = _rate_shape(org["rate_shape"], where)
    return limits, shapes


def _am_key(raw: object, where: str) -> AMKeySeed:
    k = _obj(raw, where)
    key = k.get("key")
    if not isinstance(key, str) or not key:
        raise StateFileError(f"{where}.key must be a non-empty string")
    scopes = k.get("scopes", list(ALL_SCOPES))
    if not isinstance(scopes, list) or not set(scopes) <= set(ALL_SCOPES):
        raise StateFileError(f"{where}.scopes must be a subset of {ALL_SCOPES}")
    return AMKeySeed(key, str(k.get("org", DEFAULT_ORG)), tuple(scopes))


def _am_campaign(raw: object, where: str) -> AMCampaignSeed:
    c = _obj(raw, where)
    if not is_uuid(c.get("id")):
        raise StateFileError(f"{where}.id must be a lower-case uuid")
    status = c.get("status", "ACTIVE")
    if status not in AM_CAMPAIGN_STATUSES:
        raise StateFileError(f"{where}.status must be one of {AM_CAMPAIGN_STATUSES}")
    return AMCampaignSeed(
        id=c["id"],
        name=str(c.get("name", c["id"])),
        status=status,
        org_id=str(c.get("org", DEFAULT_ORG)),
        brand_verified=bool(c.get("brand_verified", True)),
        use_case=str(c.get("use_case", "MIXED")),
    )


def _plivo_where(seed: Seed, i: int) -> str:
    return "plivo" if len(seed.plivo_accounts) == 1 else f"plivo.accounts[{i}]"


def _check_plivo(seed: Seed) -> None:
    """Every account well formed, with its own auth id and token; links in its campaigns."""
    ids: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for i, account in enumerate(seed.plivo_accounts):
        where = _plivo_where(seed, i)
        if not PLIVO_AUTH_ID_RE.match(account.auth_id):
            raise StateFileError(f"{where}.auth_id must be 20 characters: MA or SA, then 18 "
                                 "letters or digits")
        if account.auth_id in ids:
            raise StateFileError(f"{where}.auth_id {account.auth_id} is already the auth id of "
                                 f"{ids[account.auth_id]}")
        if account.auth_token in tokens:  # the message never shows a token
            raise StateFileError(f"{where}.auth_token is already the auth token of "
                                 f"{tokens[account.auth_token]}")
        ids[account.auth_id] = tokens[account.auth_token] = where
        campaign_ids = {c.campaign_id for c in account.campaigns}
        if len(campaign_ids) != len(account.campaigns):
            raise StateFileError(f"{where}.campaigns: a campaign_id is listed twice")
        seen: set[str] = set()
        for number, cid, _ in account.links:
            if cid not in campaign_ids:
                raise StateFileError(f"{where}.links: {number} names unknown campaign {cid!r}")
            if number in seen:
                raise StateFileError(f"{where}.links: {number} is linked twice")
            seen.add(number)


def _check_am(seed: Seed) -> None:
    am = seed.agentmessage
    keys: set[str] = set()
    for i, key in enumerate(am.keys):
        if key.key in keys:  # the message never shows a key
            raise StateFileError(f"agentmessage.keys[{i}].key is listed twice")
        keys.add(key.key)
    plivo_ids = {a.auth_id for a in seed.plivo_accounts} | {UNKNOWN_ACCOUNT}
    for org in sorted({k.org_id for k in am.keys} | set(am.rate_limits)):
        if org in plivo_ids:
            raise StateFileError(f"agentmessage: the org id {org!r} is a Plivo auth id or "
                                 f"{UNKNOWN_ACCOUNT!r}; the counters need them apart")
    campaign_org: dict[str, str] = {}
    for c in am.campaigns:
        if c.id in campaign_org:
            raise StateFileError(f"agentmessage.campaigns: the id {c.id} is listed twice")
        campaign_org[c.id] = c.org_id
    owned: set[tuple[str, str]] = set()
    for n in am.numbers:
        if (n.org_id, n.number) in owned:
            raise StateFileError(f"agentmessage.numbers: {n.number} is owned twice by {n.org_id}")
        owned.add((n.org_id, n.number))
    for number, cid, _ in am.attachments:
        attached_org = campaign_org.get(cid)
        if attached_org is None:
            raise StateFileError(f"agentmessage.attachments: {number} names unknown campaign "
                                 f"{cid!r}")
        if (attached_org, number) not in owned and not (am.own_all
                                                        and attached_org == DEFAULT_ORG):
            raise StateFileError(f"agentmessage.attachments: {number} is not a number of "
                                 f"{attached_org}, the organization of campaign {cid}")


def check_seed(seed: Seed) -> None:
    """Raise :class:`StateFileError` naming the first inconsistency of ``seed``."""
    if not seed.plivo_accounts:
        raise StateFileError("plivo: at least one account is needed")
    _check_plivo(seed)
    _check_am(seed)


#: a state file larger than this is refused (number ranges keep even large states small)
MAX_STATE_BYTES = 64 * 1024**2


def _read_bounded(path: Path) -> bytes:
    """The state file's bytes; a device (``/dev/zero`` would never end) or a file over
    :data:`MAX_STATE_BYTES` is refused (:class:`StateFileError`)."""
    with path.open("rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            raise StateFileError(f"{path}: is a device, not a state file")
        data = handle.read(MAX_STATE_BYTES + 1)
    if len(data) > MAX_STATE_BYTES:
        raise StateFileError(f"{path}: larger than {MAX_STATE_BYTES} bytes")
    return data


def load_seed(state_file: Path | None) -> Seed:
    """The default seed, with the parts named by ``state_file`` replaced."""
    seed = default_seed()
    if state_file is None:
        return seed
    try:
        data = json.loads(_read_bounded(Path(state_file)).decode("utf-8"))
    except OSError as exc:
        raise StateFileError(f"{state_file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise StateFileError(f"{state_file}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise StateFileError(f"{state_file}: not JSON: {exc}") from None
    except RecursionError:
        raise StateFileError(f"{state_file}: not JSON: nested too deep") from None
    try:
        return apply_state_data(seed, data)
    except StateFileError as exc:
        raise StateFileError(f"{state_file}: {exc}") from None
