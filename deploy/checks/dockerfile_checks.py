"""Static checks of deploy/Dockerfile and .dockerignore, and of the dependency-cache stubs."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import tomllib
from pathlib import Path

from deploy_common import DEPLOY, DOCKERFILE, METRICS_PORT, REPO, SPEC_PATH, bad, check_pinned, rel


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    out = []
    buf = ""
    for line in text.splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue  # comment inside a continued instruction
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def check_dockerfile() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    ins = dockerfile_instructions(text)
    args: dict[str, str] = {}
    stages: list[dict] = []
    for word, rest in ins:
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"image": image, "name": name, "ins": []})
        elif stages:
            stages[-1]["ins"].append((word, rest))
    if len(stages) < 2:
        bad("Dockerfile: expected a multi-stage build (builder + runtime)")
        return
    names = {s["name"] for s in stages}
    for s in stages:
        if s["image"] not in names:
            check_pinned(f"Dockerfile: FROM {s['image']}", s["image"])
    builder = stages[0]
    if not re.fullmatch(r"rust:1\.\d+(\.\d+)?-bookworm", builder["image"]):
        bad(f"Dockerfile: builder should be rust:1.x-bookworm, got {builder['image']}")
    copies = [r for w, r in builder["ins"] if w == "COPY"]
    manifest = next((i for i, r in enumerate(copies) if "Cargo.toml" in r and "Cargo.lock" in r), None)
    src = next((i for i, r in enumerate(copies) if r.split()[0] == "src"), None)
    if manifest is None or src is None or manifest > src:
        bad("Dockerfile: copy Cargo.toml and Cargo.lock (dependency cache layer) before src/")
    for w, r in builder["ins"]:
        if w == "COPY" and not r.startswith("--from"):
            for item in r.split()[:-1]:
                if not (REPO / item).exists():
                    bad(f"Dockerfile: COPY source {item} does not exist in the build context")
    check_target_stubs(builder["ins"])
    runtimes = [s for s in stages[1:] if s["name"] != builder["name"]]
    for s in runtimes:
        where = f"Dockerfile stage {s['name'] or s['image']}"
        if not re.search(r"(debian:12[.\d]*-slim|debian:bookworm.*-slim|distroless/cc-debian12)",
                         s["image"]):
            bad(f"{where}: runtime should be Debian 12 (bookworm, the builder's glibc)")
        users = [r for w, r in s["ins"] if w == "USER"]
        if not users or users[-1].split(":")[0] in ("root", "0"):
            bad(f"{where}: must switch to a non-root USER")
        if str(METRICS_PORT) not in " ".join(r for w, r in s["ins"] if w == "EXPOSE"):
            bad(f"{where}: EXPOSE {METRICS_PORT} missing")
        entry = [r for w, r in s["ins"] if w == "ENTRYPOINT"]
        if not entry or json.loads(entry[-1]) != ["cqlpulse"]:
            bad(f'{where}: ENTRYPOINT should be ["cqlpulse"]')
        cmd = [r for w, r in s["ins"] if w == "CMD"]
        if not cmd or json.loads(cmd[-1])[:2] != ["run", SPEC_PATH]:
            bad(f'{where}: CMD should start with ["run", "{SPEC_PATH}"]')
        if not any(w == "COPY" and "--from=" + (builder["name"] or "0") in r for w, r in s["ins"]):
            bad(f"{where}: should copy the binary from the {builder['name']} stage")
        if "distroless" in s["image"]:
            if any(w == "HEALTHCHECK" for w, _ in s["ins"]):
                bad(f"{where}: distroless has no shell or curl for a HEALTHCHECK")
        elif not any(w == "HEALTHCHECK" for w, _ in s["ins"]):
            bad(f"{where}: a HEALTHCHECK on /healthz is expected")
    ignore = REPO / ".dockerignore"
    if not ignore.is_file():
        bad(".dockerignore is missing at the repository root (the build context)")
    else:
        pats = {l.strip().rstrip("/") for l in ignore.read_text().splitlines()
                if l.strip() and not l.startswith("#")}
        for must in ("target", ".git"):
            if must not in pats:
                bad(f".dockerignore should exclude {must}/")
        for needed in ("Cargo.toml", "Cargo.lock", "src"):
            if needed in pats or "*" in pats:
                bad(f".dockerignore excludes {needed}, which the image build needs")


STUBS = DEPLOY / "cargo-target-stubs.sh"


def declared_target_paths(manifest: dict) -> set[str]:
    """The source files cargo insists on when it parses the manifest: every explicit target's
    path, or cargo's default for its kind and name."""
    defaults = {"test": "tests/{}.rs", "example": "examples/{}.rs", "bench": "benches/{}.rs",
                "bin": "src/bin/{}.rs"}
    paths = set()
    for kind, pattern in defaults.items():
        for target in manifest.get(kind, []):
            paths.add(target.get("path") or pattern.format(target.get("name", "")))
    if "lib" in manifest:
        paths.add(manifest["lib"].get("path", "src/lib.rs"))
    return paths


def check_target_stubs(builder_ins: list[tuple[str, str]]) -> None:
    """The dependency-cache step (Cargo.toml and Cargo.lock only) must stub every target
    Cargo.toml declares, or cargo refuses the manifest and the image does not build."""
    runs = [r for w, r in builder_ins if w == "RUN"]
    first_build = next((i for i, r in enumerate(runs) if "cargo build" in r), None)
    if first_build is None or "cargo-target-stubs" not in runs[first_build]:
        bad("Dockerfile: the first cargo build must run after cargo-target-stubs (stubs for "
            "every target Cargo.toml declares)")
    manifest = tomllib.loads((REPO / "Cargo.toml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "Cargo.toml").write_text((REPO / "Cargo.toml").read_text())
        proc = subprocess.run(["sh", str(STUBS), "Cargo.toml"], cwd=scratch,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            bad(f"{rel(STUBS)} failed: {proc.stderr.strip()}")
            return
        for path in sorted(declared_target_paths(manifest)):
            if not (Path(scratch) / path).is_file():
                bad(f"{rel(STUBS)}: Cargo.toml declares a target at {path}, which it does not "
                    "stub (the image's dependency-cache step would fail to parse the manifest)")


def dockerfile_runtime_uid() -> int | None:
    ins = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    users = [r for w, r in ins if w == "USER"]
    try:
        return int(users[-1].split(":")[0]) if users else None
    except ValueError:
        return None
