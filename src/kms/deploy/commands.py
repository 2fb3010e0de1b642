"""``kms init``, ``kms render``, ``kms lint``, ``kms images``, ``kms deploy`` and ``kms status``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kms.deploy.model import PROFILES, Stack

__all__ = ["register"]


def _stack_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", default=None, help="stack file (default: ./kms.yaml if present, else defaults)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="profile (default: the stack file's)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a stack file key, e.g. --set loki.write_replicas=5 (repeatable)")


def _load(args: argparse.Namespace) -> Stack:
    from kms.deploy.load import load_stack

    path = args.config or ("kms.yaml" if Path("kms.yaml").is_file() else None)
    return load_stack(path, args.sets)


def _init(args: argparse.Namespace) -> int:
    from kms.deploy.init import STACK_FILE

    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"kms: {out} exists; use --force to overwrite it", file=sys.stderr)
        return 1
    out.write_text(STACK_FILE)
    print(f"wrote {out}; edit it, then: kms render --config {out} -o rendered")
    return 0


def _render(args: argparse.Namespace) -> int:
    from kms.deploy.render import render

    stack = _load(args)
    result = render(stack, Path(args.output), args.profile)
    for f in result.findings:
        print(f, file=sys.stderr)
    for part in result.parts:
        where = Path(args.output) / part.path if part.path else Path(args.output)
        print(f"{where}/chart: umbrella chart with {len(part.releases)} dependencies "
              f"({', '.join(r.alias for r in part.releases)}) and {len(part.objects)} own objects")  # fmt: skip
    print(f"wrote {len(result.files)} files under {args.output}")
    return 0


def _lint(args: argparse.Namespace) -> int:
    from kms.deploy.lint import lint_paths

    findings, problems = lint_paths([Path(f) for f in args.files], args.registry or "")
    for p in problems:
        print(f"{p}", file=sys.stderr)
    for f in findings:
        print(f)
    errors = sum(f.severity == "error" for f in findings) + len(problems)
    warnings = sum(f.severity == "warning" for f in findings)
    print(f"{errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors else 0


def _images(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kms.deploy.images import rewrite
    from kms.deploy.profiles import build
    from kms.deploy.render import part_images

    stack = _load(args)
    registry = args.registry or stack.registry
    seen: dict[str, None] = {}
    # The images as upstream publishes them; with a registry, each with its mirrored name.
    for part in build(replace(stack, registry=""), args.profile):
        for ref in part_images(part):
            seen.setdefault(f"{ref} {rewrite(ref, registry)}" if registry else ref)
    print("\n".join(seen))
    return 0


def _contexts(values: list[str]) -> dict[str, str]:
    """``--context CTX`` (every cluster) or ``--context CLUSTER=CTX`` (repeatable)."""
    out = {}
    for v in values:
        cluster, _, ctx = v.rpartition("=")
        out[cluster] = ctx
    return out


def _context_for(contexts: dict[str, str], cluster: str) -> str:
    return contexts.get(cluster, contexts.get("", ""))


def _deploy(args: argparse.Namespace) -> int:
    from kms.deploy.execute import SubprocessRunner, execute
    from kms.deploy.plan import part_steps
    from kms.deploy.render import render

    stack = _load(args)
    out = Path(args.output)
    result = render(stack, out, args.profile)
    contexts = _contexts(args.context)
    steps = []
    for part in result.parts:  # central part first, then the workload clusters
        steps += part_steps(part, out / part.path if part.path else out, context=_context_for(contexts, part.stack.cluster),
                            timeout=args.timeout, verify=not args.skip_verify)  # fmt: skip
    return execute(steps, args.runner or SubprocessRunner(), print, dry_run=args.dry_run)


def _status(args: argparse.Namespace) -> int:
    from kms.deploy.execute import SubprocessRunner, status
    from kms.deploy.profiles import build

    stack = _load(args)
    contexts = _contexts(args.context)
    code = 0
    for part in build(stack, args.profile):
        print(f"== {part.path or part.stack.cluster} ({part.stack.namespace})")
        releases = [f"{part.stack.name}-{r.alias}" for r in part.releases]
        code = max(code, status(releases, part.stack.namespace, _context_for(contexts, part.stack.cluster),
                                args.runner or SubprocessRunner(), print))  # fmt: skip
    return code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write a commented stack file (kms.yaml) for kms render")
    p.add_argument("-o", "--output", default="kms.yaml", metavar="FILE", help="file to write (default ./kms.yaml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run=_init)

    p = sub.add_parser(
        "render", help="render the stack for Kubernetes: umbrella Helm chart, values per chart, manifests",
        description="Render a profile of the stack file into DIR: chart/ (umbrella chart with pinned dependencies, "
                    "values.yaml, own templates, embedded dashboards), values/<chart>.yaml, manifests/*.yaml and "
                    "images.txt; multi-cluster writes central/ and clusters/<name>/. The output is linted first and "
                    "nothing is written when lint finds an error.")  # fmt: skip
    _stack_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.set_defaults(run=_render)

    p = sub.add_parser(
        "lint", help="check collector configs, chart values, Grafana provisioning and manifests",
        description="Static checks with the file, line, problem and fix. Exit 1 when an error is found, "
                    "0 with only warnings or nothing. Directories are searched for *.yaml (Helm templates skipped).")  # fmt: skip
    p.add_argument("files", nargs="+", metavar="FILE", help="files or directories")
    p.add_argument("--registry", default="", help="air-gapped: every image must come from this registry")
    p.set_defaults(run=_lint)

    p = sub.add_parser("images", help="list every image of the rendered stack (with --registry: source and rewritten)")
    _stack_args(p)
    p.add_argument("--registry", default="", help="private registry: print `SOURCE TARGET` pairs for mirroring")
    p.set_defaults(run=_images)

    p = sub.add_parser(
        "deploy", help="render, then install the stack with helm and kubectl in order, and verify it",
        description="Render into DIR, then install per chart in order (operators and CRDs, object store, "
                    "storage engines, collectors, Grafana), apply the own objects server-side, wait for "
                    "readiness and run kms verify through kubectl port-forwards. Needs helm and kubectl.")  # fmt: skip
    _stack_args(p)
    p.add_argument("-o", "--output", default="kms-rendered", metavar="DIR", help="render into DIR (default ./kms-rendered)")
    p.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    p.add_argument("--context", action="append", default=[], metavar="[CLUSTER=]CONTEXT",
                   help="kube context (for every cluster, or per cluster name; repeatable)")
    p.add_argument("--timeout", default="10m", help="helm --wait and rollout timeout (default 10m)")
    p.add_argument("--skip-verify", action="store_true", help="do not run kms verify after installing")
    p.set_defaults(run=_deploy, runner=None)

    p = sub.add_parser("status", help="helm release and pod readiness of a deployed stack")
    _stack_args(p)
    p.add_argument("--context", action="append", default=[], metavar="[CLUSTER=]CONTEXT", help="kube context")
    p.set_defaults(run=_status, runner=None)
