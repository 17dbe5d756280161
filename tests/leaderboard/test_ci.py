"""The example CI workflow for a leaderboard repository: its YAML, and the script that
picks the submissions a pull request changed, run on a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from conftest import REPO

CI = REPO / "leaderboard" / "ci"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def test_the_workflow_validates_pull_requests_and_builds_on_merge() -> None:
    workflow = yaml.safe_load((CI / "leaderboard.yml").read_text(encoding="utf-8"))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert set(triggers) == {"pull_request", "push"} and "pull_request_target" not in triggers
    validate = " ".join(s.get("run", "") for s in workflow["jobs"]["validate"]["steps"])
    build = " ".join(s.get("run", "") for s in workflow["jobs"]["build"]["steps"])
    assert "changed-submissions.sh" in validate and "leaderboard validate" in validate
    assert "leaderboard build --submissions leaderboard/submissions -o _site" in build


def test_changed_submissions_lists_added_and_modified_folders_only(tmp_path: Path) -> None:
    repo = tmp_path / "board"
    subs = repo / "leaderboard" / "submissions"
    for name in ("kept", "edited", "removed"):
        (subs / name / "runs").mkdir(parents=True)
        (subs / name / "submission.yaml").write_text(f"model: {name}\n")
    _git(repo.parent, "init", "-q", "-b", "main", str(repo))
    _git(repo, "-c", "user.email=t@example.org", "-c", "user.name=t", "add", ".")
    _git(repo, "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "base")
    (subs / "edited" / "runs" / "new.txt").write_text("x")
    (subs / "added").mkdir()
    (subs / "added" / "submission.yaml").write_text("model: added\n")
    _git(repo, "rm", "-rq", "leaderboard/submissions/removed")
    _git(repo, "-c", "user.email=t@example.org", "-c", "user.name=t", "add", ".")
    _git(repo, "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "pr")
    out = subprocess.run(["bash", str(CI / "changed-submissions.sh"), "HEAD~1", "HEAD",
                          "leaderboard/submissions"], cwd=repo, check=True, capture_output=True,
                         text=True).stdout
    assert out.splitlines() == ["leaderboard/submissions/added",
                                "leaderboard/submissions/edited"]
    untouched = subprocess.run(["bash", str(CI / "changed-submissions.sh"), "HEAD", "HEAD"],
                               cwd=repo, check=True, capture_output=True, text=True).stdout
    assert untouched == ""
