"""What every static check of deploy/ shares: paths, the list of problems found, image pins."""

from __future__ import annotations

from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "kubernetes"
RULES = DEPLOY / "prometheus" / "cqlpulse-rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "cqlpulse-rules.test.yml"
METRICS_PORT = 9464
SPEC_PATH = "/etc/cqlpulse/spec.toml"

problems: list[str] = []


def bad(msg: str) -> None:
    problems.append(msg)


def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


# ------------------------------------------------------------------------------- images

def image_tag(ref: str) -> str | None:
    """The tag of an image reference (None when untagged); a digest counts as a tag."""
    if "@" in ref:
        return ref.split("@", 1)[1]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def check_pinned(where: str, ref: str) -> None:
    tag = image_tag(ref)
    if not tag:
        bad(f"{where}: image {ref!r} has no tag (pin an explicit version)")
    elif tag == "latest" or "$" in tag:
        bad(f"{where}: image {ref!r} is not pinned to an explicit version")
