#!/usr/bin/env python
"""No-op cost of N declared containers on one lab host: ONE nixos_containers call vs N
nixos_container calls in a loop. Prints figures (medians); asserts nothing about time.

Usage (root, the lab of NIXFLEET_LAB_ID up, e.g. `tests/lab/labctl up`):
    NIXFLEET_LAB_ID=7 .venv/bin/python benchmarks/containers_noop.py [--count 50] [--runs 3]
It creates N containers (state=present: created, not started; a no-op run reads the same
files and the same one systemctl call either way) on host1 and destroys them at the end.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABCTL = REPO / 'tests' / 'lab' / 'labctl'
PLAYBOOK = str(REPO / '.venv' / 'bin' / 'ansible-playbook')
NGINX = 'services.nginx.enable = true;'


def play(task, host='host1'):
    return json.dumps([dict(hosts=host, gather_facts=False, tasks=[task])])


def run_play(text, env):
    with tempfile.NamedTemporaryFile('w', suffix='.yml', delete=False) as handle:
        handle.write(text)
    try:
        start = time.monotonic()
        proc = subprocess.run([PLAYBOOK, handle.name], env=env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
    finally:
        os.unlink(handle.name)
    if proc.returncode != 0:
        sys.exit('ansible-playbook failed:\n%s\n%s' % (proc.stdout[-3000:], proc.stderr[-3000:]))
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=50)
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()
    inventory = subprocess.run([str(LABCTL), 'inventory'], capture_output=True, text=True, check=True).stdout.strip()
    env = dict(os.environ, ANSIBLE_CONFIG=str(Path(inventory).with_name('ansible.cfg')))
    specs = [dict(name='c%d' % i, config=NGINX, state='present') for i in range(args.count)]
    one_call = play(dict(name='set', **{'nixfleet.containers.nixos_containers': dict(containers=specs)}))
    loop = play({'name': 'loop', 'nixfleet.containers.nixos_container': '{{ item }}', 'loop': specs})
    try:
        elapsed = run_play(one_call, env)[0]
        print('create %d containers (one call): %.2f s' % (args.count, elapsed))
        results = {}
        for label, text in (('one nixos_containers call', one_call), ('%d nixos_container calls' % args.count, loop)):
            times = []
            for dummy in range(args.runs):
                elapsed, stdout = run_play(text, env)
                if 'changed=0' not in stdout:
                    sys.exit('%s was not a no-op:\n%s' % (label, stdout[-2000:]))
                times.append(elapsed)
            results[label] = statistics.median(times)
            print('no-op, %s: median %.2f s of %s' % (label, results[label], ', '.join('%.2f' % t for t in times)))
        medians = list(results.values())
        print('ratio: %.1fx' % (medians[1] / medians[0]))
    finally:
        absent = [dict(name=s['name'], state='absent') for s in specs]
        run_play(play(dict(name='destroy', **{'nixfleet.containers.nixos_containers': dict(containers=absent)})), env)


if __name__ == '__main__':
    main()
