"""`dockctl verify`: prove the store against the catalog (restic's `check --read-data`)."""

from __future__ import annotations

import secrets
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from dockd.anchors import parse_anchor
from dockd.cli.common import print_json, reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog, vault_client
from dockd.crypto.keys import load_identities
from dockd.errors import ConfigError, VerifyFailed
from dockd.verify import (
    KEEP,
    Progress,
    Selection,
    VerifyReport,
    verify_store,
    verify_vault,
)

#: FAIL lines printed per kind of problem; the summary line counts them all
SHOWN = 20


@click.command()
@config_option
@click.option("--identity", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="age identity file: also decrypt every file and check its plaintext SHA-256.")
@click.option("--anchor", "anchors", multiple=True, metavar="SEQ:HASH",
              help="An audit head written down elsewhere (a dock_session log line, paper): "
                   "the chain must still hold it. Repeatable.")
@click.option("--vault", "check_vault", is_flag=True,
              help="Also check every vaulted recording's object in the vault: it exists at "
                   "its version with its checksum, locked at least as long as its retention, "
                   "held when the recording is (no download).")
@click.option("--download", is_flag=True,
              help="With --vault: also read each object back and re-hash it.")
@click.option("--sample", "sample", type=click.FloatRange(0, 100, min_open=True),
              default=None, metavar="PERCENT",
              help="Read only about PERCENT %% of the stored files, chosen by --seed (a large "
                   "store checked in parts on a schedule). Rows and the chain are still "
                   "checked whole; the store is not searched for unknown files.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="With --sample: which files (the same seed picks the same ones; default "
                   "a new one each run, recorded in the chain).")
@click.option("--since", "since", type=click.DateTime(), default=None, metavar="DATE",
              help="Read only the files of recordings catalogued since DATE (UTC), e.g. "
                   "2026-11-01. Combines with --sample.")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Files re-hashed at once (default: one per core).")
@click.option("--progress/--no-progress", default=None,
              help="Progress lines on stderr (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def verify(config_path: Path, identity: Path | None, anchors: tuple[str, ...],
           check_vault: bool, download: bool, sample: float | None, seed: int | None,
           since: datetime | None, jobs: int | None, progress: bool | None,
           as_json: bool) -> None:
    """Check the audit chain (against the store's anchor file and every --anchor), every
    recording row against its custody chain, and every stored file against the chain's
    hashes; find missing, unknown and key files.

    Exits 7 naming the failures (the first of each kind, and how many); appends
    `verified_later` for each recording that checks out and `verify_run` for the check.
    """
    try:
        given = [parse_anchor(text) for text in anchors]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--anchor") from None
    if download and not check_vault:
        raise click.BadParameter("needs --vault", param_hint="--download")
    if seed is not None and sample is None:
        raise click.BadParameter("needs --sample", param_hint="--seed")
    selection = Selection(
        percent=sample, since=since.replace(tzinfo=UTC) if since is not None else None,
        seed=seed if seed is not None else secrets.randbelow(2**63))
    show = progress if progress is not None else sys.stderr.isatty()
    config = load(config_path)
    client = vault_client(config) if check_vault else None
    if check_vault and client is None:
        raise ConfigError(config.source, "[vault]", "missing: --vault needs a vault to check")
    identities = load_identities(identity) if identity is not None else None
    with open_catalog(config) as catalog:
        report = verify_store(catalog, config.storage.path, identities, given,
                              selection=selection, jobs=jobs,
                              progress=_show_progress if show else None)
        if client is not None:
            verify_vault(catalog, report, client, config.retention, download=download)
    if as_json:
        print_json(report.to_json())  # everything, for a program
    else:
        console = Console(soft_wrap=True, highlight=False)
        mode = "stored hash + decrypted plaintext hash" if report.decrypted else "stored hash"
        console.print(Text(f"checked {report.checked} stored recordings ({mode}): "
                           f"{report.ok_count} ok" + _scope(report)))
        console.print(Text("audit chain: " + ("ok" if not report.chain else
                                              f"{len(report.chain)} problems")
                           + f" (checked against {report.anchors} witnessed heads)"))
        if report.quarantined:
            console.print(Text(f"quarantine: {len(report.quarantined)} files moved aside for "
                               "a person to look at (dockctl status lists why)"))
        if report.elsewhere:
            console.print(Text(f"stored on other dock hosts: {report.elsewhere} recordings "
                               "(verify there, or with --vault)"))
        if check_vault:
            console.print(Text(f"vault: {report.vault_checked} objects checked"
                               + (" (bytes re-hashed)" if download else "")))
        if report.retired:  # tombstones: gone on purpose, their hashes kept in the chain
            console.print(Text(f"deleted by retention: {len(report.retired)} local copies"))
            for line in report.retired[:SHOWN]:
                console.print(Text(f"  {line}"))
        shown: Counter[str] = Counter()
        for f in report.findings:  # the first SHOWN of each kind; the summary counts them all
            shown[f.problem] += 1
            if shown[f.problem] <= SHOWN:
                console.print(Text(f"FAIL {f.message}"))
        for kind, n in report.by_problem().most_common():
            if n > SHOWN:
                console.print(Text(f"FAIL … and {n - SHOWN} more {kind} (--json lists the "
                                   f"first {KEEP} findings)"))
        for p in report.chain:
            console.print(Text(f"FAIL audit chain: {p.message}"))
        if not report.ok:
            console.print(Text(f"summary: {_summary(report)}"))
    if not report.ok:
        # a short last line: the lines above (or the JSON) hold every failure
        raise VerifyFailed(f"verify found {_summary(report)} "
                           + ("(listed in the JSON output)" if as_json else "(FAIL lines above)"))


def _summary(report: VerifyReport) -> str:
    """"15 problems: wrong_identity 15 — the identity opens none of the 15 recordings"."""
    kinds = report.by_problem()
    if report.chain:
        kinds["audit_chain"] += len(report.chain)
    total = sum(kinds.values())
    text = (f"{total} problem{'s' if total != 1 else ''}: "
            + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()))
    if kinds.get("wrong_identity") == report.checked > 0:
        text += (f" — the identity opens none of the {report.checked} recordings: is it the "
                 "key of a recipient in this dock's [encryption] recipients?")
    return text


def _scope(report: VerifyReport) -> str:
    sel = report.selection
    if not sel.partial:
        return ""
    parts = []
    if sel.percent is not None:
        parts.append(f"a {sel.percent:g} % sample, seed {sel.seed}")
    if sel.since is not None:
        parts.append(f"catalogued since {sel.since:%Y-%m-%d %H:%M}Z")
    return f"; {' and '.join(parts)}: {report.skipped} not read this time"


def _show_progress(p: Progress) -> None:
    rate = p.bytes / p.seconds / 1e6 if p.seconds > 0 else 0.0
    click.echo(f"verify: {p.files:,} files, {p.bytes / 1e9:,.2f} GB in {p.seconds:,.0f} s "
               f"({rate:,.0f} MB/s)", err=True)
