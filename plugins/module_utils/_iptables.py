# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The iptables backend of nixos_container_nat: own chains, ``-C`` checks, one restore.

This module_util is PRIVATE to the collection: it may change without notice.

Like NixOS's iptables NAT (facts §7.2), the module owns three chains in table ``nat``
(``<PREFIX>-PRE`` from PREROUTING, ``-POST`` from POSTROUTING, ``-OUT`` from OUTPUT).
iptables refuses ``-i`` in POSTROUTING, so packets entering on an internal interface are
marked in PRE and masqueraded in POST (facts §7.2). Whether the live chains match is decided
by the rule count of each chain and ``-C`` for every wanted rule; a change is applied by ONE
``iptables-restore --noflush`` of the nat table, which commits atomically.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.nixfleet.containers.plugins.module_utils import _nft
from ansible_collections.nixfleet.containers.plugins.module_utils._nft import NatError

TOOLS = {4: 'iptables', 6: 'ip6tables'}
HOOKS = (('PRE', 'PREROUTING'), ('POST', 'POSTROUTING'), ('OUT', 'OUTPUT'))
INTERNAL_MARK = '0x1'
_UNSAFE = re.compile(r'[^A-Za-z0-9_./:,+=@%-]')


def chain_prefix(table):
    """Chain names are at most 28 characters: ``NIXFLEET-NAT-POST`` for the default table."""
    return table.upper().replace('_', '-')[:23]


def chain_names(table):
    prefix = chain_prefix(table)
    return dict((suffix, '%s-%s' % (prefix, suffix)) for suffix, _hook in HOOKS)


def chains_exist(host, iptables, table):
    rc, _out, _err = host.query([iptables, '-w', '-t', 'nat', '-S', chain_names(table)['POST']])
    return rc == 0


def _ports(ports, separator=':'):
    return '%d' % ports[0] if ports[0] == ports[1] else '%d%s%d' % (ports[0], separator, ports[1])


def _destination(forward):
    address = str(forward['address'])
    if forward['address'].version == 6:
        address = '[%s]' % address
    if forward['dest_ports']:
        address += ':' + _ports(forward['dest_ports'], '-')
    return address


def render_rules(spec, version):
    """``[(suffix, [args...]), ...]``: the wanted rules of each owned chain, in order."""
    rules = []
    external = spec['external_interface']
    ext_ip = spec['external_ip'].get(version)
    if ext_ip:
        source_nat = ['-j', 'SNAT', '--to-source', str(ext_ip)]
    else:
        source_nat = ['-j', 'MASQUERADE']
    for forward in spec['forwards']:
        if forward['address'].version != version:
            continue
        dport = ['-p', forward['proto'], '-m', forward['proto'], '--dport', _ports(forward['ports'])]
        dnat = ['-j', 'DNAT', '--to-destination', _destination(forward)]
        match = ['-i', external] + (['-d', str(ext_ip)] if ext_ip else [])
        rules.append(('PRE', match + dport + dnat))
        for loopback in forward['loopback_ips']:
            for suffix in ('PRE', 'OUT'):
                rules.append((suffix, ['-d', str(loopback)] + dport + dnat))
        if forward['loopback_ips']:
            hairpin = ['!', '-o', external, '-d', str(forward['address']), '-p', forward['proto'],
                       '-m', forward['proto']]
            if forward['dest_ports']:
                hairpin += ['--dport', _ports(forward['dest_ports'])]
            rules.append(('POST', hairpin + ['-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'MASQUERADE']))
    for pattern in spec['internal_interfaces']:
        rules.append(('PRE', ['-i', _nft.iptables_interface(pattern), '-j', 'MARK', '--set-mark', INTERNAL_MARK]))
    if spec['internal_interfaces']:
        rules.append(('POST', ['-m', 'mark', '--mark', INTERNAL_MARK, '-o', external] + source_nat))
    for network in spec['internal_ips']:
        if network.version == version:
            rules.append(('POST', ['-s', str(network), '-o', external] + source_nat))
    return rules


def _quote(word):
    return '"%s"' % word.replace('"', '\\"') if _UNSAFE.search(word) or not word else word


def _line(words):
    return ' '.join(_quote(w) for w in words)


class IptablesBackend(object):
    """``read`` / ``render`` / ``differs`` / ``apply`` / ``text``, as NftBackend has them."""

    name = 'iptables'

    def __init__(self, host, table):
        self.host = host
        self.table = table
        self.chains = chain_names(table)
        self.tools = {}
        for version, tool in TOOLS.items():
            path = host.binary(tool)
            restore = host.binary(tool + '-restore')
            if path and restore:
                self.tools[version] = (path, restore)
        if 4 not in self.tools:
            raise NatError('backend iptables: iptables and iptables-restore were not found on the host')

    def _tool(self, version):
        if version not in self.tools:
            raise NatError('backend iptables: %s was not found on the host' % TOOLS[version])
        return self.tools[version][0]

    def read(self):
        """``{version: {'lines': [...], 'jumps': set(), 'present': bool}}`` of the owned chains."""
        state = {}
        for version in sorted(self.tools):
            rc, out, err = self.host.query([self._tool(version), '-w', '-t', 'nat', '-S'])
            if rc != 0:
                if version == 6:
                    continue
                raise NatError('iptables -t nat -S failed: %s' % err.strip(), rc=rc, stderr=err)
            ours = set(self.chains.values())
            lines, jumps, present = [], set(), False
            for line in out.splitlines():
                words = line.split()
                if len(words) >= 2 and words[0] == '-N' and words[1] in ours:
                    present = True
                elif len(words) >= 2 and words[0] == '-A' and words[1] in ours:
                    lines.append(line)
                elif len(words) == 4 and words[0] == '-A' and words[2] == '-j' and words[3] in ours:
                    jumps.add((words[1], words[3]))
            if present or jumps:
                state[version] = dict(lines=lines, jumps=jumps)
        return state, set(state)

    def render(self, spec, present):
        if not present:
            return {}
        versions = (4, 6) if spec['ipv6'] else (4,)
        return dict((version, render_rules(spec, version)) for version in versions)

    def _wanted_jumps(self):
        return set((hook, self.chains[suffix]) for suffix, hook in HOOKS)

    def differs(self, current, desired):
        if set(current) != set(desired):
            return True
        for version, rules in desired.items():
            state = current[version]
            if state['jumps'] != self._wanted_jumps() or len(state['lines']) != len(rules):
                return True
            for suffix, args in rules:
                rc, _out, _err = self.host.query([self._tool(version), '-w', '-t', 'nat', '-C',
                                                  self.chains[suffix]] + args)
                if rc != 0:
                    return True
        return False

    def apply(self, desired, current_versions):
        for version in sorted(set(desired) | set(current_versions)):
            lines = ['*nat']
            current, _versions = self.read()
            existing = current.get(version)
            if version in desired:
                for suffix, _hook in HOOKS:
                    lines.append(':%s - [0:0]' % self.chains[suffix])
                for suffix, _hook in HOOKS:
                    lines.append('-F %s' % self.chains[suffix])
                for suffix, args in desired[version]:
                    lines.append(_line(['-A', self.chains[suffix]] + args))
                have = existing['jumps'] if existing else set()
                for hook, chain in sorted(self._wanted_jumps() - have):
                    lines.append('-A %s -j %s' % (hook, chain))
            elif existing:
                for hook, chain in sorted(existing['jumps']):
                    lines.append('-D %s -j %s' % (hook, chain))
                for suffix, _hook in HOOKS:
                    lines.append(':%s - [0:0]' % self.chains[suffix])
                    lines.append('-F %s' % self.chains[suffix])
                for suffix, _hook in HOOKS:
                    lines.append('-X %s' % self.chains[suffix])
            lines.append('COMMIT')
            restore = self.tools[version][1]
            self.host.call([restore, '-w', '--noflush'], '%s (chains of %s)' % (restore, self.table),
                           data='\n'.join(lines) + '\n')

    def text(self, state_or_rules):
        out = []
        for version in sorted(state_or_rules):
            value = state_or_rules[version]
            out.append('# %s -t nat' % TOOLS[version])
            if isinstance(value, dict):
                out += ['-A %s -j %s' % jump for jump in sorted(value['jumps'])] + value['lines']
            else:
                out += ['-A %s -j %s' % (hook, self.chains[suffix]) for suffix, hook in HOOKS]
                out += [_line(['-A', self.chains[suffix]] + args) for suffix, args in value]
        return '\n'.join(out) + ('\n' if out else '')
