"""``leaderboard``: package a submission, validate submissions, build and preview the site."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from ..errors import MoroccanEvalError
from .common import epilog, print_checks

DEFAULT_SUBMISSIONS = Path("leaderboard/submissions")


@click.group(epilog=epilog("leaderboard"))
def leaderboard() -> None:
    """Submit runs to the static leaderboard, validate submissions, build the site."""


@leaderboard.command("submit")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--info", "info_path", required=True, type=click.Path(path_type=Path),
              help="submission.yaml: model, organisation, licence, weights, hosting ...")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=DEFAULT_SUBMISSIONS,
              show_default=True, help="Folder of submissions receiving <submission-id>/.")
@click.option("--id", "ident", help="Submission folder name [default: organisation-model-date].")
def submit(run_dirs: Sequence[Path], info_path: Path, out_dir: Path, ident: str | None) -> None:
    """Package finished runs of one model as a submission (copies the runs, checks them
    as `leaderboard validate` will, writes SHA256SUMS)."""
    from ..leaderboard.package import package
    from ..runs.rundir import expand_run_paths

    target = package(expand_run_paths(run_dirs), info_path, out_dir, ident)
    click.echo(f"submission: {target}\nnext: open a pull request adding it to the "
               "leaderboard repository (see CONTRIBUTING.md)")


@leaderboard.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-cache", is_flag=True,
              help="Rescore every submission, even unchanged ones already verified here.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Processes validating in parallel [default: one per CPU].")
def validate(paths: Sequence[Path], as_json: bool, no_cache: bool, jobs: int | None) -> None:
    """Check submissions (a submission folder or a folder of them; default
    leaderboard/submissions): layout, checksums, submission.yaml, and every run verified
    by rescoring its raw outputs. Exits 1 if any submission is invalid."""
    from ..leaderboard.validate import VerdictCache, submission_dirs, validate_all

    paths = paths or [DEFAULT_SUBMISSIONS]
    found = submission_dirs(paths)
    if not found:  # exit 1 with nothing printed would read as a crash
        raise MoroccanEvalError(
            f"no submission in {', '.join(map(str, paths))}: a submission is a folder "
            f"holding submission.yaml, SHA256SUMS and runs/ (`moroccan-eval leaderboard "
            f"submit` makes one)")
    reports = validate_all(found, None if no_cache else VerdictCache(), jobs)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2))
    else:
        for report in reports:
            print_checks(report.ident, report.ok, ("VALID", "INVALID"), report.checks)
    if not all(r.ok for r in reports):
        sys.exit(1)


@leaderboard.command("build")
@click.option("--submissions", "submissions", type=click.Path(path_type=Path),
              default=DEFAULT_SUBMISSIONS, show_default=True,
              help="Folder of submissions (or one submission).")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Folder receiving the site (replaced only if it holds a site built here).")
@click.option("--template-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Templates, assets or i18n/<lang>.yaml messages overriding the shipped "
                   "ones (leaderboard/templates).")
@click.option("--no-cache", is_flag=True,
              help="Rescore every submission, even unchanged ones already verified here.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Processes validating (and, for big boards, rendering pages) in parallel "
                   "[default: one per CPU].")
@click.option("--files-url", help="Link each submission's files to URL/<id>/ (e.g. the "
              "leaderboard repository's tree) instead of copying them into the site.")
def build(submissions: Path, out: Path, template_dir: Path | None, no_cache: bool,
          jobs: int | None, files_url: str | None) -> None:
    """Validate every submission and write the static site (HTML in en/fr/ar, CSV, JSON,
    Parquet, the submissions' files) into OUT. Invalid submissions are left out with a
    warning naming their first failed check; the build still succeeds."""
    import time

    from ..leaderboard.board import board_from
    from ..leaderboard.site import build_site, check_target
    from ..leaderboard.validate import VerdictCache

    started = time.perf_counter()
    check_target(out)  # before validating: a wrong -o fails at once
    board, _ = board_from([submissions], None if no_cache else VerdictCache(), jobs)
    validated = time.perf_counter()
    for ident, reason in sorted(board.excluded.items()):
        click.echo(f"warning: {ident}: excluded: {reason}", err=True)
    index = build_site(board, out, template_dir=template_dir, files_url=files_url,
                       jobs=jobs)
    click.echo(f"site: {index} ({len(board.entries)} submission(s), {len(board.excluded)} "
               f"excluded, {len(board.suites)} suite(s); validated in "
               f"{validated - started:.1f} s, built in {time.perf_counter() - validated:.1f} s)"
               f"\npreview: moroccan-eval leaderboard serve {out}")


@leaderboard.command("serve")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
def serve(directory: Path, port: int) -> None:
    """Preview a built site with Python's http.server on 127.0.0.1 only; Ctrl-C stops it."""
    from ..errors import MoroccanEvalError
    from ..leaderboard.site import preview_server, url_of

    if not (directory / "index.html").is_file():
        raise MoroccanEvalError(f"{directory}: no index.html; build the site first with "
                                f"`moroccan-eval leaderboard build -o {directory}`")
    try:
        server = preview_server(directory, port)
    except OSError as exc:
        raise MoroccanEvalError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    click.echo(f"serving {directory} at {url_of(server)} (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()
