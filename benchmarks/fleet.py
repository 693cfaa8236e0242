#!/usr/bin/env python
"""Fleet benchmarks against the lab (issue 7 item 2). Prints tables; asserts nothing about time.

Usage (root, the lab of NIXFLEET_LAB_ID up with 3 hosts, e.g. `tests/lab/labctl up --hosts 3`):
    NIXFLEET_LAB_ID=6 .venv/bin/python benchmarks/fleet.py [--count 50] [--runs 3]
        [--skip-fleet] [--skip-noop] [--skip-changed] [--skip-profile] [--changed 1,10,50] [--phases]
The hosts' containers are the inventory variable `containers` (a generated group_vars file
beside a copy of the lab's inventory), as a user's fleet would be; every container is
created with state=present (built, not started), so creating and changing them stays cheap.
(a) no-op converge of COUNT containers on every host, with SSH pipelining on and off and
    forks 5 and 10 (both above the 3 hosts): the rollout playbook (nixfleet.containers.rollout)
    vs a one-task ping playbook vs one nixos_containers call per host vs the naive loop of
    `nixos-container status NAME` commands, each as a ratio to ping (runs interleaved);
(b) changed runs with 1, 10 and COUNT (or --changed) changed containers per host: the rollout
    playbook (default canary batches, and one batch of 100%) and one nixos_containers call per
    host; --phases adds each run's slow phases;
(p) profile of a no-op: each task's share of the wall time (the bench_times callback), the
    remote Python time of the module runs (benchmarks/timed_python as the interpreter), and
    the module measured inside host1 (benchmarks/module_time.py);
(c) in-process: allocating 250 address pairs (_addressing) and planning 500 containers (_plan).
The containers are destroyed at the end.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / '.build'))
from containers_noop import LABCTL, PLAYBOOK, REPO  # noqa: E402  (the shared paths)

HOSTS = ('host1', 'host2', 'host3')
NGINX = 'services.nginx.enable = true;'
ROLLOUT = 'nixfleet.containers.rollout'   # the collection's playbook, run as users run it
TIMED_PYTHON = HERE / 'timed_python'
PYTHON_LOG = '/tmp/nixfleet-bench-python.log'   # inside each host (per-host /tmp)


def play(*tasks):
    return [dict(hosts='nixos_hosts', gather_facts=False, tasks=list(tasks))]


PLAYS = {
    'ping': play({'name': 'ping', 'ansible.builtin.ping': {}}),
    'one_call': play({'name': 'set', 'nixfleet.containers.nixos_containers': {'containers': '{{ containers }}'}}),
    'naive': play({'name': 'naive', 'ansible.builtin.command': {'argv': ['nixos-container', 'status', '{{ item }}']},
                   'changed_when': False, 'loop': "{{ containers | map(attribute='name') }}"}),
}
LABELS = {'ping': 'ping playbook', 'rollout': 'rollout playbook (role)', 'one_call': 'one nixos_containers call',
          'naive': 'naive command loop'}


class Run:
    def __init__(self, start, elapsed, cpu, proc, doc):
        self.start, self.elapsed, self.cpu, self.doc = start, elapsed, cpu, doc
        self.stdout, self.stderr = proc.stdout, proc.stderr

    def recap_changed(self):
        """changed=N of every host in the recap."""
        found = {}
        for line in self.stdout.splitlines():
            words = line.split()
            if len(words) > 2 and words[0] in HOSTS and words[1] == ':':
                found[words[0]] = int(line.split('changed=')[1].split()[0])
        return found


class Bench:
    """A copy of the lab's inventory with the fleet spec in group_vars, and the plays as files."""

    def __init__(self, count):
        self.count = count
        self.dir = Path(tempfile.mkdtemp(prefix='nixfleet-bench-'))
        inventory = Path(subprocess.run([str(LABCTL), 'inventory'], capture_output=True, text=True,
                                        check=True).stdout.strip())
        (self.dir / 'group_vars').mkdir()
        shutil.copy(inventory, self.dir / 'inventory.yml')
        self.times = self.dir / 'times.json'
        self.env = dict(os.environ, ANSIBLE_CONFIG=str(inventory.with_name('ansible.cfg')),
                        ANSIBLE_INVENTORY=str(self.dir / 'inventory.yml'),
                        ANSIBLE_CALLBACK_PLUGINS=str(HERE / 'callback_plugins'),
                        ANSIBLE_CALLBACKS_ENABLED='bench_times', NIXFLEET_BENCH_TIMES=str(self.times))
        self.playbooks = {'rollout': ROLLOUT}
        for name, text in PLAYS.items():
            path = self.dir / (name + '.yml')
            path.write_text(json.dumps(text))
            self.playbooks[name] = str(path)
        self.write_spec({})

    def write_spec(self, configs, state='present'):
        """The fleet spec: COUNT containers on every host; configs maps an index to another config."""
        self.spec = [dict(name='c%d' % i, config=configs.get(i, NGINX), state=state) for i in range(self.count)]
        (self.dir / 'group_vars' / 'nixos_hosts.yml').write_text(json.dumps(dict(containers=self.spec)))

    def run(self, name, env=None, args=()):
        if self.times.exists():
            self.times.unlink()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.time()
        proc = subprocess.run([PLAYBOOK, self.playbooks[name]] + list(args), env=dict(self.env, **(env or {})),
                              capture_output=True, text=True, check=False)
        elapsed = time.time() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU of ansible-playbook and its forks (the controller); the hosts' processes are not ours
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        if proc.returncode != 0:
            sys.exit('%s failed:\n%s\n%s' % (name, proc.stdout[-3000:], proc.stderr[-3000:]))
        doc = json.loads(self.times.read_text()) if self.times.exists() else None
        return Run(start, elapsed, cpu, proc, doc)

    def cleanup(self):
        shutil.rmtree(str(self.dir), ignore_errors=True)


def check_noop(name, run, count):
    changed = run.recap_changed()
    if sorted(changed) != list(HOSTS) or any(changed.values()):
        sys.exit('%s was not a no-op on every host: %s\n%s' % (name, changed, run.stdout[-2000:]))
    if name == 'rollout':
        check_summary(run, {'unchanged': count})


def check_summary(run, outcomes):
    """The rollout's summary (taken by the bench_times callback) says what was asked."""
    summary = run.doc and run.doc.get('summary')
    if not summary or summary['result'] != 'success':
        sys.exit('the rollout did not succeed: %s' % json.dumps(summary)[:2000])
    for host in HOSTS:
        counts = {}
        for item in summary['hosts'][host]['containers'].values():
            counts[item['outcome']] = counts.get(item['outcome'], 0) + 1
        if counts != outcomes:
            sys.exit('%s: outcomes %s, wanted %s' % (host, counts, outcomes))


def header(*columns):
    print('| ' + ' | '.join(columns) + ' |')
    print('|' + '|'.join('---' for dummy in columns) + '|')


def fmt(times):
    return ' '.join('%.2f' % t for t in times)


def noop(bench, runs, sets):
    """(a): every set of settings, the four playbooks interleaved run by run. Returns the rollout
    and ping runs of the first set (the profile uses them)."""
    print('\n(a) no-op converge, %d hosts x %d containers, median of %d (runs interleaved)\n' % (
        len(HOSTS), bench.count, runs))
    header('playbook', 'pipelining', 'forks', 'median s', 'runs s', 'vs ping', 'naive / this', 'controller CPU s')
    kept = {}
    for pipelining, forks in sets:
        env = dict(ANSIBLE_PIPELINING=pipelining, ANSIBLE_FORKS=str(forks))
        results = dict((name, []) for name in LABELS)
        for dummy in range(runs):
            for name in LABELS:
                run = bench.run(name, env)
                check_noop(name, run, bench.count)
                results[name].append(run)
        medians = dict((name, statistics.median(r.elapsed for r in rs)) for name, rs in results.items())
        for name in LABELS:
            print('| %s | %s | %d | %.2f | %s | %.2fx | %.1fx | %.2f |' % (
                LABELS[name], pipelining, forks, medians[name], fmt(r.elapsed for r in results[name]),
                medians[name] / medians['ping'], medians['naive'] / medians[name],
                statistics.median(r.cpu for r in results[name])))
        if not kept:
            kept = results
    return kept


def changed_runs(bench, runs, numbers, phases=False):
    """(b): each timed run changes the first N containers of every host (a new text each run,
    so each is a real update); an untimed run then brings them back to the baseline."""
    print('\n(b) changed runs, %d hosts x %d containers, N changed per host, median of %d\n' % (
        len(HOSTS), bench.count, runs))
    header('N changed per host', 'how', 'median s', 'runs s', 'batches', 'median / (N x hosts) s', 'controller CPU s')
    methods = (('rollout, default batches [1, "25%", "100%"]', 'rollout', ()),
               ('rollout, batches ["100%"]', 'rollout', ('-e', '{"container_fleet_batches": ["100%"]}')),
               ('one nixos_containers call', 'one_call', ()))
    counter, kept = 0, []
    for number in numbers:
        for label, name, args in methods:
            times, cpu, batches, done = [], [], None, []
            for dummy in range(runs):
                counter += 1
                text = 'environment.etc."bench".text = "%d";' % counter
                bench.write_spec(dict((i, NGINX + ' ' + text) for i in range(number)))
                run = bench.run(name, args=args)
                if name == 'rollout':
                    wanted = {'updated': number, 'unchanged': bench.count - number}
                    check_summary(run, dict((k, v) for k, v in wanted.items() if v))
                    batches = len(run.doc['summary']['batches'])
                elif set(run.recap_changed().values()) != {1}:
                    sys.exit('%s did not change every host:\n%s' % (label, run.stdout[-2000:]))
                times.append(run.elapsed)
                cpu.append(run.cpu)
                done.append(run)
            kept.append(('%d changed per host, %s' % (number, label), done))
            bench.write_spec({})
            bench.run('one_call')   # back to the baseline (not timed)
            median = statistics.median(times)
            print('| %d | %s | %.2f | %s | %s | %.3f | %.2f |' % (
                number, label, median, fmt(times), batches or '-', median / (number * len(HOSTS)), statistics.median(cpu)))
    if phases:
        for label, done in kept:
            print('\nphases of the changed runs: %s (median of %d; phases of 0.2 s and more)\n' % (label, len(done)))
            header('phase', 'median s')
            for name, seconds in task_shares(done):
                if seconds >= 0.2:
                    print('| %s | %.2f |' % (name, seconds))


def task_shares(runs):
    """Median seconds per phase over runs: start-up, each task (from its start to the next
    task's start, so the phases add up to the wall time), and the end."""
    phases = {}
    for run in runs:
        tasks = run.doc['tasks']
        marks = [('start-up (python, config, inventory, playbook)', run.start, tasks[0]['start'])]
        seen = {}
        for task, after in zip(tasks, tasks[1:] + [None]):
            name = task['name'].replace('nixfleet.containers.container_fleet : ', '')
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:   # an include of batch.yml, once per batch
                name += ' (%d)' % seen[name]
            marks.append((name, task['start'], after['start'] if after else run.doc['stats']))
        marks.append(('recap and exit', run.doc['stats'], run.start + run.elapsed))
        for name, begin, end in marks:
            phases.setdefault(name, []).append(end - begin)
    return [(name, statistics.median(values)) for name, values in phases.items()]


def remote_python(bench, name, env, args=()):
    """One run with benchmarks/timed_python as the interpreter: per module task and host, the
    controller's time from the runner's start to the result, and the remote Python's share."""
    for host in HOSTS:
        labctl('exec', host, '--', 'rm', '-f', PYTHON_LOG)
    run = bench.run(name, env, ('-e', 'ansible_python_interpreter=%s' % TIMED_PYTHON) + tuple(args))
    spans = {}
    for host in HOSTS:
        spans[host] = [tuple(float(x) for x in line.split()[:2])
                       for line in labctl('exec', host, '--', 'cat', '/dev/null', PYTHON_LOG, check=False).splitlines()]
    rows = []
    for task in run.doc['tasks']:
        for host, seen in sorted(task['hosts'].items()):
            if 'start' not in seen or 'end' not in seen:
                continue
            inside = [s for s in spans.get(host, []) if seen['start'] - 0.05 <= s[0] and s[1] <= seen['end'] + 0.05]
            if inside:
                python = sum(e - s for s, e in inside)
                before = inside[0][0] - seen['start']
                rows.append((task['name'].replace('nixfleet.containers.container_fleet : ', ''), host,
                             seen['end'] - seen['start'], before, python, seen['end'] - inside[-1][1]))
    return rows


def labctl(*args, **kwargs):
    return subprocess.run([str(LABCTL)] + list(args), capture_output=True, text=True, check=kwargs.get('check', True)).stdout


def module_inside(bench):
    """benchmarks/module_time.py inside host1: the plan of the no-op run measured there, with the
    AnsiballZ file Ansible sends for it (kept: pipelining off, ANSIBLE_KEEP_REMOTE_FILES)."""
    bench.run('one_call', dict(ANSIBLE_KEEP_REMOTE_FILES='1', ANSIBLE_PIPELINING='False'), ('--check', '--limit', 'host1'))
    kept = labctl('exec', 'host1', '--', 'find', '/tmp/.ansible/tmp', '-name', 'AnsiballZ_nixos_containers.py').split()
    site = sorted((REPO / '.venv' / 'lib').glob('python3*/site-packages'))[0]
    cases = [dict(containers=bench.spec, _ansible_check_mode=True), dict(containers=bench.spec)]
    try:
        done = subprocess.run([str(LABCTL), 'exec', 'host1', '--', 'env', 'PYTHONPATH=%s:%s' % (REPO / '.build', site),
                               '/usr/bin/python3', str(HERE / 'module_time.py')] + kept[:1],
                              input=json.dumps(cases), capture_output=True, text=True, check=False)
    finally:
        for path in kept:
            labctl('exec', 'host1', '--', 'rm', '-rf', str(Path(path).parent))
    if done.returncode != 0:
        sys.exit('module_time.py failed:\n%s\n%s' % (done.stdout, done.stderr))
    table, result = done.stdout.split('RESULT ')
    return table, json.loads(result)


def ansiballz_builds(bench):
    """Ansible builds each module's AnsiballZ zip once per ansible-playbook run (its cache lives
    in the run's local tmp dir); the debug log brackets each build."""
    run = bench.run('rollout', dict(ANSIBLE_DEBUG='1'))
    builds, module, started, began = [], None, None, 0.0
    for line in (run.stdout + run.stderr).splitlines():
        words = line.split()
        if 'ANSIBALLZ: Lock acquired' in line and 'ansiballz_cache/' in line:
            module = line.split('ansiballz_cache/')[1].split('-')[0]
        elif 'ANSIBALLZ: Creating module' in line:
            started, began = module, float(words[1].rstrip(':'))
        elif 'ANSIBALLZ: Done creating module' in line and started:
            builds.append((started, float(words[1].rstrip(':')) - began))
            started = None
    return builds


def filters_in_process(bench, plan, runs):
    """The role's controller filters on plain data (3 hosts, each this spec and this plan), without
    Ansible's hostvars, templating and task machinery around them."""
    from ansible_collections.nixfleet.containers.plugins.filter import fleet_batches as filters
    hostvars = dict((host, dict(container_fleet_spec=bench.spec, container_fleet_plan=plan,
                                container_fleet_outcomes={})) for host in HOSTS)
    state = filters.fleet_batches(hostvars, HOSTS, HOSTS, [1, '25%', '100%'])
    summary = filters.fleet_summary(hostvars, HOSTS, HOSTS, state, False)
    header('filter (in-process, plain dicts, median of %d)' % max(runs, 5), 'ms')
    for label, func in (('fleet_batches (task "Order the fleet\'s changes into batches")',
                         lambda: filters.fleet_batches(hostvars, HOSTS, HOSTS, [1, '25%', '100%'])),
                        ('fleet_summary (task "Summarise the rollout")',
                         lambda: filters.fleet_summary(hostvars, HOSTS, HOSTS, state, False)),
                        ('fleet_report (task "Show the rollout\'s summary")', lambda: filters.fleet_report(summary))):
        times = []
        for dummy in range(max(runs, 5)):
            start = time.perf_counter()
            func()
            times.append(time.perf_counter() - start)
        print('| %s | %.1f |' % (label, statistics.median(times) * 1000))


def profile(bench, kept, runs):
    print('\n(p) where a no-op rollout spends its time (pipelining on, forks 5, median of %d)\n' % runs)
    header('phase', 'rollout median s', 'share')
    shares = task_shares(kept['rollout'])
    total = statistics.median(r.elapsed for r in kept['rollout'])
    for name, seconds in shares:
        print('| %s | %.3f | %.0f%% |' % (name, seconds, 100 * seconds / total))
    print('| (wall, median) | %.3f | |' % total)
    print('\nping playbook, the same phases:\n')
    header('phase', 'ping median s')
    for name, seconds in task_shares(kept['ping']):
        print('| %s | %.3f |' % (name, seconds))
    print('\nmodule tasks with benchmarks/timed_python as the interpreter (pipelining on, median of %d runs '
          'per host and task):\n' % runs)
    header('playbook', 'task', 'task s (controller: runner start to result)', 'before the remote Python s',
           'remote Python s', 'after s')
    for name, args, label in (('ping', (), ''), ('rollout', (), ''), ('one_call', (), ''),
                              ('rollout', ('--limit', 'host1'), ', --limit host1')):
        rows = {}
        for dummy in range(runs):
            for row in remote_python(bench, name, dict(ANSIBLE_PIPELINING='True'), args):
                rows.setdefault(row[0], []).append(row[2:])
        for task, values in rows.items():
            print('| %s%s | %s | %s |' % (LABELS[name], label, task, ' | '.join(
                '%.3f' % statistics.median(v[i] for v in values) for i in range(4))))
    print('\nAnsiballZ payloads built by the controller in one rollout no-op run (ANSIBLE_DEBUG timestamps):\n')
    header('module', 'build s')
    for module, seconds in ansiballz_builds(bench):
        print('| %s | %.3f |' % (module, seconds))
    print('\nthe same module run inside host1 (benchmarks/module_time.py: no SSH, no controller):\n')
    table, plan = module_inside(bench)
    print(table)
    filters_in_process(bench, plan, runs)


def in_process(runs):
    from ansible_collections.nixfleet.containers.plugins.module_utils import _addressing, _plan
    print('\n(c) in-process (median of %d)\n' % runs)
    header('what', 'median ms')
    for label, func in (('allocate 250 address pairs', lambda: _bench_allocate(_addressing)),
                        ('plan 500 containers', lambda: _bench_plan(_plan))):
        times = []
        for dummy in range(runs):
            start = time.perf_counter()
            func()
            times.append(time.perf_counter() - start)
        print('| %s | %.1f |' % (label, statistics.median(times) * 1000))


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


def load():
    with open('/proc/loadavg', encoding='ascii') as stream:
        return ' '.join(stream.read().split()[:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=50)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--skip-fleet', action='store_true', help='only the in-process figures')
    parser.add_argument('--skip-noop', action='store_true', help='no (a); the profile then makes its own runs')
    parser.add_argument('--skip-changed', action='store_true')
    parser.add_argument('--skip-profile', action='store_true')
    parser.add_argument('--changed', help='N changed per host, comma-separated (default 1,10,COUNT)')
    parser.add_argument('--phases', action='store_true', help='(b): also each changed run\'s slow phases')
    args = parser.parse_args()
    numbers = [int(n) for n in args.changed.split(',')] if args.changed else sorted({1, 10, args.count})
    numbers = [n for n in numbers if 0 < n <= args.count]
    print('machine: nproc=%d kernel=%s load=%s, %s' % (
        os.cpu_count(), os.uname().release, load(), time.strftime('%Y-%m-%d %H:%M')))
    if not args.skip_fleet:
        bench = Bench(args.count)
        try:
            start = time.time()
            bench.run('one_call')
            print('create %d containers on each host (one call per host): %.2f s' % (args.count, time.time() - start))
            sets = [('True', 5), ('True', 10), ('False', 5), ('False', 10)]
            if args.skip_noop and args.skip_profile:
                kept = None
            elif args.skip_noop:
                env = dict(ANSIBLE_PIPELINING='True', ANSIBLE_FORKS='5')   # the first set of (a)
                kept = dict((name, [bench.run(name, env) for dummy in range(args.runs)]) for name in ('ping', 'rollout'))
            else:
                kept = noop(bench, args.runs, sets)
            print('load: %s' % load())
            if not args.skip_profile:
                profile(bench, kept, args.runs)
                print('load: %s' % load())
            if not args.skip_changed:
                changed_runs(bench, args.runs, numbers, args.phases)
                print('load: %s' % load())
        finally:
            bench.write_spec({}, state='absent')
            bench.run('one_call')
            bench.cleanup()
    in_process(args.runs)
    print('\nload after: %s' % load())


if __name__ == '__main__':
    main()
