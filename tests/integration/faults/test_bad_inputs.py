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

from hypothesis import HealthCheck, given, settings, strategies as st

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


bad_name = st.one_of(
    st.from_regex(r'[a-z0-9]{12,40}', fullmatch=True),
    st.tuples(st.from_regex(r'[a-z]{1,4}', fullmatch=True),
              st.sampled_from(list('_./ ;$&|<>\'"\\*?!#%@:,=+~^()[]{}\n\t') + ['\u00e9', '\u2018']),
              st.from_regex(r'[a-z]{0,4}', fullmatch=True)).map(''.join),
    st.just(''), st.just('-web'),
).map(lambda n: case('name', name=n, config=NGINX))

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
    names.map(lambda n: case('required together', name=n, host_address='10.233.77.1', config=NGINX)),
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
bad_config = st.one_of(
    st.tuples(names, broken_nix, st.sampled_from(['', NGINX + '\n', 'environment.etc.a.text = "b";\n'])).map(
        lambda t: case('config', name=t[0], config=t[2] + t[1])),
    st.tuples(names, st.sampled_from([{'_nix_path': 'relative/p'}, {'_nix_path': '/a b'}, {'_nix_package': 'a b'},
                                      {'_nix_package': ''}, {'_nix_path': 1}])).map(
        lambda t: case('settings', name=t[0], settings={'environment': {'x': t[1]}})),
    names.map(lambda n: case('mutually exclusive', name=n, config=NGINX, flake='/srv/f#web')),
    names.map(lambda n: case('mutually exclusive', name=n, settings={'a': 1}, system_path='/nix/store/x')),
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
    'extra_flags', 'private_users', 'start_timeout', 'nixos_container_bin',
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
