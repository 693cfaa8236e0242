# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host NAT of nixos_container_nat: backend choice, forwarding sysctls, read/compare/apply.

This module_util is PRIVATE to the collection: it may change without notice.

The rules themselves are rendered by ``_nft`` (nftables) and ``_iptables``; this file reads
what the host has, compares it with what the spec wants, and changes the host only when they
differ (a second run neither reloads rules nor writes sysctls). Commands go through one
``run(argv, data=None) -> (rc, stdout, stderr)`` callable, as argv lists.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nixfleet.containers.plugins.module_utils import _nft
from ansible_collections.nixfleet.containers.plugins.module_utils import _iptables
from ansible_collections.nixfleet.containers.plugins.module_utils._host import Commands
from ansible_collections.nixfleet.containers.plugins.module_utils._nft import NatError
from ansible_collections.nixfleet.containers.plugins.module_utils._steps import execute, Plan, Step

# NixOS networking.nat sets both (facts §7.1); all/forwarding also switches ip_forward.
FORWARDING_SYSCTLS = {
    4: ('net.ipv4.conf.all.forwarding', 'net.ipv4.conf.default.forwarding'),
    6: ('net.ipv6.conf.all.forwarding', 'net.ipv6.conf.default.forwarding'),
}


class Host(Commands):
    """The host's commands (``_host.Commands``, failures are NatError) and its sysctls, or
    those of one network namespace on it."""

    error = NatError

    def binary(self, name):
        return self.which(name)

    def read_sysctl(self, key):
        if not self.netns:
            try:
                with open('/proc/sys/' + key.replace('.', '/')) as handle:
                    return handle.read().strip()
            except (IOError, OSError):
                return None
        rc, out, _err = self.query([self.which('sysctl') or 'sysctl', '-n', key])
        return out.strip() if rc == 0 else None

    def write_sysctl(self, key, value):
        self.call([self.which('sysctl') or 'sysctl', '-q', '-w', '%s=%s' % (key, value)],
                  'sysctl %s=%s' % (key, value))


def choose_backend(requested, host, table):
    """``nftables`` or ``iptables``. ``auto``: what the module already uses on the host, else
    nftables when ``nft`` exists and iptables is absent or its nf_tables flavour, else iptables.
    """
    if requested != 'auto':
        return requested
    nft = host.binary('nft')
    iptables = host.binary('iptables')
    if nft:
        rc, _out, _err = host.query([nft, 'list', 'table', 'ip', table])
        if rc == 0:
            return 'nftables'
    if iptables and _iptables.chains_exist(host, iptables, table):
        return 'iptables'
    if nft:
        if not iptables:
            return 'nftables'
        rc, out, err = host.query([iptables, '--version'])
        if rc == 0 and 'legacy' not in (out + err):
            return 'nftables'
    if iptables:
        return 'iptables'
    raise NatError('neither nft nor iptables was found on the host')


class NatManager(object):
    """Read, compare, apply. ``run()`` returns the module result."""

    def __init__(self, params, host, check_mode=False):
        self.params = params
        self.host = host
        self.check_mode = check_mode

    def run(self):
        spec = _nft.nat_spec(self.params)
        present = self.params.get('state', 'present') == 'present'
        backend = choose_backend(self.params.get('backend') or 'auto', self.host, spec['table'])
        if backend == 'nftables':
            rules = NftBackend(self.host, spec['table'])
        else:
            rules = _iptables.IptablesBackend(self.host, spec['table'])
        before_rules, before_families = rules.read()
        desired = rules.render(spec, present)
        rules_changed = rules.differs(before_rules, desired)

        sysctls_before, sysctls_after = self._sysctls(spec, present)

        steps = [Step('write_sysctl', key=key, value=value) for key, value in sorted(sysctls_after.items())
                 if sysctls_before.get(key) != value]
        if rules_changed:
            steps.append(Step('replace_rules', desired=desired, current_families=before_families))
        # Unchanged rules are shown as read (iptables -S spells them its own way).
        ruleset = rules.text(desired if rules_changed else before_rules)
        plan = Plan('configure' if steps else 'noop', steps,
                    before=_sysctl_text(sysctls_before) + rules.text(before_rules),
                    after=_sysctl_text(sysctls_after) + ruleset)
        if not self.check_mode:
            execute(plan.steps, _NatOperations(self.host, rules))
        return dict(changed=plan.changes, backend=backend, table=spec['table'],
                    rules_changed=rules_changed, sysctls=sysctls_after, ruleset=ruleset,
                    actions=self.host.actions,
                    diff=dict(before=plan.before, after=plan.after,
                              before_header='%s %s' % (backend, spec['table']),
                              after_header='%s %s' % (backend, spec['table'])))

    def _sysctls(self, spec, present):
        before, after = {}, {}
        if not (present and self.params.get('ip_forward', True)):
            return before, after
        versions = (4, 6) if spec['ipv6'] else (4,)
        for version in versions:
            for key in FORWARDING_SYSCTLS[version]:
                value = self.host.read_sysctl(key)
                if value is None:
                    raise NatError('cannot read the sysctl %s (is IPv%d enabled?)' % (key, version))
                before[key] = value
                after[key] = '1'
        return before, after


class _NatOperations(object):
    """What a NAT step can do: write a sysctl, replace the owned rules (and read them back)."""

    def __init__(self, host, rules):
        self.host = host
        self.rules = rules

    def write_sysctl(self, key, value):
        self.host.write_sysctl(key, value)

    def replace_rules(self, desired, current_families):
        self.rules.apply(desired, current_families)
        after, _families = self.rules.read()
        if self.rules.differs(after, desired):
            raise NatError('the %s rules read back after the change differ from the rendered '
                           'ones:\n%s' % (self.rules.name, self.rules.text(after)))


def _sysctl_text(values):
    return ''.join('# %s = %s\n' % item for item in sorted(values.items()))


class NftBackend(object):
    """One owned table per family, replaced whole in one ``nft -j -f -`` transaction."""

    name = 'nftables'

    def __init__(self, host, table):
        self.host = host
        self.table = table
        self.nft = host.binary('nft')
        if not self.nft:
            raise NatError('backend nftables: the nft command was not found on the host')

    def read(self):
        tables = {}
        for _version, family in _nft.FAMILIES:
            rc, out, err = self.host.query([self.nft, '-j', 'list', 'table', family, self.table])
            if rc != 0:
                if 'No such file or directory' in err:
                    continue
                raise NatError('nft list table %s %s failed: %s' % (family, self.table, err.strip()),
                               rc=rc, stderr=err)
            tables[family] = _nft.parse_listing(out, self.table)
        return tables, set(tables)

    @staticmethod
    def render(spec, present):
        return _nft.render_tables(spec, present)

    @staticmethod
    def differs(current, desired):
        return current != desired

    def apply(self, desired, current_families):
        data = _nft.batch(self.table, desired, current_families)
        self.host.call([self.nft, '-j', '-f', '-'], 'nft -j -f (replace table %s)' % self.table, data=data)

    def text(self, tables):
        return _nft.ruleset_text(tables, self.table)
