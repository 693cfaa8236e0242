#!/usr/bin/env python
"""Time nixos_containers inside a lab host, without SSH or the Ansible controller (benchmarks only).

Run by benchmarks/fleet.py through `labctl exec HOST -- env PYTHONPATH=<repo>/.build:<venv
site-packages> /usr/bin/python3 benchmarks/module_time.py`, with a JSON list of argument dicts
on stdin. Prints a Markdown table: the interpreter's start, importing the module in a fresh
interpreter, and the module's main() per case (in-process, through the fault suite's harness).
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests' / 'integration' / 'faults'))
from run_module_cases import run_case  # noqa: E402  (the fault suite's in-process harness)

RUNS = 5
MODULE = 'ansible_collections.nixfleet.containers.plugins.modules.nixos_containers'


def median_wall(func, runs=RUNS):
    times = []
    for dummy in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    cases = json.load(sys.stdin)
    print('| what (inside host1, median of %d) | s |' % RUNS)
    print('|---|---|')
    bare = median_wall(lambda: subprocess.run([sys.executable, '-c', 'pass'], check=True))
    print('| start and stop /usr/bin/python3 | %.3f |' % bare)
    imported = median_wall(lambda: subprocess.run([sys.executable, '-c', 'import ' + MODULE], check=True))
    print('| the same, importing nixos_containers (its module_utils, ansible.module_utils.basic) | %.3f |' % imported)
    for args in cases:
        result = run_case('nixos_containers', args)
        if result.get('failed') or result.get('changed') or 'harness_error' in result:
            sys.exit('not a no-op: %s' % json.dumps(result)[:2000])
        seconds = median_wall(lambda case=args: run_case('nixos_containers', case))
        print('| main(), %d containers, no-op%s | %.3f |' % (
            len(args['containers']), ', check mode (the rollout\'s plan)' if args.get('_ansible_check_mode') else '',
            seconds))


if __name__ == '__main__':
    main()
