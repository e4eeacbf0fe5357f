"""How the CLI shows a scan report and an apply result (text or JSON)."""

import json

from patchgen.rules import Report

ACTION_WORDS = {
    "rewrite": "rewrite",
    "add": "add",
    "report": "report only",
    "none": "nothing to do",
    "done": "already done",
    "refuse": "not rewritable",
}


def report_text(report: Report) -> str:
    lines = [f"patchgen scan: {report.tree} (rule {report.rule})"]
    version = f"Linux {report.kernel_version}" if report.kernel_version else "unknown"
    eras = ", ".join(f"{name} {era}" for name, era in report.eras.items())
    lines.append(f"tree: {version}" + (f"; {eras}" if eras else ""))
    lines.append("")
    for finding in report.findings:
        era = f" [{finding.era}]" if finding.era else ""
        lines.append(f"{finding.location()}{era}: {finding.kind}, "
                     f"{ACTION_WORDS.get(finding.action, finding.action)}")
        lines.append(f"    {finding.message}")
    lines.append("")
    lines.append(f"verdict: {report.verdict}")
    lines.append(f"    {report.summary}")
    for number, subject in enumerate(report.steps, 1):
        lines.append(f"  {number}/{len(report.steps)} {subject}")
    return "\n".join(lines)


def report_json(report: Report, **extra) -> str:
    return json.dumps({**report.to_dict(), **extra}, indent=2)
