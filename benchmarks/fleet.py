#!/usr/bin/env python
"""Fleet benchmarks against the lab (issue 7 item 2). Prints tables; asserts nothing about time.

Usage (root, the lab of NIXFLEET_LAB_ID up with 3 hosts, e.g. `tests/lab/labctl up --hosts 3`):
    NIXFLEET_LAB_ID=6 .venv/bin/python benchmarks/fleet.py [--count 50] [--runs 3] [--skip-fleet]
(a) no-op converge of COUNT containers on every host: one nixos_containers call per host vs a
    one-task ping playbook vs a naive loop of `nixos-container status NAME` commands, each as a
    ratio to ping, with SSH pipelining on (the lab default) and off;
(b) changed runs with 1, 10 and COUNT changed containers per host;
(c) in-process: allocating 250 address pairs (_addressing) and planning 500 containers (_plan).
Containers are created with state=present (not started) and destroyed at the end.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / '.build'))
from containers_noop import LABCTL, run_play  # noqa: E402  (the shared helpers)

HOSTS = 'all'


def fleet_play(task, hosts=HOSTS):
    return json.dumps([dict(hosts=hosts, gather_facts=False, tasks=[task])])


def specs(count, config='services.nginx.enable = true;'):
    return [dict(name='c%d' % i, config=config, state='present') for i in range(count)]


def containers_task(items):
    return dict(name='set', **{'nixfleet.containers.nixos_containers': dict(containers=items)})


def timed(text, env, runs, expect_changed=None):
    times = []
    for dummy in range(runs):
        elapsed, stdout = run_play(text, env)
        if expect_changed is not None and ('changed=%d' % expect_changed) not in stdout:
            sys.exit('unexpected change count (wanted changed=%d):\n%s' % (expect_changed, stdout[-2000:]))
        times.append(elapsed)
    return statistics.median(times), times


def row(label, median, times, base=None):
    ratio = '%.2fx' % (median / base) if base else ''
    print('| %-48s | %7.2f | %-22s | %7s |' % (label, median, ' '.join('%.2f' % t for t in times), ratio))


def fleet(args, env):
    items = specs(args.count)
    one_call = fleet_play(containers_task(items))
    ping = fleet_play(dict(name='ping', **{'ansible.builtin.ping': {}}))
    status_argv = ['nixos-container', 'status', '{{ item }}']
    naive = fleet_play({'name': 'naive', 'ansible.builtin.command': {'argv': status_argv},
                        'changed_when': False, 'loop': [s['name'] for s in items]})
    start = time.monotonic()
    run_play(one_call, env)
    print('create %d containers on each host (one call per host): %.2f s\n' % (args.count, time.monotonic() - start))
    try:
        print('(a) no-op converge, %d hosts x %d containers, median of %d' % (3, args.count, args.runs))
        print('| %-48s | %7s | %-22s | %7s |' % ('run', 'median s', 'runs', 'vs ping'))
        for pipelining in ('True', 'False'):
            penv = dict(env, ANSIBLE_PIPELINING=pipelining)
            base, times = timed(ping, penv, args.runs, expect_changed=0)
            row('ping playbook, pipelining=%s' % pipelining, base, times, base)
            med, times = timed(one_call, penv, args.runs, expect_changed=0)
            row('nixos_containers no-op, pipelining=%s' % pipelining, med, times, base)
            med, times = timed(naive, penv, args.runs, expect_changed=0)
            row('naive command loop, pipelining=%s' % pipelining, med, times, base)
        print('\n(b) changed runs (each run changes N containers per host, then a no-op)')
        print('| %-48s | %7s | %-22s | %7s |' % ('run', 'median s', 'runs', ''))
        for changed in sorted({1, 10, args.count}):
            times = []
            for run in range(args.runs):
                config = 'environment.etc."bench".text = "%d";' % run
                edited = [dict(s, config=config) if i < changed else s for i, s in enumerate(items)]
                times.append(run_play(fleet_play(containers_task(edited)), env)[0])
                run_play(one_call, env)   # back to the baseline (not timed)
            row('%d changed of %d per host' % (changed, args.count), statistics.median(times), times)
    finally:
        absent = [dict(name=s['name'], state='absent') for s in items]
        run_play(fleet_play(containers_task(absent)), env)


def in_process(runs):
    from ansible_collections.nixfleet.containers.plugins.module_utils import _addressing, _plan
    print('\n(c) in-process (median of %d)' % runs)
    for label, func in (('allocate 250 address pairs', lambda: _bench_allocate(_addressing)),
                        ('plan 500 containers', lambda: _bench_plan(_plan))):
        times = []
        for dummy in range(runs):
            start = time.perf_counter()
            func()
            times.append(time.perf_counter() - start)
        print('| %-48s | %9.1f ms |' % (label, statistics.median(times) * 1000))


def _bench_allocate(_addressing):
    """250 pairs one after the other, each seeing every address handed out before it (as
    IPv4Address objects, the way the module's claimed set holds them)."""
    used = set()
    for dummy in range(250):
        used |= set(_addressing.allocate_pair(used))
    return used


def _bench_plan(_plan):
    """500 containers: a third missing, a third unchanged, a third with a changed conf and guest."""
    plans = []
    for i in range(500):
        conf = {'PRIVATE_NETWORK': '1', 'HOST_ADDRESS': '10.233.%d.1' % (i % 254 + 1),
                'LOCAL_ADDRESS': '10.233.%d.2' % (i % 254 + 1), 'HOST_BRIDGE': '', 'HOST_PORT': '',
                'AUTO_START': '0'}
        desired = dict(state='started', conf=dict(conf), extra='services.nginx.enable = true;', restart=False,
                       recreate=False, rollback=False, rebuild=False)
        current = None if i % 3 == 0 else dict(
            name='c%d' % i, kind='imperative', conf=dict(conf, AUTO_START='1' if i % 3 == 2 else '0'),
            extra_config='services.nginx.enable = %s;' % ('true' if i % 3 == 1 else 'false'),
            configuration_nix='...', running=True, system_path='/nix/store/a-system', generation=1)
        plans.append(_plan.plan(current, desired))
    return plans


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=50)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--skip-fleet', action='store_true', help='only the in-process figures')
    args = parser.parse_args()
    with open('/proc/loadavg') as loadavg:
        load = loadavg.read().split()[:3]
    print('machine: nproc=%d kernel=%s load=%s' % (os.cpu_count(), os.uname().release, load))
    if not args.skip_fleet:
        inventory = subprocess.run([str(LABCTL), 'inventory'], capture_output=True, text=True,
                                   check=True).stdout.strip()
        env = dict(os.environ, ANSIBLE_CONFIG=str(Path(inventory).with_name('ansible.cfg')))
        fleet(args, env)
    in_process(args.runs)
    print('load after: %s' % open('/proc/loadavg').read().split()[:3])


if __name__ == '__main__':
    main()
