"""The sweep's HTML page, opened in real headless Chromium: it renders, lists, filters, and
loads nothing from the network."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from tests.conftest import ROOT, RunCli, find_tool, require_tool
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.support.chromium import dump_dom, screenshot, table_rows

REPO = "group/app"
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_tool("chromium", find_tool("chromium") or shutil.which("chromium-browser"))


def seed(emulator: GitLabEmulator, pusher: ImagePusher) -> Project:
    project = emulator.add_project(REPO, default_branch="main", branches=["main", "feature/live"])
    emulator.add_repository(project)
    for tag in ("main", "feature-live", "v1.2.3", "gone-a", "gone-b", "gone-c"):
        pusher.push(REPO, tag)
    return project


def env_for(emulator: GitLabEmulator, project: Project) -> dict[str, str]:
    return {
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "GITLAB_TOKEN": emulator.personal_token(project, Role.developer),
    }


class _Resources(HTMLParser):
    """Everything a page could fetch: URLs in attributes, tags that load things."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.loading_tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("link", "img", "iframe", "object", "embed", "video", "audio", "source"):
            self.loading_tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data") and value:
                self.urls.append(value)
            if name == "src" and tag == "script":
                self.urls.append(value or "")


def assert_self_contained(page: str) -> None:
    found = _Resources()
    found.feed(page)
    assert found.loading_tags == []
    assert found.urls == []
    assert "url(" not in page
    assert "@import" not in page
    assert "default-src 'none'" in page  # and the browser is told to fetch nothing


def test_plan_page_renders_lists_every_tag_and_filters_by_decision(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    run_cli: RunCli,
    chromium: str,
    tmp_path: Path,
) -> None:
    project = seed(gitlab_emulator, pusher)
    plan, page = tmp_path / "plan.json", tmp_path / "plan.html"

    made = run_cli(
        "sweep",
        "--plan-out",
        str(plan),
        "--html",
        str(page),
        "--min-age",
        "0s",
        env=env_for(gitlab_emulator, project),
    )

    assert made.returncode == 0, made.output
    html = page.read_text()
    assert_self_contained(html)
    document = json.loads(plan.read_text())
    statuses = {entry["tag"]: entry["status"] for entry in document["tags"]}
    profile = tmp_path / "chromium-profile"

    everything = table_rows(dump_dom(chromium, page, profile), "tags")
    planned = table_rows(dump_dom(chromium, page, profile, "#status=would-delete"), "tags")
    kept = table_rows(dump_dom(chromium, page, profile, "#status=kept"), "tags")

    listed = {cells[1]: cells[2] for _, cells in everything.rows}
    assert listed == statuses  # every tag, with its decision
    assert all("hidden" not in attributes for attributes, _ in everything.rows)
    reasons = {cells[1]: cells[3] for _, cells in everything.rows}
    assert reasons["feature-live"] == "branch 'feature/live' still exists"
    visible = [cells[1] for attributes, cells in planned.rows if "hidden" not in attributes]
    assert sorted(visible) == ["gone-a", "gone-b", "gone-c"]
    assert planned.body_attributes.get("data-filter") == "would-delete"
    assert planned.texts["shown"] == f"showing 3 of {len(statuses)} tags"
    shown_kept = [cells[1] for attributes, cells in kept.rows if "hidden" not in attributes]
    assert sorted(shown_kept) == ["feature-live", "main", "v1.2.3"]
    repositories = table_rows(dump_dom(chromium, page, profile), "repositories")
    (location, count, size) = repositories.rows[0][1]
    assert location == f"{pusher.registry.host}/{REPO}"
    assert count == str(len(statuses))
    # The emulator, like GitLab without the registry's metadata database, reports no size.
    assert size == "not reported by GitLab"

    shot = screenshot(chromium, page, profile, ARTIFACTS / "sweep-plan.png")
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    shutil.copy(shot, tmp_path / "sweep-plan.png")


def test_result_and_apply_pages(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    run_cli: RunCli,
    chromium: str,
    tmp_path: Path,
) -> None:
    project = seed(gitlab_emulator, pusher)
    env = env_for(gitlab_emulator, project)
    plan = tmp_path / "plan.json"
    assert run_cli("sweep", "--plan-out", str(plan), "--min-age", "0s", env=env).returncode == 0
    pusher.push(REPO, "gone-b", seed="pushed again")
    applied_page = tmp_path / "apply.html"

    applied = run_cli("sweep", "--apply", str(plan), "--html", str(applied_page), env=env)

    assert applied.returncode == 0, applied.output
    assert_self_contained(applied_page.read_text())
    dom = dump_dom(chromium, applied_page, tmp_path / "profile", "#status=skipped")
    rows = table_rows(dom, "tags")
    visible = {cells[1]: cells[3] for attributes, cells in rows.rows if "hidden" not in attributes}
    assert list(visible) == ["gone-b"]
    assert visible["gone-b"].startswith("changed since the plan: the tag now points at")
    assert "registry-cleanup sweep applied plan" in dom
    screenshot(chromium, applied_page, tmp_path / "profile", ARTIFACTS / "sweep-apply.png")

    result_page = tmp_path / "result.html"
    done = run_cli("sweep", "--delete", "--min-age", "0s", "--html", str(result_page), env=env)
    assert done.returncode == 0, done.output
    result_rows = table_rows(dump_dom(chromium, result_page, tmp_path / "profile"), "tags")
    assert {cells[1] for _, cells in result_rows.rows if cells[2] == "deleted"} == {"gone-b"}


def test_values_are_escaped() -> None:
    from registry_cleanup.output.page import render

    page = render(
        {
            "kind": "sweep",
            "project": "<b>x</b>",
            "summary": {"kept": 1},
            "tags": [
                {
                    "repository": "r",
                    "tag": "t",
                    "status": "kept",
                    "reason": "</script><script>alert(1)</script>",
                }
            ],
        },
        sizes={"r": 5 * 1024 * 1024},
    )
    assert "<script>alert(1)" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert re.search(r"<td class=\"size\">5\.0 MiB</td>", page)
