"""plan_file and restore's report reading: pure, so every boundary is checked here."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from registry_cleanup.engine.options import SweepOptions
from registry_cleanup.engine.plan_file import (
    check_plan,
    instance_of,
    options_document,
    options_from_document,
    parse_plan,
    plan_document,
)
from registry_cleanup.engine.restore import parse_report, select
from registry_cleanup.errors import InputError
from registry_cleanup.gitlab import Repository

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def a_plan(**options: object) -> dict[str, object]:
    report = {"tags": [], "summary": {}, "default_branch": "main", "guard": None}
    return plan_document(
        report,
        instance="https://gitlab.example.com",
        project="42",
        repositories=[Repository(1, "group/app", "registry.example.com/group/app")],
        options=SweepOptions(**options),  # type: ignore[arg-type]
        created_at=NOW,
    )


def test_options_survive_the_round_trip() -> None:
    options = SweepOptions(
        include=("review-.*",),
        keep_n=3,
        older_than=timedelta(days=14),
        min_age=timedelta(0),
        protect_semver=False,
        default_branch="trunk",
    )
    assert options_from_document(options_document(options)) == options
    assert options_from_document({}) == SweepOptions()


@pytest.mark.parametrize(
    ("url", "instance"),
    [
        ("https://GitLab.Example.com/api/v4", "https://gitlab.example.com"),
        ("https://gitlab.example.com/api/v4/", "https://gitlab.example.com"),
        ("https://example.com/gitlab/api/v4", "https://example.com/gitlab"),
    ],
)
def test_instance_is_the_url_without_api_v4(url: str, instance: str) -> None:
    assert instance_of(url) == instance


def check(document: dict[str, object], *, now: datetime = NOW, **where: str) -> None:
    check_plan(
        parse_plan(document, source="plan.json"),
        instance=where.get("instance", "https://gitlab.example.com"),
        project=where.get("project", "42"),
        now=now,
        max_age=timedelta(days=7),
    )


def test_a_plan_is_accepted_up_to_its_maximum_age_and_not_a_second_later() -> None:
    check(a_plan(), now=NOW + timedelta(days=7))
    with pytest.raises(InputError, match="more than --max-plan-age 7d"):
        check(a_plan(), now=NOW + timedelta(days=7, seconds=1))
    check(a_plan(), now=NOW - timedelta(minutes=5))  # clocks differ a little
    with pytest.raises(InputError, match="dated in the future"):
        check(a_plan(), now=NOW - timedelta(minutes=6))


def test_another_instance_or_project_is_refused() -> None:
    with pytest.raises(
        InputError, match=re.escape("made for GitLab https://gitlab.example.com, not")
    ):
        check(a_plan(), instance="https://gitlab.other.example")
    with pytest.raises(InputError, match="made for project 42, not group/app"):
        check(a_plan(), project="group/app")


def test_a_plan_without_a_time_zone_is_damaged() -> None:
    document = {**a_plan(), "created_at": "2026-12-01T12:00:00"}
    with pytest.raises(InputError, match="incomplete or damaged"):
        parse_plan(document, source="plan.json")


def test_restore_reads_only_deleted_entries_and_selects_by_tag() -> None:
    report = {
        "tags": [
            {"repository": "r.example/a", "tag": "x", "status": "deleted", "digest": DIGEST},
            {"repository": "r.example/b", "tag": "x", "status": "deleted", "digest": DIGEST},
            {"repository": "r.example/a", "tag": "y", "status": "kept", "digest": None},
            {"repository": "r.example/a", "tag": "z", "status": "deleted", "digest": None},
        ]
    }
    deleted = parse_report(report, source="r.json")
    assert [(d.ref.repository, d.ref.tag, d.digest) for d in deleted] == [
        ("a", "x", DIGEST),
        ("b", "x", DIGEST),
        ("a", "z", None),
    ]
    assert len(select(deleted, ["x"])) == 2
    with pytest.raises(InputError, match="--tag y: the report records no deleted tag"):
        select(deleted, ["y"])


def test_restore_reads_the_output_of_delete_json() -> None:
    printed = {"ref": "r.example/a:t", "tag": "t", "digest": DIGEST, "status": "deleted"}
    (deleted,) = parse_report(printed, source="-")
    assert (str(deleted.ref), deleted.digest) == ("r.example/a:t", DIGEST)
    assert parse_report({**printed, "status": "absent"}, source="-") == []
