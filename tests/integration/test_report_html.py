"""The sweep's HTML page, opened in real headless Chromium: it renders, lists, filters, and
loads nothing from the network."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from tests.conftest import ROOT, RunCli, ci_env, find_tool, require_tool
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


class _Shapes(HTMLParser):
    """The shapes of each inline SVG (by the svg's id): each element's tag and attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.svgs: dict[str, list[tuple[str, dict[str, str | None]]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self._current = str(attributes.get("id"))
            self.svgs[self._current] = []
        elif self._current is not None:
            self.svgs[self._current].append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._current = None


def shapes(dom: str) -> dict[str, list[tuple[str, dict[str, str | None]]]]:
    parser = _Shapes()
    parser.feed(dom)
    return parser.svgs


def test_a_sized_page_shows_storage_ages_and_the_biggest_tags(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    run_cli: RunCli,
    chromium: str,
    tmp_path: Path,
) -> None:
    project = gitlab_emulator.add_project(REPO, default_branch="main", branches=["main"])
    gitlab_emulator.add_repository(project)
    now = datetime.now(UTC).replace(microsecond=0)
    recent = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    pusher.push(REPO, "main", layers=("base", "main"), created=recent)
    for n in (1, 2, 10):
        pusher.push(REPO, f"review-{n}", layers=("base", f"review-{n}"))
    big = tuple(f"big-{k}" for k in range(6))
    pusher.push(REPO, "review-big", layers=("base", *big), created=recent)
    page, report = tmp_path / "sized.html", tmp_path / "sized.json"
    env = {
        **ci_env(pusher.registry),
        **env_for(gitlab_emulator, project),
    }

    made = run_cli(
        "sweep", "--sizes", "--min-age", "0s", "--html", str(page), "--report", str(report), env=env
    )

    assert made.returncode == 0, made.output
    html = page.read_text()
    assert_self_contained(html)
    document = json.loads(report.read_text())
    (repository,) = document["repositories"]
    dom = dump_dom(chromium, page, tmp_path / "profile")
    # The project's path, though the job named its project by id.
    assert f"<title>registry-cleanup dry run: {REPO}</title>" in dom
    assert str(project.id) not in re.search(r"<h1>(.*?)</h1>", dom).group(1)  # type: ignore[union-attr]

    # Storage: one bar, kept then freed, in proportion to the report's figures.
    storage = shapes(dom)["storage"]
    bars = {
        a.get("class"): int(str(a["width"]))
        for tag, a in storage
        if tag == "rect" and a.get("class")
    }
    kept, freed = repository["kept_bytes"], repository["reclaimable_bytes"]
    assert freed > 0
    assert abs(bars["freed"] / (bars["kept"] + bars["freed"]) - freed / (kept + freed)) < 0.01
    assert document["summary"]["reclaimable_bytes"] == freed
    figure = table_rows(dom, "tags").texts["figure"]
    assert figure.startswith("would free about ")
    assert figure.endswith(" in 1 repository")
    assert "the figures are an upper bound" in dom

    # Ages: every tag once, in its band, coloured by its decision.
    ages = [a for tag, a in shapes(dom)["ages"] if tag == "rect" and a.get("class") == "age"]
    counted = {(a["data-band"], a["data-status"]): int(str(a["data-count"])) for a in ages}
    assert sum(counted.values()) == len(document["tags"])
    assert counted[("under a day", "kept")] == 1  # main
    assert counted[("under a day", "would-delete")] == 1  # review-big
    assert counted[("3-12 months", "would-delete")] == 3  # the reviews, made 2026-01-01

    # The biggest reclaimable tags first; the tag table in natural order.
    biggest = [cells[0] for _, cells in table_rows(dom, "biggest").rows]
    assert biggest[0] == "review-big"
    sizes = {t["tag"]: t["size_bytes"] for t in document["tags"]}
    assert biggest == sorted(biggest, key=lambda tag: -sizes[tag])
    listed = [cells[1] for _, cells in table_rows(dom, "tags").rows]
    assert listed == ["main", "review-1", "review-2", "review-10", "review-big"]

    shot = screenshot(
        chromium, page, tmp_path / "profile", ARTIFACTS / "sweep-sizes.png", "1280,1400"
    )
    assert shot.stat().st_size > 10_000
