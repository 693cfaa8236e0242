# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NAT plan: sysctl writes and one replacement of the owned table, run by the one executor."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._nat import Host, NatManager
from ansible_collections.nixfleet.containers.plugins.module_utils._nft import NatError

PARAMS = dict(state='present', backend='auto', table='nixfleet_nat', external_interface='eth0',
              internal_interfaces=['ve-*'], internal_ips=[], forwards=[], ipv6=False, ip_forward=True)
FORWARDING = ['net.ipv4.conf.all.forwarding', 'net.ipv4.conf.default.forwarding']


class FakeHost(object):
    """nft without a table yet, forwarding off, in network namespace ns1; every argv recorded."""

    def __init__(self):
        self.argvs = []

    def run(self, argv, data=None):
        self.argvs.append(list(argv))
        command = argv[4:]          # after ip netns exec ns1
        if command[:2] == ['/sysctl', '-n']:
            return 0, '0\n', ''
        if command[:2] == ['/nft', 'list'] or command[:3] == ['/nft', '-j', 'list']:
            return 1, '', 'Error: No such file or directory\n'
        return 0, '', ''

    @staticmethod
    def which(name):
        return {'nft': '/nft', 'sysctl': '/sysctl', 'ip': '/ip'}.get(name)


def test_check_mode_plans_the_sysctls_and_the_table_and_runs_nothing():
    fake = FakeHost()
    result = NatManager(PARAMS, Host(fake.run, fake.which, netns='ns1'), check_mode=True).run()
    assert (result['changed'], result['backend'], result['rules_changed'], result['actions']) == (
        True, 'nftables', True, [])
    assert result['diff']['before'] == ''.join('# %s = 0\n' % key for key in FORWARDING)
    assert result['diff']['after'].startswith(''.join('# %s = 1\n' % key for key in FORWARDING))
    assert 'masquerade' in result['diff']['after']
    assert all('-w' not in argv and '-f' not in argv for argv in fake.argvs)


def test_the_steps_run_in_order_in_the_namespace_and_a_bad_read_back_fails():
    fake = FakeHost()
    host = Host(fake.run, fake.which, netns='ns1')
    # The fake never shows the table after loading it: the read-back check must refuse that.
    with pytest.raises(NatError, match='read back after the change differ'):
        NatManager(PARAMS, host).run()
    assert host.actions == [
        ['/ip', 'netns', 'exec', 'ns1', '/sysctl', '-q', '-w', 'net.ipv4.conf.all.forwarding=1'],
        ['/ip', 'netns', 'exec', 'ns1', '/sysctl', '-q', '-w', 'net.ipv4.conf.default.forwarding=1'],
        ['/ip', 'netns', 'exec', 'ns1', '/nft', '-j', '-f', '-'],
    ]
