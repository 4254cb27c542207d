#!/usr/bin/env python3
"""Static checks of deploy/ that no off-the-shelf validator covers (run by scripts/check-deploy).

    static_checks.py compose      deploy/docker-compose.yml and the files it mounts
    static_checks.py dockerfile   deploy/Dockerfile and .dockerignore
    static_checks.py k8s          deploy/kubernetes: cross-resource consistency and the
                                  Prometheus Operator resources (no CRD schema is available
                                  offline, so they are checked structurally here); the
                                  Indexed Job variant in deploy/kubernetes-job
    static_checks.py rules-coverage
                                  every alert of cqlpulse-rules.yml is tested firing and not
                                  firing, every recording rule is evaluated, by the test file;
                                  every alert has a runbook entry in deploy/README.md
    static_checks.py spec FILE    print the TOML spec embedded in the ConfigMap to FILE after
                                  parsing it
    static_checks.py compose-spec BIN
                                  run `BIN check` on the compose cqlpulse service's spec with
                                  its environment overrides and flags (${VAR:-default} taken
                                  at the default)

Each prints one line per problem and exits 1 if there is any. Needs PyYAML.
"""

from __future__ import annotations

import sys
from pathlib import Path

from compose_checks import check_compose, check_compose_spec
from deploy_common import problems
from dockerfile_checks import check_dockerfile
from k8s_checks import check_job, check_k8s, spec_from_configmap
from rules_checks import check_rules_coverage


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd = sys.argv[1]
    if cmd == "compose":
        check_compose()
    elif cmd == "dockerfile":
        check_dockerfile()
    elif cmd == "k8s":
        check_k8s()
        check_job()
    elif cmd == "rules-coverage":
        check_rules_coverage()
    elif cmd == "compose-spec" and len(sys.argv) == 3:
        check_compose_spec(sys.argv[2])
    elif cmd == "spec" and len(sys.argv) == 3:
        spec_from_configmap(Path(sys.argv[2]))
    else:
        print(__doc__)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
