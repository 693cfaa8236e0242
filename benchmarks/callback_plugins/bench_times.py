# Copyright: (c) nixfleet.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark-only callback: when each task started and each host's result arrived."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: bench_times
type: aggregate
short_description: Record task and per-host result times as JSON (benchmarks only)
description:
  - Writes one JSON document to the file named by E(NIXFLEET_BENCH_TIMES) at the end of the run
    (wall-clock times from C(time.time()) in the controller's main process), plus the fact
    C(container_fleet_summary) when a task set it. Used by C(benchmarks/fleet.py); not part of
    the collection's content.
requirements:
  - the environment variable E(NIXFLEET_BENCH_TIMES)
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


def _attribute(result, name):
    # ansible-core 2.19 names them host/task/result; older cores only _host/_task/_result
    value = getattr(result, name, None)
    return value if value is not None else getattr(result, '_' + name)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_times'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._doc = dict(loaded=time.time(), tasks=[], summary=None)

    def v2_playbook_on_start(self, playbook):
        self._doc['playbook_start'] = time.time()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._doc['tasks'].append(dict(name=task.get_name(), action=task.action, start=time.time(), hosts={}))

    def v2_playbook_on_include(self, included_file):
        self._doc['tasks'].append(dict(name='include ' + str(getattr(included_file, '_filename', '')), action='include',
                                       start=time.time(), hosts={}))

    def v2_runner_on_start(self, host, task):
        if self._doc['tasks']:
            self._doc['tasks'][-1]['hosts'].setdefault(host.get_name(), {})['start'] = time.time()

    def _record(self, result, status):
        now = time.time()
        if not self._doc['tasks']:
            return
        entry = self._doc['tasks'][-1]['hosts'].setdefault(_attribute(result, 'host').get_name(), {})
        entry.update(end=now, status=status, changed=bool(_attribute(result, 'result').get('changed')))
        facts = _attribute(result, 'result').get('ansible_facts') or {}
        if 'container_fleet_summary' in facts:
            self._doc['summary'] = facts['container_fleet_summary']

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        self._doc['stats'] = time.time()
        path = os.environ.get('NIXFLEET_BENCH_TIMES')
        if path:
            with open(path, 'w', encoding='utf-8') as stream:
                json.dump(self._doc, stream, default=str)
