"""A careless operator against job files (``bulk run``), the commands other than ``link`` and
the report formats: every mistake ends in one clear line, never a traceback or a lost file."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk._errors import ConfigError
from bulk._toml import MAX_TOML_BYTES
from bulk.cli import main
from bulk.cli._jobfile import job_arguments
from bulk.cli.run import link as link_command
from tests._helpers import write_csv

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN", "AGENTMESSAGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return write_csv(tmp_path / "in.csv", "number,campaign_id", ["+14155550170,CUOGHIN"])


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "infinity"])
@pytest.mark.parametrize(
    "option",
    ["--rate", "--max-rate", "--poll-interval", "--settle-timeout", "--timeout",
     "--backoff-base", "--resend-delay"],
)
def test_a_number_option_that_is_not_finite_is_refused_naming_the_option(
    option: str, value: str, no_credentials: Path
) -> None:
    # before: --rate inf died on a ZeroDivisionError traceback, --rate nan hung a dry run
    # forever, and every other option took nan or inf as given
    result = CliRunner().invoke(main, ["link", str(no_credentials), option, value])
    assert result.exit_code == 2
    assert option in result.output and "finite" in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_job_file_rate_that_is_not_finite_is_refused_naming_it(
    value: str, no_credentials: Path, tmp_path: Path
) -> None:
    job = tmp_path / "job.toml"
    job.write_text(f'command = "link"\ninput = "in.csv"\nsandbox = true\nrate = {value}\n')
    result = CliRunner().invoke(main, ["run", str(job), "--dry-run"])
    assert result.exit_code == 2
    assert "--rate" in result.output and "finite" in result.output, result.output


@pytest.mark.parametrize(
    "args",
    [["--settle", "nan:nan"], ["--settle", "inf"], ["--latency", "0:inf"],
     ["--error-rate", "nan"], ["--hang-seconds", "nan"], ["--time-factor", "inf"],
     ["--plivo-rate-limit", "300/nan"], ["--agentmessage-rate-limit", "100/inf"]],
)
def test_a_sandbox_number_that_is_not_finite_is_a_usage_error(args: list[str]) -> None:
    # before: each was taken, and the sandbox served with it (nan settles, nan shares)
    result = CliRunner().invoke(main, ["sandbox", "--port", "0", *args])
    assert result.exit_code == 2, result.output
    assert args[0] in result.output


def test_a_repeatable_option_after_the_job_file_replaces_the_files_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: `--region US` after a file with region = ["US", "GB"] was added to the file's
    # list, so the London number was still planned for a link (1 link request for 2 numbers)
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "in.csv", "number,campaign_id",
              ["+14155550170,CUOGHIN", "+442079460958,CUOGHIN"])
    job = tmp_path / "job.toml"
    job.write_text('command = "link"\ninput = "in.csv"\nsandbox = true\n'
                   'region = ["US", "GB"]\nquiet = true\n')
    for override, planned in ((["--region", "US"], 1), (["--region=US"], 1), ([], 2)):
        result = CliRunner().invoke(main, ["run", str(job), "--dry-run", *override])
        text = " ".join(result.output.split())
        assert f"for {planned} numbers" in text, (override, text)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ('[base-url]\ntoken = "s3cret-in-a-table"\n', "a table"),
        ('callback-url = ["https://u:s3cret-in-a-table@example.com"]\n', "an array"),
        ('concurrency = "s3cret-in-a-table"\n', "a string"),
    ],
)
def test_a_job_file_value_of_the_wrong_type_is_named_by_its_kind_never_echoed(
    body: str, kind: str, no_credentials: Path, tmp_path: Path
) -> None:
    # before: "key 'base-url' must be a string, not {'token': 's3cret-in-a-table'}"
    job = tmp_path / "job.toml"
    job.write_text('command = "link"\ninput = "in.csv"\n' + body)
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == 2
    assert "s3cret" not in result.output
    assert f"not {kind}" in result.output and str(job) in result.output, result.output


def _bulk_bounded(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bulk ARGS`` in a child held to 1 GiB of memory and 60 s."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "bulk", *args], capture_output=True, text=True, env=env,
        cwd=cwd, timeout=60, preexec_fn=limit, check=False,
    )


@pytest.mark.parametrize(
    "args",
    [["run", "/dev/zero"],
     ["validate", "in.csv", "--accounts", "/dev/zero"],
     ["link", "in.csv", "--sandbox", "--dry-run", "--accounts", "/dev/zero"]],
    ids=["job_file", "validate_accounts", "link_accounts"],
)
def test_a_toml_file_that_is_a_device_is_refused_at_once(args: list[str], tmp_path: Path) -> None:
    # before: read to the end, so /dev/zero filled memory (MemoryError traceback at 1 GiB)
    write_csv(tmp_path / "in.csv", "number,campaign_id", ["+14155550170,CUOGHIN"])
    result = _bulk_bounded(args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "/dev/zero" in result.stderr and "device" in result.stderr, result.stderr


def test_a_huge_job_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    with job.open("wb") as handle:
        handle.truncate(MAX_TOML_BYTES + 1)  # sparse: no disk used
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == 2
    assert str(job) in result.output and f"larger than {MAX_TOML_BYTES}" in result.output


def test_a_job_file_saved_with_a_utf8_bom_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: "job.toml: not valid TOML (Invalid statement (at line 1, column 1))": Notepad's
    # UTF-8 saves a BOM, which the message did not name
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "in.csv", "number,campaign_id", ["+14155550170,CUOGHIN"])
    job = tmp_path / "job.toml"
    job.write_bytes(b'\xef\xbb\xbfcommand = "link"\r\ninput = "in.csv"\r\nsandbox = true\r\n')
    result = CliRunner().invoke(main, ["run", str(job), "--dry-run", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Nothing was sent (dry run)" in " ".join(result.output.split())


@pytest.mark.parametrize("which", ["--campaigns", "INPUT"])
def test_validate_never_writes_its_report_over_a_file_it_reads(
    which: str, tmp_path: Path
) -> None:
    # before: `bulk validate n.csv --campaigns camp.csv --report camp.csv` exited 0 and left
    # camp.csv a validation report: the campaigns file was gone
    numbers = write_csv(tmp_path / "n.csv", "number,campaign", ["4155550170,marketing"])
    campaigns = write_csv(tmp_path / "camp.csv", "campaign_id,alias", ["CUOGHIN,marketing"])
    before = {p: p.read_bytes() for p in (numbers, campaigns)}
    target = campaigns if which == "--campaigns" else numbers
    result = CliRunner().invoke(
        main, ["validate", str(numbers), "--campaigns", str(campaigns), "--report", str(target)]
    )
    assert result.exit_code == 2
    assert which in result.output and "overwrite" in result.output, result.output
    assert {p: p.read_bytes() for p in before} == before


def test_a_sandbox_on_every_interface_warns_that_its_admin_api_is_open() -> None:
    # before: `bulk sandbox --host 0.0.0.0` served silently, its banner saying
    # http://127.0.0.1:..., while any machine that reaches this one could POST /_sandbox/...
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk", "sandbox", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith("bulk sandbox listening on")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        warning = proc.stderr.read()
        assert "warning" in warning and "0.0.0.0" in warning and "/_sandbox" in warning
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_job_file_input_that_is_a_folder_says_so(no_credentials: Path, tmp_path: Path) -> None:
    # before: "key 'input': /tmp/... does not exist", of a folder that exists
    (tmp_path / "exports").mkdir()
    job = tmp_path / "job.toml"
    job.write_text('command = "link"\ninput = "exports"\n')
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == 2
    assert "'input'" in result.output and "is a folder, not a file" in result.output


@pytest.mark.parametrize(
    ("line", "passed"),
    [("send-until = 06:00:00", "06:00"),
     ("send-until = 2030-01-01T06:00:00Z", "2030-01-01T06:00:00+00:00"),
     ('rate = "AUTO"', "auto")],
    ids=["toml-time", "toml-datetime", "rate-upper-case"],
)
def test_toml_times_and_words_are_taken_as_the_options_take_them(
    line: str, passed: str, tmp_path: Path
) -> None:
    # before: a TOML time or date-time for send-until was refused as "a date or time", and
    # rate = "AUTO" as not a number, though --send-until 06:00 and --rate AUTO both work
    job = tmp_path / "job.toml"
    job.write_text(f'command = "link"\ninput = "in.csv"\n{line}\n', encoding="utf-8")
    write_csv(tmp_path / "in.csv", "number,campaign_id", ["+14155550170,CUOGHIN"])
    command, args = job_arguments(job, {"link": link_command})
    assert command is link_command and passed in args, args


def test_a_toml_date_time_without_an_offset_is_refused_naming_the_key(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('command = "link"\ninput = "in.csv"\nsend-until = 2030-01-01T06:00:00\n')
    write_csv(tmp_path / "in.csv", "number,campaign_id", ["+14155550170,CUOGHIN"])
    with pytest.raises(ConfigError, match="'send-until' is a date-time without an offset"):
        job_arguments(job, {"link": link_command})
