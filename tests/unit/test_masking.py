"""What regctl says is masked as GitLab masks CI/CD variables: every occurrence of a secret of
8 characters or more; a shorter one is left alone (masking it would mangle ordinary words), and
the user is told so once."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_cleanup.registry.regctl import SHORT_SECRET_NOTICE, RegctlError, RegctlSession

SAYS = "failed to resolve 127.0.0.1:5000/group/app:x with token a-long-secret-value: server error"


def _fake_regctl(tmp_path: Path) -> str:
    script = tmp_path / "regctl"
    script.write_text(f"#!/bin/sh\necho '{SAYS}' >&2\nexit 1\n")
    script.chmod(0o755)
    return str(script)


def test_a_short_password_is_not_masked_inside_words_and_the_user_is_told_once(
    tmp_path: Path,
) -> None:
    notices: list[str] = []
    with RegctlSession(binary=_fake_regctl(tmp_path), notice=notices.append) as session:
        session.keep_secret("p")
        session.keep_secret("a-long-secret-value")
        session.keep_secret("a")
        with pytest.raises(RegctlError) as caught:
            session.manifest("127.0.0.1:5000/group/app:x")

    assert "127.0.0.1:5000/group/app:x" in caught.value.detail
    assert "a-long-secret-value" not in caught.value.detail
    assert "with token [REDACTED]" in caught.value.detail
    assert notices == [SHORT_SECRET_NOTICE]
