# Copyright: (c) nixfleet.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: record every task result as JSON lines for the pytest fixtures."""

from __future__ import annotations

DOCUMENTATION = r"""
name: nixfleet_results
type: aggregate
short_description: Record every task result as JSON lines (integration tests only)
description:
  - Appends one JSON object per task result (host, task, action, changed, failed, skipped,
    unreachable, the full result and its diff) to the file named by E(NIXFLEET_RESULTS_FILE),
    and at the end one object with the per-host recap.
  - Used by C(tests/integration/conftest.py); not part of the collection's content.
requirements:
  - the environment variable E(NIXFLEET_RESULTS_FILE)
"""

import json
import os

from ansible.plugins.callback import CallbackBase


def _attribute(result, name):
    # ansible-core 2.19 names them host/task/result; older cores only _host/_task/_result
    value = getattr(result, name, None)
    return value if value is not None else getattr(result, f"_{name}")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "nixfleet_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("NIXFLEET_RESULTS_FILE")

    def _write(self, record):
        if not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, default=str, sort_keys=True) + "\n")

    def _record(self, result, status, ignore_errors=False):
        task, data = _attribute(result, "task"), dict(_attribute(result, "result"))
        self._write({
            "kind": "result",
            "status": status,
            "host": _attribute(result, "host").get_name(),
            "task": task.get_name(),  # with the role prefix, as the default output shows it
            "name": str(task.name or ""),
            "action": task.action,
            "changed": bool(data.get("changed", False)),
            "failed": status == "failed",
            "ignored": bool(ignore_errors),
            "skipped": status == "skipped",
            "unreachable": status == "unreachable",
            "diff": data.get("diff"),
            "result": data,
        })

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed", ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        recap = {}
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            recap[host] = {"ok": summary["ok"], "changed": summary["changed"],
                           "failed": summary["failures"], "unreachable": summary["unreachable"],
                           "skipped": summary["skipped"]}
        self._write({"kind": "recap", "recap": recap})
