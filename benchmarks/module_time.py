#!/usr/bin/env python
"""Time nixos_containers inside a lab host, without SSH or the Ansible controller (benchmarks only).

Run by benchmarks/fleet.py through `labctl exec HOST -- env PYTHONPATH=<repo>/.build:<venv
site-packages> /usr/bin/python3 benchmarks/module_time.py [ANSIBALLZ_FILE]`, with a JSON list
of argument dicts on stdin. Prints a Markdown table: the interpreter's start; importing the
module in a fresh interpreter; the kept AnsiballZ file of a no-op plan (when given) run as
Ansible runs it (from a zip of sources, so every import compiles) and exploded with cached
bytecode; and the module's main() per case, in-process through the fault suite's harness. The last line is `RESULT <json>`: the first case's result.
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


def python(*argv):
    done = subprocess.run([sys.executable] + list(argv), capture_output=True, text=True, check=True)
    return done.stdout


def row(what, seconds):
    print('| %s | %.3f |' % (what, seconds))


def main():
    cases = json.load(sys.stdin)
    print('| what (inside host1, one process at a time, median of %d) | s |' % RUNS)
    print('|---|---|')
    row('start and stop /usr/bin/python3', median_wall(lambda: python('-c', 'pass')))
    row('the same, importing nixos_containers (its module_utils, ansible.module_utils.basic)',
        median_wall(lambda: python('-c', 'import ' + MODULE)))
    if len(sys.argv) > 1:
        ansiballz = sys.argv[1]
        output = json.loads(python(ansiballz))
        if output.get('failed') or output.get('changed'):
            sys.exit('the AnsiballZ file was not a no-op: %s' % json.dumps(output)[:2000])
        row('the kept AnsiballZ file of the plan, as Ansible runs it (unpack the zip, import its sources, run)',
            median_wall(lambda: python(ansiballz)))
        # `explode` unpacks it beside the file; after one warm-up `execute` imports cached bytecode
        python(ansiballz, 'explode')
        python(ansiballz, 'execute')
        row('the same payload exploded, with cached bytecode (AnsiballZ_... execute)',
            median_wall(lambda: python(ansiballz, 'execute')))
    first = None
    for args in cases:
        result = run_case('nixos_containers', args)
        if result.get('failed') or result.get('changed') or 'harness_error' in result:
            sys.exit('not a no-op: %s' % json.dumps(result)[:2000])
        first = first or result
        seconds = median_wall(lambda case=args: run_case('nixos_containers', case))
        row('main() in-process, %d containers, no-op%s' % (
            len(args['containers']), ', check mode (the rollout\'s plan)' if args.get('_ansible_check_mode') else ''),
            seconds)
    print('RESULT ' + json.dumps(first))


if __name__ == '__main__':
    main()
