"""Fault suite: hundreds of generated bad inputs, each refused clearly, none changing the host.

The cases run through the modules' real main() inside a lab host (run_module_cases.py), in
one process, so 500+ cases cost seconds rather than one ansible-playbook run each. What is
checked per case: the module failed, with a message that names the offending parameter, and
no traceback. What is checked for the whole batch: the host's state (files, profiles, links,
addresses, routes, unit state) is byte-identical before and after.
"""

import json
import re
from pathlib import Path

from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st

from host_checks import host_state, module_play

CASES = 520
HARNESS = Path(__file__).resolve().parent / 'run_module_cases.py'
REPO = Path(__file__).resolve().parents[3]
NGINX = 'services.nginx.enable = true;'

names = st.sampled_from(['web', 'fresh1'])
identifier = st.from_regex(r'[a-z][a-z0-9_]{0,12}', fullmatch=True)
hostile = st.sampled_from(['$(reboot)', '`id`', '"', "'", '\\', ' ', '\n', '*', '?', '[', '${x}', '\x01', '\x7f'])
words = st.text(alphabet=st.characters(codec='utf-8', exclude_categories=['Cs']), max_size=8)


def word_with(bad):
    """A word that contains at least one character the unit could not carry."""
    return st.tuples(words, bad, words).map(lambda t: '/x' + ''.join(t))


def case(needle, **args):
    return dict(args=args, needle=needle)


def bad_names(overlong):
    return st.one_of(
        overlong,
        st.tuples(st.from_regex(r'[a-z]{1,4}', fullmatch=True),
                  st.sampled_from(list('_./ ;$&|<>\'"\\*?!#%@:,=+~^()[]{}\n\t') + ['\u00e9', '\u2018']),
                  st.from_regex(r'[a-z]{0,4}', fullmatch=True)).map(''.join),
        st.just(''), st.just('-web'),
    ).map(lambda n: case('name', name=n, config=NGINX))


# The CLI's 11 characters; declarative names may be up to 64 on this kernel (newer than 5.8), as on NixOS.
bad_name = bad_names(st.from_regex(r'[a-z0-9]{12,40}', fullmatch=True))
bad_declarative_name = bad_names(st.from_regex(r'[a-z0-9]{65,80}', fullmatch=True))

bad_ipv4 = st.one_of(
    st.sampled_from(['10.233.1.256', '10.233.1', '10.233.1.1.1', '10.233.1.1/33', 'fc00::1', 'localhost',
                     '10.233.1.1/', ' 10.233.1.1', '10.233.1.1\n', '01.2.3.4x']),
    st.tuples(st.integers(256, 9999), st.integers(0, 255)).map(lambda t: '10.%d.%d.1' % t),
)
bad_addresses = st.one_of(
    st.tuples(names, bad_ipv4).map(lambda t: case('host_address', name=t[0], host_address=t[1],
                                                  local_address='10.233.77.2', config=NGINX)),
    st.tuples(names, bad_ipv4).map(lambda t: case('local_address', name=t[0], host_address='10.233.77.1',
                                                  local_address=t[1], config=NGINX)),
    # nixos_container: 'parameters are required together ...'; the declarative module's conf check:
    # '... is required as well (unless host_bridge is set)'.
    names.map(lambda n: case('required', name=n, host_address='10.233.77.1', config=NGINX)),
    st.tuples(names, st.sampled_from(['10.233.1.1', 'fc00::/200', 'nonsense'])).map(
        lambda t: case('host_address6', name=t[0], host_address6=t[1], local_address6='fc00::2', config=NGINX)),
    st.tuples(names, st.sampled_from(['00:11:22:33:44', 'zz:11:22:33:44:55', '0011.2233.4455', '01:00:5e:00:00:01'])).map(
        lambda t: case('local_mac_address', name=t[0], local_mac_address=t[1], config=NGINX)),
)
bad_ports = st.one_of(
    st.tuples(names, st.one_of(st.integers(max_value=0), st.integers(min_value=65536))).map(
        lambda t: case('forward_ports', name=t[0], forward_ports=[dict(host_port=t[1])], config=NGINX)),
    st.tuples(names, st.integers(1, 65535), st.one_of(st.integers(max_value=0), st.integers(min_value=65536))).map(
        lambda t: case('forward_ports', name=t[0], forward_ports=[dict(host_port=t[1], container_port=t[2])],
                       config=NGINX)),
    st.tuples(names, st.sampled_from(['icmp', 'TCP', 'sctp', '', 'tcp '])).map(
        lambda t: case('protocol', name=t[0], forward_ports=[dict(host_port=80, protocol=t[1])], config=NGINX)),
    st.tuples(names, st.sampled_from(['abc', '8o', '1.5', 'eighty'])).map(
        lambda t: case('host_port', name=t[0], forward_ports=[dict(host_port=t[1])], config=NGINX)),
    st.tuples(names, st.integers(1, 65535)).map(
        lambda t: case('forward_ports', name=t[0], config=NGINX,
                       forward_ports=[dict(host_port=t[1]), dict(host_port=t[1], container_port=1)])),
)
bad_words = st.one_of(
    st.tuples(names, word_with(hostile)).map(lambda t: case('bind_mounts', name=t[0], config=NGINX,
                                                            bind_mounts=[dict(mount_point=t[1])])),
    st.tuples(names, st.sampled_from(['relative', 'data/x', '/a:b', '~/x'])).map(
        lambda t: case('bind_mounts', name=t[0], config=NGINX, bind_mounts=[dict(mount_point=t[1])])),
    names.map(lambda n: case('bind_mounts', name=n, config=NGINX,
                             bind_mounts=[dict(mount_point='/d'), dict(mount_point='/d', host_path='/srv')])),
    st.tuples(names, word_with(hostile)).map(lambda t: case('tmpfs', name=t[0], config=NGINX, tmpfs=[t[1]])),
    st.tuples(names, word_with(hostile)).map(lambda t: case('extra_flags', name=t[0], config=NGINX,
                                                            extra_flags=['--x' + t[1]])),
    st.tuples(names, st.sampled_from(['cap_sys_admin', 'CAP SYS', 'SYS_ADMIN', 'CAP_$X', ''])).map(
        lambda t: case('additional_capabilities', name=t[0], config=NGINX, additional_capabilities=[t[1]])),
    st.tuples(names, st.sampled_from(['bogus', '-1', 'pick me', '99999999999', 'yes;no'])).map(
        lambda t: case('private_users', name=t[0], config=NGINX, private_users=t[1])),
    st.tuples(names, word_with(hostile)).map(lambda t: case('host_bridge', name=t[0], config=NGINX,
                                                            host_bridge='br' + t[1][2:5] + ' x')),
)
broken_nix = st.sampled_from(['{', '}', 'a = ;', 'x = "unterminated;', 'in in', 'services.nginx.enable = true',
                              'let x = 1;', 'a = 1; a = 2;', 'networking.hostName = "x";', '} { ', "''",
                              'imports = [ ./x.nix '])
# Nix stops reading at a NUL: refused before any command runs, naming config.
nul_config = st.sampled_from(['x = "a\0b";', NGINX + '\0', 'environment.etc.a.text = "s\0} // {";', NGINX + ' #\0'])
bad_config = st.one_of(
    st.tuples(names, nul_config).map(lambda t: case('config', name=t[0], config=t[1])),
    st.tuples(names, broken_nix, st.sampled_from(['', NGINX + '\n', 'environment.etc.a.text = "b";\n'])).map(
        lambda t: case('config', name=t[0], config=t[2] + t[1])),
    st.tuples(names, st.sampled_from([{'_nix_path': 'relative/p'}, {'_nix_path': '/a b'}, {'_nix_package': 'a b'},
                                      {'_nix_package': ''}, {'_nix_path': 1}])).map(
        lambda t: case('settings', name=t[0], settings={'environment': {'x': t[1]}})),
    names.map(lambda n: case('mutually exclusive', name=n, config=NGINX, flake='/srv/f#web')),
    names.map(lambda n: case('mutually exclusive', name=n, settings={'a': 1}, config_file='/srv/c.nix')),
    names.map(lambda n: case('mutually exclusive', name=n, flake='/srv/f#web', system_path='/nix/store/x')),
    names.map(lambda n: case('config_file', name=n, config_file='/nonexistent/x.nix')),
    names.map(lambda n: case('system_path', name=n, system_path='/nix/store/no-such-system')),
)
bad_types = st.one_of(
    st.tuples(names, identifier.filter(lambda k: k not in KNOWN_OPTIONS)).map(
        lambda t: case(t[1], **{'name': t[0], 'config': NGINX, t[1]: 1})),
    st.tuples(names, st.sampled_from(['running', 'restarted', 'up', ''])).map(
        lambda t: case('state', name=t[0], state=t[1])),
    st.tuples(names, st.sampled_from(['soon', '1m', '[]'])).map(
        lambda t: case('start_timeout', name=t[0], config=NGINX, start_timeout=t[1])),
    st.tuples(names, st.sampled_from(['maybe', 'yess', '2'])).map(
        lambda t: case('private_network', name=t[0], config=NGINX, private_network=t[1])),
)

KNOWN_OPTIONS = {
    'name', 'state', 'restart', 'recreate', 'rollback', 'rebuild', 'config', 'config_file', 'flake',
    'system_path', 'settings', 'nixos_path', 'auto_start', 'private_network', 'host_address',
    'local_address', 'host_address6', 'local_address6', 'local_mac_address', 'host_bridge',
    'forward_ports', 'bind_mounts', 'ephemeral', 'tmpfs', 'enable_tun', 'additional_capabilities',
    'extra_flags', 'private_users', 'start_timeout', 'nixos_container_bin', 'interfaces', 'macvlans', 'extra_veths',
}

NIXOS_CONTAINER_CASES = st.one_of(bad_name, bad_addresses, bad_ports, bad_words, bad_config, bad_types)


def run_cases(lab, host, cases):
    lines = ''.join(json.dumps(dict(module=module, args=c['args'])) + '\n' for module, c in cases)
    done = lab.exec(host, 'env', 'PYTHONPATH=%s:%s' % (REPO / '.build', site_packages()),
                    '/usr/bin/python3', str(HARNESS), input=lines, timeout=600, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def state_differences(before, after):
    old, new = json.loads(before), json.loads(after)
    return dict((key, (old.get(key), new.get(key))) for key in sorted(set(old) | set(new))
                if old.get(key) != new.get(key))


def site_packages():
    found = sorted((REPO / '.venv' / 'lib').glob('python3*/site-packages'))
    assert found, 'the venv is missing'
    return found[0]


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_generated_bad_inputs_fail_clearly_without_change(fresh, data):
    assume(data.draw(st.integers(0, 255)) != 0)   # not the simplest example (see below)
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    cases = [('nixos_container', data.draw(NIXOS_CONTAINER_CASES)) for _index in range(CASES)]
    before = host_state(fresh, 'host1')
    results = run_cases(fresh, 'host1', cases)
    assert len(results) == len(cases)
    problems = []
    for (module, c), result in zip(cases, results):
        msg = str(result.get('msg', ''))
        if 'harness_error' in result or not result.get('failed') or 'Traceback' in json.dumps(result) \
                or c['needle'].lower() not in msg.lower():
            problems.append((module, c, result.get('harness_error') or msg or result))
    assert not problems, '%d of %d cases misbehaved, first ones:\n%s' % (
        len(problems), len(cases), '\n'.join(repr(p) for p in problems[:8]))
    after = host_state(fresh, 'host1')
    assert after == before, state_differences(before, after)
    assert len({json.dumps(c['args'], sort_keys=True) for _module, c in cases}) > 150, 'too few distinct cases'


def test_harness_reports_success_too(fresh):
    """The harness itself can tell success from failure (so the suite above can fail)."""
    result = run_cases(fresh, 'host1', [('nixos_container_info', dict(args={}))])[0]
    assert result.get('failed') is None and result['containers'] == []
    assert re.match(r'^\d', fresh.exec('host1', 'date', '+%s', check=True).stdout)


# --- the other modules: each with its own bad inputs and the parameter its message must name ---

def wrap(c):
    """A nixos_container case as one element of nixos_containers' list (same needle)."""
    return dict(args=dict(containers=[c['args']]), needle=c['needle'])


ifname_bad_nonempty = st.one_of(
    st.from_regex(r'[a-z][a-z0-9]{15,30}', fullmatch=True),                     # > 15 bytes
    st.tuples(st.from_regex(r'[a-z]{1,4}', fullmatch=True), st.sampled_from(list('/: \t\n')),
              st.from_regex(r'[a-z]{0,4}', fullmatch=True)).map(''.join),         # kernel-forbidden
    st.sampled_from(['.', '..', '\u00e9' * 8]),
)
ifname_bad = st.one_of(ifname_bad_nonempty, st.just(''))
bad_ip = st.one_of(bad_ipv4.map(lambda a: '1.2.3.4/33' if a == 'fc00::1' else a),
                   st.sampled_from(['::g', '1.2.3.4/40', 'fc00::/129', '$(id)', '1.2.3.4; id']))
bad_port = st.one_of(st.integers(max_value=0), st.integers(min_value=65536),
                     st.sampled_from(['abc', '8o', '1.5', '80-', '-80', '90-80', '0-10', '1-70000', '$(id)']))
# No filters (a filter that misses makes hypothesis redraw the whole 600-case batch): a
# prefix that no module's options use makes every key unknown.
unknown_key = identifier.map(lambda k: 'zz_' + k)

CONTAINERS_CASES = st.one_of(
    st.one_of(bad_name, bad_addresses, bad_ports, bad_words).map(wrap),
    st.tuples(names, broken_nix).map(lambda t: case('config', containers=[dict(name=t[0], config=t[1])])),
    names.map(lambda n: case('declared twice', containers=[dict(name=n, config=NGINX), dict(name=n, config=NGINX)])),
    st.tuples(names, bad_name).map(lambda t: case('only', containers=[dict(name=t[0], config=NGINX)],
                                                  only=[t[1]['args']['name']])),
    st.tuples(names, st.sampled_from(['maybe', 'yess', '2', '[]'])).map(
        lambda t: case('exclusive', containers=[dict(name=t[0], config=NGINX)], exclusive=t[1])),
    st.tuples(names, unknown_key).map(lambda t: case(t[1], **{'containers': [dict(name=t[0], config=NGINX)], t[1]: 1})),
    st.tuples(names, st.one_of(st.integers(max_value=-1), st.sampled_from(['soon', '1d', '']))).map(
        lambda t: case('prune_systems_grace', containers=[dict(name=t[0], config=NGINX)], prune_systems_grace=t[1])),
    # Ansible's own message for a non-list here names no parameter (core behaviour, reported).
    st.sampled_from(['web', '']).map(lambda v: case('dictionary requested', containers=v)),
    st.just(case('containers', containers='x=1')),
)

# Padded addresses (' 10.233.1.1', '10.233.1.1\n') were once trimmed and applied: now refused.
net_bad_ip = st.one_of(st.tuples(st.integers(256, 9999), st.integers(0, 255)).map(lambda t: '10.%d.%d.1' % t),
                       st.sampled_from(['10.233.1.256', '10.233.1', '10.233.1.1.1', '10.233.1.1/33', 'localhost',
                                        '10.233.1.1/', '01.2.3.4x', '::g', '1.2.3.4/40', 'fc00::/129', '$(id)',
                                        '1.2.3.4; id', ' 10.233.1.1', '10.233.1.1\n', '10.233.1.1/24\t']))

NETWORK_CASES = st.one_of(
    bad_name.map(lambda c: case('name', name=c['args']['name'], host_addresses=['10.233.77.1/24'])),
    st.tuples(names, net_bad_ip).map(lambda t: case('host_addresses[0]', name=t[0], host_addresses=[t[1]])),
    st.tuples(names, net_bad_ip).map(
        lambda t: case('local_addresses[1]', name=t[0], local_addresses=['10.233.77.2/24', t[1]])),
    ifname_bad.map(lambda n: case('bridges[0].name', bridges=[dict(name=n)])),
    st.one_of(st.integers(max_value=67), st.integers(min_value=65536)).map(
        lambda m: case('bridges[0].mtu', bridges=[dict(name='brf', mtu=m)])),
    net_bad_ip.map(lambda a: case('bridges[0].addresses[0]', bridges=[dict(name='brf', addresses=[a])])),
    st.from_regex(r'br[a-z]{1,6}', fullmatch=True).map(
        lambda n: case('listed twice', bridges=[dict(name=n), dict(name=n, mtu=1400)])),
    st.sampled_from(['x', '10.0.0.0/33', '10.0.0.0/8/8', 'fc00::/7x', '']).map(
        lambda p: case('allocate.pool', name='web', allocate=dict(pool=p))),
    st.one_of(st.integers(max_value=15), st.integers(min_value=32, max_value=200)).map(
        lambda b: case('allocate.pool', name='web', allocate=dict(block_prefix=b))),
    st.tuples(st.sampled_from(['state', 'link_state', 'unmanaged_addresses', 'when_missing']),
              st.sampled_from(['sideways', 'UP', '', 'present;'])).map(
        lambda t: case(t[0], **{'name': 'web', t[0]: t[1]})),
    unknown_key.map(lambda k: case(k, **{'name': 'web', k: 1})),
)

NAT_OK = dict(external_interface='eth0')


def nat(needle, **args):
    return case(needle, **dict(NAT_OK, **args))


def forward(**over):
    return dict(dict(host_port=8080, destination='10.233.77.2'), **over)


NAT_CASES = st.one_of(
    ifname_bad_nonempty.map(lambda n: case('external_interface', external_interface=n)),
    ifname_bad.map(lambda n: nat('internal_interfaces[0]', internal_interfaces=[n])),
    st.sampled_from(['*', '+', 've-*x', 'v*e', '']).map(lambda n: nat('internal_interfaces[0]', internal_interfaces=[n])),
    bad_ip.map(lambda a: nat('external_ip', external_ip=a)),
    st.sampled_from(['10.0.0.1', 'fc00::/200', 'nonsense', '::g']).map(
        lambda a: nat('external_ip6', ipv6=True, external_ip6=a)),
    bad_ip.map(lambda a: nat('internal_ips[0]', internal_ips=[a])),
    bad_port.map(lambda p: nat('forwards[0].host_port', forwards=[forward(host_port=p)])),
    bad_ip.map(lambda a: nat('forwards[0].destination', forwards=[forward(destination=a)])),
    st.integers(min_value=65536).map(lambda p: nat('forwards[0].destination',
                                                   forwards=[forward(destination='10.233.77.2:%d' % p)])),
    bad_ip.map(lambda a: nat('forwards[0].loopback_ips[0]', forwards=[forward(loopback_ips=[a])])),
    st.tuples(st.integers(1, 65000), st.integers(0, 30)).map(
        lambda t: nat('overlaps', forwards=[forward(host_port='%d-%d' % (t[0], t[0] + t[1])),
                                            forward(host_port=t[0] + t[1] // 2, destination='10.233.77.3')])),
    st.sampled_from(['icmp', 'TCP', 'sctp', '', 'tcp ']).map(lambda p: nat('proto', forwards=[forward(proto=p)])),
    st.one_of(st.from_regex(r'[a-z]{65,80}', fullmatch=True), hostile.map(lambda h: 't' + h),
              st.sampled_from(['1abc', '', '_x', 'a"; flush ruleset; "'])).map(lambda t: nat('table', table=t)),
    st.tuples(st.sampled_from(['state', 'backend']), st.sampled_from(['pf', 'nft', '', 'present;'])).map(
        lambda t: nat(t[0], **{t[0]: t[1]})),
    st.tuples(st.sampled_from(['ipv6', 'ip_forward']), st.sampled_from(['maybe', 'yess', '2'])).map(
        lambda t: nat(t[0], **{t[0]: t[1]})),
    unknown_key.map(lambda k: nat(k, **{k: 1})),
    unknown_key.map(lambda k: nat('forwards.' + k, forwards=[forward(**{k: 1})])),
    st.sampled_from([[dict(host_port=80)], [dict(destination='10.233.77.2')]]).map(
        lambda f: nat('missing required', forwards=f)),
)

INFO_CASES = st.one_of(
    st.sampled_from(['maybe', 'yess', '2', '[]']).map(lambda v: case('leader_pid', leader_pid=v)),
    unknown_key.map(lambda k: case(k, **{k: 1})),
)

OTHER_CASES = (('nixos_containers', CONTAINERS_CASES, 200), ('nixos_container_network', NETWORK_CASES, 160),
               ('nixos_container_nat', NAT_CASES, 200), ('nixos_container_info', INFO_CASES, 40))

# A live NAT table and a bridge on the host, so that "byte-identical" also covers what a bad
# input to these modules could flush or tear down.
LIVE_NAT = dict(external_interface='eth0', internal_interfaces=['ve-*'],
                forwards=[dict(host_port=8080, destination='10.233.77.2:80')])
LIVE_BRIDGES = [dict(name='brlive', addresses=['10.233.99.1/24'])]


def check_results(cases, results):
    assert len(results) == len(cases)
    problems = []
    for (module, c), result in zip(cases, results):
        msg = str(result.get('msg', ''))
        if 'harness_error' in result or not result.get('failed') or 'Traceback' in json.dumps(result) \
                or c['needle'].lower() not in msg.lower():
            problems.append((module, c, result.get('harness_error') or msg or result))
    return problems


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck), database=None,
          phases=[Phase.generate])   # a failure shows its first cases; no shrinking reruns of the batch
@given(data=st.data())
def test_generated_bad_inputs_to_every_other_module(fresh, data):
    assume(data.draw(st.integers(0, 255)) != 0)   # not the simplest example (see below)
    fresh.playbook(module_play(dict(name='web', config=NGINX)))
    forwarding = fresh.exec('host1', 'sysctl', '-n', 'net.ipv4.ip_forward', check=True).stdout.strip()
    setup = run_cases(fresh, 'host1', [('nixos_container_nat', dict(args=LIVE_NAT)),
                                       ('nixos_container_network', dict(args=dict(bridges=LIVE_BRIDGES)))])
    try:
        assert [r.get('failed') for r in setup] == [None, None], setup
        cases = [(module, data.draw(strategy)) for module, strategy, count in OTHER_CASES for _i in range(count)]
        before = host_state(fresh, 'host1')
        assert '"nixfleet_nat"' in before and 'brlive' in before
        results = run_cases(fresh, 'host1', cases)
        problems = check_results(cases, results)
        assert not problems, '%d of %d cases misbehaved, first ones:\n%s' % (
            len(problems), len(cases), '\n'.join(repr(p) for p in problems[:12]))
        after = host_state(fresh, 'host1')
        assert after == before, state_differences(before, after)
        for module, _strategy, count in OTHER_CASES:
            distinct = {json.dumps(c['args'], sort_keys=True) for m, c in cases if m == module}
            assert len(distinct) > count // 4, (module, len(distinct))
    finally:
        run_cases(fresh, 'host1', [('nixos_container_nat', dict(args=dict(state='absent'))),
                                   ('nixos_container_network', dict(args=dict(
                                       bridges=[dict(name='brlive', state='absent')])))])
        fresh.exec('host1', 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=' + forwarding, check=True)


# --- nixos_container_declarative: the same option rules, plus its directory and imports file ---

DECLARATIVE = 'nixos_container_declarative'
DECLARATIVE_DIR = '/etc/nixos/containers'
# 'decl' has a file the module wrote (set up below), 'fresh1' has none.
decl_names = st.sampled_from(['decl', 'fresh1'])


def declarative(c):
    """A nixos_container case for the declarative module (same needle), on its own names."""
    args = dict(c['args'])
    if args.get('name') == 'web':
        args['name'] = 'decl'
    return dict(args=args, needle=c['needle'])


# Each closes the braces the module puts around config, or opens one it never closes; wrapped in
# text that is fine on its own.
brace_closers = st.sampled_from(['}', '};', '} //', '} // {', '} {', '}; }; }', '} // import /etc/passwd // {',
                                 '}; containers.evil = { config = { }; }; x = {', '})', ')', '];', "''", '/*',
                                 '"', 'in', '} rec {', '\0} // {'])
hostile_config = st.tuples(st.sampled_from(['', NGINX, NGINX + '\n', 'x = "}";', '# {\n']), brace_closers,
                           st.sampled_from(['', ' {', ' // {', '\n{ a = 1;', ' rec {', '\n# }'])).map(''.join)
# Parses, but Nix would apply less than was given (it stops reading a string or the text at a NUL).
bad_directory = st.one_of(
    st.from_regex(r'[a-z.][a-z0-9./-]{0,20}', fullmatch=True),                  # relative
    st.sampled_from(['', '.', '..', './containers', 'etc/nixos/containers']),
    st.tuples(st.sampled_from(['/etc/passwd', '/etc/nixos/configuration.nix', DECLARATIVE_DIR + '/decl.nix',
                               DECLARATIVE_DIR + '/default.nix', DECLARATIVE_DIR + '/hand.nix']),
              st.sampled_from(['', '/', '/sub', '/a/b'])).map(''.join),             # a file, or under one
    st.from_regex(r'/etc/nixos/[a-z]{0,5}', fullmatch=True).map(lambda d: d + '\0x'),
)
NIXOS_CONTAINER_ONLY = ['flake', 'system_path', 'nixos_path', 'restart', 'recreate', 'rollback', 'rebuild',
                        'start_timeout', 'nixos_container_bin', 'cpu_quota', 'memory_max', 'unit_properties']

# (strategy, how many cases): fixed shares, so every kind of bad input is drawn in every run.
DECLARATIVE_CASES = (
    # names: '_', metacharacters, overlong, empty, leading '-'; the imports file's own name; not a string
    (st.one_of(bad_declarative_name.map(declarative),
               st.sampled_from(['present', 'absent']).map(lambda s: case('name', name='default', state=s, config=NGINX)),
               st.sampled_from([['decl'], {'a': 1}]).map(lambda n: case('name', name=n, config=NGINX))), 40),
    (st.one_of(bad_addresses.map(declarative),
               decl_names.map(lambda n: case('private_network', name=n, private_network=False, config=NGINX,
                                             host_address='10.233.77.1', local_address='10.233.77.2'))), 30),
    (bad_ports.map(declarative), 30),
    (st.one_of(bad_words.map(declarative), decl_names.map(lambda n: case('private_users', name=n, private_users='yes'))),
     30),
    (st.tuples(decl_names, st.one_of(hostile_config, nul_config)).map(lambda t: case('config', name=t[0], config=t[1])),
     40),
    (st.one_of(
        st.tuples(decl_names, st.sampled_from([{'_nix_path': 'relative/p'}, {'_nix_path': '/a b'}, {'_nix_package': 'a b'},
                                               {'_nix_package': ''}, {'_nix_path': 1}, 'a\0b'])).map(
            lambda t: case('settings', name=t[0], settings={'environment': {'x': t[1]}})),
        st.tuples(decl_names, st.sampled_from(['/nonexistent/x.nix', 'relative.nix', '/etc/nixos', '/a\0b'])).map(
            lambda t: case('config_file', name=t[0], config_file=t[1]))), 20),
    (st.tuples(decl_names, bad_directory, st.sampled_from(['present', 'absent'])).map(
        lambda t: case('directory', name=t[0], directory=t[1], state=t[2], config=NGINX)), 30),
    (st.one_of(
        decl_names.map(lambda n: case('mutually exclusive', name=n, config=NGINX,
                                      config_file='/etc/nixos/configuration.nix')),
        decl_names.map(lambda n: case('mutually exclusive', name=n, settings={'a': 1}, config_file='/etc/passwd')),
        decl_names.map(lambda n: case('is required as well', name=n, local_address='10.233.77.2'))), 10),
    (st.tuples(decl_names, st.one_of(unknown_key, st.sampled_from(NIXOS_CONTAINER_ONLY))).map(
        lambda t: case(t[1], **{'name': t[0], 'config': NGINX, t[1]: 1})), 20),
    (st.one_of(
        st.tuples(decl_names, st.sampled_from(['auto_start', 'restart_if_changed', 'private_network', 'ephemeral']),
                  st.sampled_from(['maybe', 'yess', '2', '[]'])).map(lambda t: case(t[1], **{'name': t[0], t[1]: t[2]})),
        st.tuples(decl_names, st.sampled_from(['running', 'restarted', 'up', '', 'Present'])).map(
            lambda t: case('state', name=t[0], state=t[1]))), 15),
)
HAND_WRITTEN = '{ containers.hand.config = { }; }\n'


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck), database=None,
          phases=[Phase.generate])
@given(data=st.data())
def test_generated_bad_inputs_to_the_declarative_module(fresh, data):
    """Bad input never touches the module's directory: its own file, the imports file, a hand-written one."""
    # Hypothesis's first example is its simplest (every draw its minimum: one case repeated per
    # group); with max_examples=1 that would be the only one. Refusing it makes the run a random one.
    assume(data.draw(st.integers(0, 255)) != 0)
    fresh.exec('host1', 'sh', '-c', 'mkdir -p %s && printf "{ imports = [ ./containers ]; }\\n" > '
               '/etc/nixos/configuration.nix && cat > %s/hand.nix' % (DECLARATIVE_DIR, DECLARATIVE_DIR),
               input=HAND_WRITTEN, check=True)
    try:
        setup = run_cases(fresh, 'host1', [(DECLARATIVE, dict(args=dict(name='decl', config=NGINX)))])
        assert setup[0].get('changed') and not setup[0].get('failed'), setup
        cases = [(DECLARATIVE, data.draw(strategy)) for strategy, count in DECLARATIVE_CASES for _i in range(count)]
        before = host_state(fresh, 'host1')
        assert all('"%s/%s"' % (DECLARATIVE_DIR, f) in before for f in ('decl.nix', 'default.nix', 'hand.nix'))
        problems = check_results(cases, run_cases(fresh, 'host1', cases))
        assert not problems, '%d of %d cases misbehaved, first ones:\n%s' % (
            len(problems), len(cases), '\n'.join(repr(p) for p in problems[:12]))
        after = host_state(fresh, 'host1')
        assert after == before, state_differences(before, after)
        distinct = {json.dumps(c['args'], sort_keys=True) for _module, c in cases}
        assert len(distinct) >= 150, len(distinct)
    finally:
        fresh.exec('host1', 'rm', '-rf', '/etc/nixos', check=True)
