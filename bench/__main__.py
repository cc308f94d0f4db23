"""``python -m bench``: run every benchmark, print every figure, write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from bench import coldstart, scale, webhooks
from bench.report import Section, console, machine, markdown
from paygate_dev import ROOT
from paygate_dev.dynamodb_local import DynamoDBLocal

DOCS = ROOT / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples; does not rewrite the docs")
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    # Local, obviously fake credentials: nothing here may reach a real AWS account.
    os.environ.update(
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - DynamoDB Local only
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_NAMESPACE="paygate",
    )
    os.environ.pop("AWS_PROFILE", None)
    info = machine()
    started = time.perf_counter()
    sections: list[Section] = []
    authorizer_figures = None
    with DynamoDBLocal() as ddb:
        try:
            from bench import authorizer

            section, authorizer_figures = authorizer.run(ddb, 200 if args.quick else 2000)
            sections.append(section)
        except (ImportError, KeyError) as exc:
            sections.append(Section("Authorizer decision (warm, in-process)", f"Not measured: {exc!r}"))
        hooks, webhook_figures = webhooks.run(ddb, 100 if args.quick else 1000)
    sections.append(coldstart.run(3 if args.quick else 11, {}))
    sections.append(hooks)
    cost = Section("Scale on paper", "A month's bill for the parts paygate adds, from the figures above.")
    cost.extra.append(scale.model(authorizer_figures, webhook_figures))
    sections.append(cost)
    seconds = time.perf_counter() - started
    print(console(sections))
    verdicts = [f for s in sections for f in s.figures if f.met is not None]
    missed = [f.name for f in verdicts if f.met is False]
    print(f"\n{len(verdicts) - len(missed)} of {len(verdicts)} targets met in {seconds:.0f} s.")
    if missed:
        print("Missed: " + "; ".join(missed))
    if not (args.quick or args.no_docs):
        command = "python -m bench"
        DOCS.write_text(markdown(sections, info, command, seconds))
        with contextlib.suppress(ValueError):
            print(f"Wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
