# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure logic of the ``container_fleet`` role's rollout, as filters run on the controller.

The role keeps its state in host facts; these filters turn that state into the next step:

- ``fleet_batches``: every host's plan -> the batches of the fleet's changed containers
  (canary first, growing sizes, spread over the hosts round-robin, never two containers of one
  service group in a batch);
- ``fleet_gate``: a host's applied batch -> the health checks to run, per kind;
- ``fleet_outcomes``: a host's batch results (apply, checks) -> an outcome per container,
  with the module item that undoes it;
- ``fleet_undo`` / ``fleet_rolled_back``: what to roll back on a host, and the outcomes after it;
- ``fleet_progress``: after a batch, whether the rollout goes on (failures, lost hosts);
- ``fleet_summary`` / ``fleet_report``: the rollout's summary (the role's contract) and its text;
- ``fleet_order``: ``fleet_batches`` and, when no batch is to run, ``fleet_summary``, in one pass.

Documented in the ``fleet_*.yml`` files beside this one. Everything here is plain data in,
plain data out: the unit tests call these functions with dicts.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.nixfleet.containers.plugins.module_utils._options import CONF_OPTION_NAMES

# The conf options a container's facts carry (nixos_container's options_from_conf): restoring
# them undoes a change of the host side (addresses, ports, mounts, flags).
CONF_OPTIONS = CONF_OPTION_NAMES
MOVED = ('created', 'updated')
# Internal outcomes: the change failed (apply error) or its gate failed; both get rolled back.
BROKEN = ('failed', 'unhealthy')
CHECK_KINDS = ('http_host', 'http_controller', 'tcp', 'command')
# The facts the role keeps on each host (read through hostvars).
SPEC_FACT = 'container_fleet_spec'
PLAN_FACT = 'container_fleet_plan'
OUTCOMES_FACT = 'container_fleet_outcomes'


def _plain(value):
    """Ansible's lazy containers and tagged strings as plain dict/list/str."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Mapping):
        return dict((_plain(k), _plain(v)) for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [_plain(v) for v in value]
    return value


def _host_vars(hostvars, host, key, default=None):
    return _host_facts(hostvars, host, (key,), {key: default})[key]


def _host_facts(hostvars, host, keys, defaults=None):
    """{key: plain value or its default} of one host. ``hostvars[host]`` merges every variable of
    the host each time it is looked up, so it is looked up once for all the keys."""
    defaults = defaults or {}
    found = dict((key, defaults.get(key)) for key in keys)
    try:
        values = hostvars[host]
    except KeyError:
        return found
    for key in keys:
        try:
            value = values[key]
        except KeyError:
            continue
        if value is not None:
            found[key] = _plain(value)
    return found


# batches ------------------------------------------------------------------------------------

def batch_sizes(sizes, total):
    """The size of each batch for TOTAL changes: ints, or 'N%' of TOTAL (floor, at least 1).

    The last size repeats until the sizes add up to TOTAL (the last batch may be smaller).
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes:
        raise AnsibleFilterError('container_fleet_batches must be a non-empty list of sizes '
                                 '(integers or percentages such as "25%%"), got %r' % (sizes,))
    numbers = [size_of(size, total) for size in sizes]
    result = []
    left = total
    index = 0
    while left > 0:
        size = min(numbers[min(index, len(numbers) - 1)], left)
        result.append(size)
        left -= size
        index += 1
    return result


def size_of(size, total):
    """One entry of container_fleet_batches as a number of containers, for TOTAL changes."""
    text = str(size).strip() if not isinstance(size, bool) else ''
    number = None
    if text.endswith('%'):
        percent = _float(text[:-1])
        if percent is not None and 0 < percent <= 100:
            number = max(1, int(math.floor(percent / 100.0 * total)))
    elif text.isdigit() and int(text) >= 1:
        number = int(text)
    if number is None:
        raise AnsibleFilterError('container_fleet_batches: %r is not a batch size: give an integer >= 1 '
                                 'or a percentage of the changed containers ("25%%", more than 0, at most 100)'
                                 % (size,))
    return number


def _float(text):
    try:
        return float(text)
    except ValueError:
        return None


def make_batches(changes, sizes):
    """Split CHANGES (ordered dicts with 'id' and 'group') into batches of ids.

    Each batch takes the first changes in order whose service group is not in it yet, up to its
    size; a change skipped for its group stays first in line for the next batch. A batch can be
    smaller than its size when the groups leave nothing else to take.
    """
    queue = list(changes)
    batch_sizes(sizes, len(queue))          # checks the sizes
    numbers = [size_of(size, len(queue)) for size in sizes]
    batches = []
    while queue:
        size = numbers[min(len(batches), len(numbers) - 1)]
        taken, groups, rest = [], set(), []
        for change in queue:
            group = change.get('group')
            if len(taken) < size and (group is None or group not in groups):
                taken.append(change['id'])
                if group is not None:
                    groups.add(group)
            else:
                rest.append(change)
        batches.append(taken)
        queue = rest
    return batches


def host_changes(host, spec, plan):
    """The ordered changes of one host: removals (exclusive) first, then the spec's order."""
    entries = (plan or {}).get('containers') or {}
    groups = dict((c.get('name'), c.get('service_group')) for c in spec or [] if isinstance(c, Mapping))
    declared = [c.get('name') for c in spec or [] if isinstance(c, Mapping)]
    order = [n for n in sorted(entries) if n not in groups] + declared
    return [dict(id='%s/%s' % (host, name), host=host, name=name, group=groups.get(name))
            for name in order if name in entries and entries[name].get('changed')]


def round_robin(per_host):
    """The changes of every host interleaved: each host's first change in host order, then each
    host's second, and so on (each host's own order kept), so that every batch is spread over the
    hosts and runs on them in parallel, instead of being filled host by host."""
    queues = [list(changes) for changes in per_host]
    merged = []
    depth = 0
    while any(len(queue) > depth for queue in queues):
        merged += [queue[depth] for queue in queues if len(queue) > depth]
        depth += 1
    return merged


def plan_problem(plan):
    """Why a host's plan is unusable (unreachable, or the module failed), else None."""
    if plan is None:
        return 'not planned (the host left the play before the plan)'
    if plan.get('unreachable'):
        return 'unreachable: %s' % (plan.get('msg') or 'no connection')
    if not isinstance(plan.get('containers'), Mapping):
        return 'the plan failed: %s' % (plan.get('msg') or 'no result')
    return None


def fleet_batches(hostvars, hosts, reached, sizes, max_fail_percentage=0):
    """The rollout's schedule from every host's spec and plan (the role's container_fleet_state)."""
    hosts, reached = _plain(list(hosts)), set(_plain(list(reached)))
    problems = {}
    per_host = []
    for host in hosts:
        facts = _host_facts(hostvars, host, (PLAN_FACT, SPEC_FACT), {SPEC_FACT: []})
        plan = facts[PLAN_FACT]
        problem = plan_problem(plan)
        if problem is None and host not in reached:
            problem = 'left the play after its plan'
        if problem:
            problems[host] = problem
            continue
        per_host.append(host_changes(host, facts[SPEC_FACT], plan))
    batches = make_batches(round_robin(per_host), _plain(sizes))
    schedule = []
    for number, batch in enumerate(batches, 1):
        per_host = {}
        for change_id in batch:
            host, name = change_id.split('/', 1)
            per_host.setdefault(host, []).append(name)
        schedule.append(dict(number=number, hosts=per_host))
    state = dict(batches=batches, schedule=schedule, problems=problems, stopped=False, stopped_at=None,
                 reason=None, max_fail_percentage=_percentage(max_fail_percentage))
    too_many = _too_many_lost(state, hosts, sorted(problems))
    if too_many:
        state.update(stopped=True, stopped_at=0, reason='before any change: %s' % too_many)
    return state


def _percentage(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1
    if not 0 <= number <= 100:
        raise AnsibleFilterError('container_fleet_max_fail_percentage must be a number from 0 to 100, got %r'
                                 % (value,))
    return number


def _too_many_lost(state, hosts, lost):
    if not lost or not hosts:
        return None
    percent = 100.0 * len(lost) / len(hosts)
    if percent <= state['max_fail_percentage']:
        return None
    return '%s (%d of %d hosts, %.0f%% > container_fleet_max_fail_percentage %s%%)' % (
        ', '.join('%s %s' % (h, state['problems'].get(h, 'unreachable')) for h in lost),
        len(lost), len(hosts), percent, _number(state['max_fail_percentage']))


def _number(value):
    return int(value) if float(value).is_integer() else value


# health gates -------------------------------------------------------------------------------

def fleet_gate(spec, applied, names, retries=10, delay=1, timeout=5, host_address=None):
    """The health checks of this host's batch: {kind: [check items]} for uri/wait_for/command tasks.

    Only containers that the apply changed, that did not fail and run afterwards are checked.
    """
    spec, applied, names = _plain(spec) or [], _plain(applied) or {}, _plain(names) or []
    results = applied.get('containers') if isinstance(applied.get('containers'), Mapping) else {}
    specs = dict((c.get('name'), c) for c in spec if isinstance(c, Mapping))
    gate = dict((kind, []) for kind in CHECK_KINDS)
    for name in names:
        check = specs.get(name, {}).get('health_check')
        entry = results.get(name)
        if not check or not entry or entry.get('failed') or not entry.get('changed'):
            continue
        facts = entry.get('container') or {}
        if not facts.get('running'):
            continue
        common = dict(name=name,
                      retries=int(check.get('retries', retries)),
                      delay=float(check.get('delay', delay)),
                      timeout=int(math.ceil(float(check.get('timeout', timeout)))))
        address = _address(facts)
        if check.get('http'):
            http = check['http']
            where = http.get('from', 'host')
            status = http.get('expect_status', 200)
            item = dict(common, url=http.get('url') or 'http://%s:%d%s' % (
                _url_host(address, where, host_address), int(http['port']), http.get('path', '/')),
                status=status if isinstance(status, list) else [status])
            gate['http_controller' if where == 'controller' else 'http_host'].append(item)
        if check.get('tcp'):
            tcp = check['tcp']
            gate['tcp'].append(dict(common, host=tcp.get('host') or address or '127.0.0.1', port=int(tcp['port'])))
        if check.get('command'):
            gate['command'].append(dict(common, command=[str(word) for word in check['command']]))
    return gate


def _address(facts):
    for key in ('local_address', 'local_address6'):
        if facts.get(key):
            return str(facts[key]).split('/', 1)[0]
    return None


def _url_host(address, where, host_address):
    if not address:
        # Host network: the container's ports are the host's.
        address = '127.0.0.1' if where == 'host' else (host_address or '127.0.0.1')
    return '[%s]' % address if ':' in address else address


# outcomes -----------------------------------------------------------------------------------

def fleet_outcomes(plan, applied, checks, names, batch):
    """{name: outcome entry} of this host's batch, from the plan, the apply and the checks' results.

    An entry: outcome (created, updated, removed, unchanged, or failed / unhealthy, which are to be
    rolled back), batch, health (passed, failed or None), message, rollback (roll back now) and
    undo (the nixos_containers item that undoes the change, or None).
    """
    plan, applied = _plain(plan) or {}, _plain(applied) or {}
    planned = plan.get('containers') or {}
    results = applied.get('containers') if isinstance(applied.get('containers'), Mapping) else None
    verdicts = _check_verdicts(_plain(checks) or [])
    outcomes = {}
    for name in _plain(names) or []:
        before = planned.get(name) or {}
        entry = (results or {}).get(name)
        undo = undo_item(name, before, entry)
        out = dict(batch=batch, action=before.get('action'), health=None, message=None, rollback=False, undo=undo)
        if results is None or entry is None:
            # The call failed before it applied anything (e.g. it could not read the host).
            out.update(outcome='failed', undo=None,
                       message='the apply failed: %s' % (applied.get('msg') or 'no result for this container'))
        elif entry.get('failed'):
            out.update(outcome='failed', rollback=undo is not None,
                       message='the apply failed: %s' % (entry.get('msg') or 'unknown error'))
        elif name in verdicts and verdicts[name]:
            out.update(outcome='unhealthy', health='failed', rollback=undo is not None,
                       message='health check failed: %s' % '; '.join(verdicts[name]))
        else:
            out['health'] = 'passed' if name in verdicts else None
            if not entry.get('changed'):
                out.update(outcome='unchanged', undo=None)
            else:
                out['outcome'] = dict(create='created', destroy='removed').get(before.get('action'), 'updated')
        outcomes[name] = out
    return outcomes


def _check_verdicts(checks):
    """{name: [failures]} for every container some check ran for (an empty list: all passed)."""
    verdicts = {}
    for registered in checks:
        if not isinstance(registered, Mapping):
            continue
        for result in registered.get('results') or []:
            item = result.get('item')
            if not isinstance(item, Mapping) or result.get('skipped'):
                continue
            failures = verdicts.setdefault(item.get('name'), [])
            if result.get('failed'):
                attempts = int(item.get('retries') or 0) + 1
                failures.append('%s (%d attempt%s): %s' % (
                    _check_label(item), attempts, '' if attempts == 1 else 's',
                    _one_line(result.get('msg') or result.get('stderr') or 'failed')))
    return verdicts


def _check_label(item):
    if 'url' in item:
        return 'GET %s' % item['url']
    if 'port' in item:
        return 'TCP %s:%s' % (item.get('host'), item['port'])
    return 'command %s' % ' '.join(item.get('command') or [])


def _one_line(text):
    text = ' '.join(str(text).split())
    return text if len(text) <= 300 else text[:297] + '...'


def undo_item(name, before, entry):
    """The nixos_containers item that puts NAME back as it was before this run, or None.

    A container created in this run is removed again; a removed one cannot come back. Otherwise
    its conf options and run state come back from the facts read before the run, and its profile
    goes back one generation when the run made a new one.
    """
    action = before.get('action')
    if action in (None, 'noop', 'destroy'):
        return None
    if action == 'create':
        return dict(name=name, state='absent')
    facts = before.get('container') or {}
    if not facts:
        return None
    item = dict(name=name, state='started' if facts.get('running') else 'stopped')
    for key in CONF_OPTIONS:
        if facts.get(key) is not None:
            item[key] = facts[key]
    # The limits drop-in as it was ({} removes one the run added).
    if isinstance(facts.get('unit_properties'), Mapping):
        item['unit_properties'] = dict(facts['unit_properties'])
    generation_before = before.get('generation_before', facts.get('generation'))
    after = (entry or {}).get('generation_after', ((entry or {}).get('container') or {}).get('generation'))
    if generation_before is None or after is None or after == generation_before:
        return item
    # rollback=true goes to the generation just below the current one, which is the one from
    # before the run unless an earlier rollback left newer generations behind it: then the
    # system from before the run is set again instead (a new generation pointing to it).
    numbers = [g.get('number') for g in facts.get('generations') or [] if isinstance(g, Mapping)]
    below = [n for n in numbers if isinstance(n, int) and n < after]
    if below and max(below) != generation_before and facts.get('system_path'):
        item['system_path'] = facts['system_path']
    else:
        item['rollback'] = True
    # The configuration.nix of that system comes back with it (a flake's is the flake's).
    if facts.get('configuration') is not None and not facts.get('flake'):
        item['config'] = facts['configuration']
    return item


def fleet_undo(outcomes, everything=False):
    """The nixos_containers items to roll back now: the broken changes of the batch, and with
    EVERYTHING (container_fleet_rollback_all after a stop) every change this run made."""
    items = []
    for dummy, out in sorted((_plain(outcomes) or {}).items()):
        if out.get('undo') and (out.get('rollback') or (everything and out.get('outcome') in MOVED)):
            items.append(out['undo'])
    return items


def fleet_rolled_back(outcomes, items, result, why=None):
    """OUTCOMES after the rollback of ITEMS (nixos_containers RESULT); WHY: for changes that did not
    fail themselves (rolled back with the rest of the run)."""
    outcomes = _plain(outcomes) or {}
    result = _plain(result) or {}
    results = result.get('containers') if isinstance(result.get('containers'), Mapping) else {}
    for item in _plain(items) or []:
        name = item['name']
        out = dict(outcomes.get(name) or dict(batch=None, action=None, health=None, message=None))
        entry = results.get(name)
        if entry is None or entry.get('failed'):
            problem = (entry or {}).get('msg') or result.get('msg') or 'no result'
            out.update(outcome='failed', message=_join(out.get('message') or why, 'the rollback failed: %s' % problem))
        else:
            done = _undone(item, entry)
            if out.get('outcome') == 'failed':
                out['message'] = _join(out.get('message'), done)
            else:
                out.update(outcome='rolled_back', message=_join(out.get('message') or why, done))
        out.update(rollback=False, undo=None)
        outcomes[name] = out
    return outcomes


def _undone(item, entry):
    if item.get('state') == 'absent':
        return 'removed again (it was created in this run)'
    generation = entry.get('generation_after', (entry.get('container') or {}).get('generation'))
    if item.get('rollback'):
        return 'rolled back to generation %s' % generation
    if item.get('system_path'):
        return 'its system from before the run is back (%s, as generation %s)' % (item['system_path'], generation)
    return 'its previous settings are back (generation %s)' % generation


def _join(*parts):
    return '; '.join(p for p in parts if p)


# progress -----------------------------------------------------------------------------------

def fleet_progress(state, hostvars, hosts, reached, batch):
    """STATE after batch number BATCH: stopped when a change of the batch failed, or when more
    hosts are lost than container_fleet_max_fail_percentage allows."""
    state = dict(_plain(state))
    if state.get('stopped'):
        return state
    hosts, reached = _plain(list(hosts)), set(_plain(list(reached)))
    broken = []
    for host in hosts:
        if host not in reached:
            continue
        outcomes = _host_vars(hostvars, host, OUTCOMES_FACT, {})
        broken += ['%s/%s %s' % (host, name, 'failed to apply' if out['outcome'] == 'failed' else 'failed its health check')
                   for name, out in sorted(outcomes.items())
                   if out.get('batch') == batch and out.get('outcome') in BROKEN]
    lost = [h for h in hosts if h not in reached or h in state.get('problems', {})]
    reasons = []
    if broken:
        reasons.append(', '.join(broken))
    too_many = _too_many_lost(state, hosts, lost)
    if too_many:
        reasons.append(too_many)
    if reasons:
        state.update(stopped=True, stopped_at=batch, reason='batch %d: %s' % (batch, '; '.join(reasons)))
    return state


# summary ------------------------------------------------------------------------------------

def fleet_summary(hostvars, hosts, reached, state, check_mode=False):
    """The rollout's summary (the role's contract): result, batches, unreachable hosts, per host
    its status and per container its outcome, planned action, reasons, batch, health, message."""
    hosts, reached, state = _plain(list(hosts)), set(_plain(list(reached))), _plain(state) or {}
    batch_of = {}
    for number, batch in enumerate(state.get('batches') or [], 1):
        for change_id in batch:
            batch_of[change_id] = number
    problems = state.get('problems') or {}
    summary_hosts = {}
    for host in hosts:
        lost = host not in reached
        problem = problems.get(host)
        if problem is None and lost:
            problem = 'unreachable: it left the play during the rollout'
        facts = _host_facts(hostvars, host, (SPEC_FACT, PLAN_FACT, OUTCOMES_FACT), {SPEC_FACT: [], OUTCOMES_FACT: {}})
        containers = _host_containers(host, facts[SPEC_FACT], facts[PLAN_FACT], facts[OUTCOMES_FACT], batch_of,
                                      check_mode, problem, state)
        entry = dict(status=_host_status(lost, problem, containers), containers=containers)
        if problem:
            entry['message'] = problem
        summary_hosts[host] = entry
    return dict(
        result=_result(summary_hosts, state, check_mode),
        check_mode=bool(check_mode),
        batches=state.get('batches') or [],
        unreachable=[h for h in hosts if h not in reached],
        stopped=dict(batch=state.get('stopped_at'), reason=state.get('reason')) if state.get('stopped') else None,
        hosts=summary_hosts,
    )


def _host_containers(host, spec, plan, outcomes, batch_of, check_mode, problem, state):
    planned = (plan or {}).get('containers')
    planned = planned if isinstance(planned, Mapping) else {}
    declared = [c.get('name') for c in spec if isinstance(c, Mapping)]
    names = [n for n in sorted(planned) if n not in declared] + declared
    containers = {}
    for name in names:
        before = planned.get(name) or {}
        out = outcomes.get(name)
        entry = dict(outcome=None, action=before.get('action'), reasons=before.get('reasons') or [],
                     batch=batch_of.get('%s/%s' % (host, name)), health=None, message=None)
        if out:
            entry.update(outcome=out['outcome'], health=out.get('health'), message=out.get('message'))
            if out['outcome'] == 'unhealthy':
                # Its rollback never ran (the host left the play first).
                entry.update(outcome='failed', message=_join(out.get('message'), 'not rolled back'))
        elif name in planned and not before.get('changed'):
            entry['outcome'] = 'unchanged'
        elif problem:
            entry.update(outcome='pending', message=problem)
        elif check_mode:
            entry['outcome'] = 'planned'
        elif state.get('stopped'):
            entry.update(outcome='pending', message='not applied: the rollout stopped (%s)' % state.get('reason'))
        else:
            entry.update(outcome='pending', message='not applied')
        containers[name] = entry
    return containers


def _host_status(lost, problem, containers):
    if lost:
        return 'unreachable'
    outcomes = set(c['outcome'] for c in containers.values())
    if problem or 'failed' in outcomes:
        return 'failed'
    if 'rolled_back' in outcomes:
        return 'rolled_back'
    if outcomes & set(['created', 'updated', 'removed']):
        return 'updated'
    if 'planned' in outcomes:
        return 'planned'        # check mode: nothing was updated
    return 'unchanged'


def _result(hosts, state, check_mode):
    statuses = set(h['status'] for h in hosts.values())
    if statuses & set(['failed', 'unreachable']):
        return 'failed'
    if 'rolled_back' in statuses:
        return 'rolled_back'
    if state.get('stopped') and not check_mode:
        return 'failed'
    return 'success'


def fleet_order(hostvars, hosts, reached, sizes, max_fail_percentage=0, check_mode=False):
    """The role's first step after the plan: ``state`` (fleet_batches) and ``summary``
    (fleet_summary, set only when no batch is to run: a no-op, check mode, a stop before any
    change; else None), from one look at each host's facts instead of one per filter: each
    ``hostvars[host]`` merges and templates every variable of the host."""
    hosts = _plain(list(hosts))
    facts = dict((host, _host_facts(hostvars, host, (SPEC_FACT, PLAN_FACT, OUTCOMES_FACT))) for host in hosts)
    state = fleet_batches(facts, hosts, reached, sizes, max_fail_percentage)
    summary = None
    if check_mode or state['stopped'] or not state['schedule']:
        summary = fleet_summary(facts, hosts, reached, state, check_mode)
    return dict(state=state, summary=summary)


def fleet_report(summary):
    """The summary as lines of text for ansible.builtin.debug."""
    summary = _plain(summary) or {}
    lines = ['result: %s%s' % (summary.get('result'), ' (check mode: nothing changed)' if summary.get('check_mode') else '')]
    if summary.get('stopped'):
        lines.append('stopped: %s' % summary['stopped'].get('reason'))
    batches = summary.get('batches') or []
    lines.append('batches: %s' % (' | '.join('%d: %s' % (i, ' '.join(b)) for i, b in enumerate(batches, 1))
                                  if batches else 'none (nothing to change)'))
    if summary.get('unreachable'):
        lines.append('unreachable: %s' % ', '.join(summary['unreachable']))
    for host, entry in sorted((summary.get('hosts') or {}).items()):
        containers = entry.get('containers') or {}
        unchanged = [n for n, c in containers.items() if c.get('outcome') == 'unchanged']
        lines.append('%s: %s%s%s' % (host, entry.get('status'),
                                     ' (%d unchanged)' % len(unchanged) if unchanged else '',
                                     ' - %s' % entry['message'] if entry.get('message') else ''))
        for name, container in containers.items():
            if container.get('outcome') == 'unchanged':
                continue
            details = [d for d in (
                container.get('action') and 'action %s' % container['action'],
                container.get('batch') and 'batch %d' % container['batch'],
                container.get('health') and 'health %s' % container['health']) if d]
            lines.append('  %s: %s%s%s' % (name, container.get('outcome'),
                                           ' (%s)' % ', '.join(details) if details else '',
                                           ' - %s' % container['message'] if container.get('message') else ''))
    return lines


class FilterModule(object):

    def filters(self):
        return {
            'fleet_batches': fleet_batches,
            'fleet_gate': fleet_gate,
            'fleet_outcomes': fleet_outcomes,
            'fleet_undo': fleet_undo,
            'fleet_rolled_back': fleet_rolled_back,
            'fleet_progress': fleet_progress,
            'fleet_summary': fleet_summary,
            'fleet_order': fleet_order,
            'fleet_report': fleet_report,
        }
