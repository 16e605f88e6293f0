"""Image references, tags and GitLab's ref slug rule.

Pure functions only: nothing here touches the network, the environment or a subprocess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry_cleanup.errors import InputError

# OCI distribution spec, "tag" production: at most 128 characters.
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# OCI distribution spec, repository name components: lowercase, separated by . _ __ or -s.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_PATTERN = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
# A registry host: a DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
REGISTRY_PATTERN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)

_NOT_SLUG_CHARACTER = re.compile(r"[^a-z0-9]")
_EDGE_DASHES = re.compile(r"\A-+|-+\Z")
SLUG_MAX_LENGTH = 63


def slugify(ref_name: str) -> str:
    """Return GitLab's CI_COMMIT_REF_SLUG for a branch or tag name.

    Mirrors ``Gitlab::Utils.slugify``: lowercase, every character outside a-z0-9 becomes ``-``,
    cut to 63 characters, then leading and trailing dashes removed. The result can be empty.
    """
    # str.lower() and Ruby's String#downcase both apply full Unicode case mapping per code
    # point (the Kelvin sign becomes "k", "İ" becomes two code points), so lengths agree.
    replaced = _NOT_SLUG_CHARACTER.sub("-", ref_name.lower())
    return _EDGE_DASHES.sub("", replaced[:SLUG_MAX_LENGTH])


def is_valid_tag(tag: str) -> bool:
    return TAG_PATTERN.fullmatch(tag) is not None


# Tags that belong to another manifest of the repository, named after its digest: cosign's
# signatures, attestations and SBOMs (sha256-<hex>.sig, .att, .sbom) and the OCI referrers tag
# schema's fallback (sha256-<hex>, distribution spec "Unavailable Referrers API"). Any other
# ".suffix" is read the same way: a tool attaching something else to that digest.
_ATTACHED_TAG = re.compile(r"sha256-([0-9a-f]{64})(?:\.[A-Za-z0-9_.-]+)?")


def attached_subject(tag: str) -> str | None:
    """The digest a signature, attestation or SBOM tag belongs to, or None for other tags."""
    found = _ATTACHED_TAG.fullmatch(tag)
    return f"sha256:{found.group(1)}" if found else None


@dataclass(frozen=True)
class ImageRef:
    """A tagged image reference: ``registry/repository:tag``."""

    registry: str
    repository: str
    tag: str

    @property
    def repository_ref(self) -> str:
        """The reference without its tag, as regctl names a repository."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    def at_digest(self, digest: str) -> str:
        """The reference pinned to a digest instead of the tag."""
        return f"{self.registry}/{self.repository}@{digest}"


def parse_repository(text: str, *, what: str = "image") -> tuple[str, str]:
    """Split ``registry/repository`` into its two parts, validating both.

    Unlike Docker, the registry is never implied: a cleanup must say which registry it targets.
    """
    if "://" in text:
        raise InputError(f"{what} {text!r} must not contain a URL scheme; write host/path")
    if "@" in text:
        raise InputError(f"{what} {text!r} names a digest; give a repository and a tag")
    registry, slash, repository = text.partition("/")
    if not slash or not repository:
        raise InputError(
            f"{what} {text!r} has no registry host; write host/path, e.g. "
            "registry.example.com/group/project"
        )
    if REGISTRY_PATTERN.fullmatch(registry) is None or not _port_in_range(registry):
        raise InputError(f"{what} {text!r} has an invalid registry host {registry!r}")
    if not _names_a_registry(registry):
        # regctl, like Docker, reads 'group/app' as docker.io/group/app: never guess a registry.
        raise InputError(
            f"{what} {text!r} has no registry host ({registry!r} would be read as a path on "
            "Docker Hub); write host/path, e.g. registry.example.com/group/project"
        )
    if REPOSITORY_PATTERN.fullmatch(repository) is None:
        raise InputError(
            f"{what} {text!r} has an invalid repository path {repository!r}: use lowercase "
            "letters, digits and separators . _ - between path components"
        )
    return registry, repository


def _names_a_registry(component: str) -> bool:
    """Docker's rule: a first component is a registry if it has a '.' or ':' or is localhost."""
    return "." in component or ":" in component or component == "localhost"


def _port_in_range(host: str) -> bool:
    _, colon, port = host.rpartition(":")
    if not colon or not port.isdigit() or host.endswith("]"):
        return True
    return 1 <= int(port) <= 65535


def parse_image_ref(text: str, *, what: str = "image reference") -> ImageRef:
    """Parse ``registry/repository:tag``; a missing or empty tag is an error, never ``latest``."""
    text = text.strip()
    if not text:
        raise InputError(f"{what} is empty; give registry/repository:tag")
    last_component = text.rsplit("/", 1)[-1]
    name, colon, tag = last_component.rpartition(":")
    if not colon or "/" not in text:
        raise InputError(
            f"{what} {text!r} has no tag; give registry/repository:tag "
            "(a reference without a tag would mean 'latest')"
        )
    repository_text = text[: len(text) - len(last_component)] + name
    return with_tag(repository_text, tag, what=what)


def with_tag(repository_text: str, tag: str, *, what: str = "image reference") -> ImageRef:
    """Combine a ``registry/repository`` with a tag, validating both."""
    registry, repository = parse_repository(repository_text, what=what)
    if not tag:
        raise InputError(
            f"{what} {repository_text}: has an empty tag; "
            "refusing, since regctl would delete 'latest'"
        )
    if not is_valid_tag(tag):
        raise InputError(
            f"{what} {repository_text}:{tag} has an invalid tag {tag!r}: tags are 1-128 characters "
            "of A-Z a-z 0-9 _ . - and do not start with . or -"
        )
    return ImageRef(registry=registry, repository=repository, tag=tag)
