"""A run's defaults come from one place: the command line's options, JobSpec and each lane's
settings agree, and an account's own settings win over the run's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from bulk import _defaults
from bulk._accounts import Account
from bulk._jobvalues import JobSpec
from bulk._lanes import settings_of
from bulk.cli.run import link
from bulk.providers import entry


def test_every_run_option_defaults_to_the_job_specs_own_default() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(JobSpec)}
    compared = []
    for param in link.params:
        given = isinstance(param, click.Option) and not param.is_flag
        default = param.default
        if given and param.name in fields and isinstance(default, int | float | str | tuple):
            assert default == fields[param.name], param.name
            compared.append(param.name)
    assert {"max_rate", "concurrency", "timeout", "attempts", "resend_delay"} <= set(compared)


def test_a_sandboxed_run_waits_by_the_sandbox_profile_and_a_given_value_wins() -> None:
    plivo = entry("plivo")
    sandboxed = settings_of(JobSpec("link", Path("in.csv"), sandbox=True), plivo, None)
    assert sandboxed.timing == _defaults.SANDBOX.timing
    real = settings_of(JobSpec("link", Path("in.csv")), plivo, None)
    assert real.timing == _defaults.PRODUCTION
    given = settings_of(JobSpec("link", Path("in.csv"), poll_interval=2.0), plivo, None)
    assert given.timing.poll_interval == 2.0
    assert given.timing.settle_timeout == _defaults.PRODUCTION.settle_timeout


def test_an_accounts_own_settings_win_over_the_runs() -> None:
    spec = JobSpec("link", Path("in.csv"), rate=20.0, concurrency=3, max_rate=50.0)
    plivo = entry("plivo")
    run_wide = settings_of(spec, plivo, None)
    assert (run_wide.rate, run_wide.adaptive, run_wide.concurrency) == (20.0, False, 3)
    own = Account("east", "plivo", "EAST_TOKEN", rate="auto", concurrency=5, batch_size=10)
    settings = settings_of(spec, plivo, own)
    assert settings.adaptive and settings.rate == plivo.default_rate
    assert (settings.concurrency, settings.batch_size, settings.max_rate) == (5, 10, 50.0)


def test_a_provider_whose_rate_is_found_adapts_unless_a_rate_is_given() -> None:
    agentmessage = entry("agentmessage")
    assert agentmessage.default_rate_mode == "auto"
    spec = JobSpec("link", Path("in.csv"), provider="agentmessage")
    found = settings_of(spec, agentmessage, None)
    assert found.adaptive and found.starting_rate == agentmessage.default_rate
    fixed = JobSpec("link", Path("in.csv"), provider="agentmessage", rate=3.0)
    assert not settings_of(fixed, agentmessage, None).adaptive
