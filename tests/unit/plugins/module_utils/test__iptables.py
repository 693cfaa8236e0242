# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The iptables backend's read: a failed IPv4 listing is an error, a missing IPv6 nat table is not."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nixfleet.containers.plugins.module_utils._iptables import IptablesBackend
from ansible_collections.nixfleet.containers.plugins.module_utils._nft import NatError


class FakeHost(object):
    """Every tool exists; listing the nat table fails for the tools in FAILING."""

    def __init__(self, failing):
        self.failing = failing

    def binary(self, name):
        return '/usr/sbin/%s' % name

    def query(self, argv, data=None):
        if argv[0].rsplit('/', 1)[-1] in self.failing:
            return 3, '', "can't initialize iptables table `nat': Table does not exist"
        return 0, '-P PREROUTING ACCEPT\n-N NIXFLEET-NAT-POST\n', ''


def test_a_failed_ipv4_listing_is_reported():
    with pytest.raises(NatError) as info:
        IptablesBackend(FakeHost(['iptables']), 'nixfleet_nat').read()
    assert 'iptables -t nat -S failed' in str(info.value)
    assert info.value.as_dict()['rc'] == 3


def test_a_missing_ipv6_nat_table_is_skipped():
    state, _families = IptablesBackend(FakeHost(['ip6tables']), 'nixfleet_nat').read()
    assert 6 not in state and 4 in state
