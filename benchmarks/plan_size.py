#!/usr/bin/env python
"""What the size of the registered plan costs the rollout's controller tasks (A/B, benchmarks only).

Usage (root, the lab of NIXFLEET_LAB_ID up with 3 hosts):
    NIXFLEET_LAB_ID=6 .venv/bin/python benchmarks/plan_size.py [--count 50] [--runs 5]
Creates COUNT containers per host, takes host1's real no-op plan (nixos_containers in check
mode, run inside host1 by benchmarks/module_time.py) and a trimmed copy holding only what the
role's filters read (changed, and per container changed, action, reasons). A play sets either
one as every host's container_fleet_plan, then runs the role's two run_once filter tasks on
hostvars (fleet_batches, fleet_summary) and a trivial run_once set_fact. Prints each task's
median time per variant. The containers are destroyed at the end.
"""

import argparse
import json
import statistics

from fleet import Bench, header, load, module_inside


def ab_play(plan_file):
    return [dict(hosts='nixos_hosts', gather_facts=False, tasks=[
        {'name': 'set the plan', 'ansible.builtin.set_fact': {
            'container_fleet_plan': "{{ lookup('ansible.builtin.file', '%s') | from_json }}" % plan_file,
            'container_fleet_spec': '{{ containers }}'}},
        {'name': 'fleet_batches over hostvars', 'run_once': True, 'ansible.builtin.set_fact': {
            'bench_state': "{{ hostvars | nixfleet.containers.fleet_batches(ansible_play_hosts_all, "
                           "ansible_play_hosts, [1, '25%', '100%'], 0) }}"}},
        {'name': 'fleet_summary over hostvars', 'run_once': True, 'ansible.builtin.set_fact': {
            'bench_summary': "{{ hostvars | nixfleet.containers.fleet_summary(ansible_play_hosts_all, "
                             "ansible_play_hosts, bench_state, false) }}"}},
        {'name': 'a trivial set_fact', 'run_once': True, 'ansible.builtin.set_fact': {'bench_x': 1}},
    ])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=50)
    parser.add_argument('--runs', type=int, default=5)
    args = parser.parse_args()
    print('load: %s' % load())
    bench = Bench(args.count)
    try:
        bench.run('one_call')
        plan = module_inside(bench)[1]
        trimmed = dict(changed=plan['changed'], containers=dict(
            (name, dict(changed=entry['changed'], action=entry['action'], reasons=entry['reasons']))
            for name, entry in plan['containers'].items()))
        variants = {}
        for label, value in (('full plan', plan), ('trimmed plan', trimmed)):
            path = bench.dir / ('%s.json' % label.replace(' ', '_'))
            path.write_text(json.dumps(value))
            bench.playbooks[label] = str(bench.dir / ('%s.yml' % label.replace(' ', '_')))
            with open(bench.playbooks[label], 'w', encoding='utf-8') as stream:
                json.dump(ab_play(path), stream, default=str)
            variants[label] = (len(path.read_text()), {})
        for dummy in range(args.runs):
            for label, (size, phases) in variants.items():
                doc = bench.run(label).doc
                ends = [task['start'] for task in doc['tasks'][1:]] + [doc['stats']]
                for task, end in zip(doc['tasks'], ends):
                    phases.setdefault(task['name'], []).append(end - task['start'])
        print('\nA/B, %d hosts x %d containers, median of %d (seconds from the task\'s start to the next one\'s)\n' % (
            3, args.count, args.runs))
        names = list(next(iter(variants.values()))[1])
        header('plan fact per host', *names)
        for label, (size, phases) in variants.items():
            print('| %s, %d bytes | %s |' % (label, size, ' | '.join(
                '%.3f' % statistics.median(phases[name]) for name in names)))
    finally:
        bench.write_spec({}, state='absent')
        bench.run('one_call')
        bench.cleanup()
    print('\nload after: %s' % load())


if __name__ == '__main__':
    main()
