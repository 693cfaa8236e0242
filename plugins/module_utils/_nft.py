# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host NAT for containers (facts §7): one validated spec, rendered for nftables.

This module_util is PRIVATE to the collection: it may change without notice.

The spec (:func:`nat_spec`) is backend-neutral: masquerade from internal interfaces and
source ranges out of one external interface (optionally SNAT to a fixed address), and port
forwards (DNAT). :func:`render_tables` turns it into the one table per family the module
owns, in exactly the JSON shape ``nft -j list table`` prints back, so the desired table and
the live one compare as plain data (no reload when they are equal). :func:`batch` makes the
``nft -j -f -`` input that replaces the table in ONE transaction: ``add; delete; add`` of
the table and its chains and rules commit together, so there is never a moment without
rules, and nothing outside the owned table (NixOS's ``nixos-nat``, nspawn's own table,
anyone else's) is touched.

Interface wildcards (facts §7.3, NixOS #72580): iptables' ``ve-+`` means "starts with ve-";
in nftables the same is ``ve-*`` and ``ve-+`` is a literal name that matches nothing. The
spec accepts either spelling and keeps a prefix; each backend writes its own form. Every
interface gets a rule of its own (no anonymous set), which works on every nftables version.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import json
import re

from ansible_collections.nixfleet.containers.plugins.module_utils._cli import CliError
from ansible_collections.nixfleet.containers.plugins.module_utils._errors import InputError
from ansible_collections.nixfleet.containers.plugins.module_utils._names import interface_name_error

DEFAULT_TABLE = 'nixfleet_nat'
FAMILIES = ((4, 'ip'), (6, 'ip6'))
# (name, hook, priority): dstnat = -100, srcnat = 100; out uses -100 as NixOS's does.
CHAINS = (('pre', 'prerouting', -100), ('out', 'output', -100), ('post', 'postrouting', 100))
PROTOCOLS = ('tcp', 'udp')
_TABLE_NAME = re.compile(r'^[a-zA-Z][a-zA-Z0-9_-]{0,63}\Z')
_PORT_RANGE = re.compile(r'^\s*([0-9]+)\s*(?:[-:]\s*([0-9]+)\s*)?\Z')


class NatSpecError(InputError):
    """Bad NAT input; the message names the parameter."""


class NatError(CliError):
    """A command failed while reading or changing the host."""


# ---- validation / normalisation -----------------------------------------------------------

def table_name_error(name):
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        return ('table %r must start with a letter and hold only letters, digits, "_" and "-" '
                '(at most 64 characters)' % (name,))
    if name == 'nixos-nat':
        return 'table nixos-nat belongs to NixOS networking.nat; give the module a table of its own'
    return None


def parse_interface_pattern(value, where):
    """``(name, is_prefix)``: ``ve-+`` and ``ve-*`` are the prefix ``ve-``; else an exact name."""
    if not isinstance(value, str) or not value:
        raise NatSpecError('%s: an interface name or pattern is required, got %r' % (where, value))
    text = value
    prefix = text.endswith('+') or text.endswith('*')
    base = text[:-1] if prefix else text
    if '*' in base or '+' in base:
        raise NatSpecError('%s: %r: a wildcard ("+" or "*") is only allowed at the end' % (where, value))
    if prefix and not base:
        raise NatSpecError('%s: %r would match every interface; name a prefix such as "ve-*"'
                           % (where, value))
    error = interface_name_error(base)
    if error:
        raise NatSpecError('%s: %s' % (where, error))
    return base, prefix


def nft_interface(pattern):
    """The nftables spelling of a parsed pattern (facts §7.3: ``*``, never ``+``)."""
    name, prefix = pattern
    return name + '*' if prefix else name


def iptables_interface(pattern):
    """The iptables spelling of a parsed pattern (facts §7.2: a trailing ``+``)."""
    name, prefix = pattern
    return name + '+' if prefix else name


def parse_port_range(value, where):
    """``(first, last)`` of ``8080``, ``"8080"``, ``"8000-8010"`` or ``"8000:8010"``."""
    if isinstance(value, bool):
        raise NatSpecError('%s: %r is not a port' % (where, value))
    if isinstance(value, int):
        first = last = value
    else:
        match = _PORT_RANGE.match(str(value)) if value is not None else None
        if not match:
            raise NatSpecError('%s: %r is not a port or a range FIRST-LAST' % (where, value))
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise NatSpecError('%s: port %d is outside 1-65535' % (where, port))
    if last < first:
        raise NatSpecError('%s: range %r ends before it starts' % (where, value))
    return first, last


def parse_destination(value, where):
    """``(address, ports or None)`` of ``ip``, ``ip:port``, ``ip:a-b``, ``[v6]:port`` or ``v6``."""
    if not isinstance(value, str) or not value.strip():
        raise NatSpecError('%s: a destination "ADDRESS:PORT" is required' % where)
    text = value
    host, ports = text, None
    if text.startswith('['):
        end = text.find(']')
        if end < 0:
            raise NatSpecError('%s: %r: missing "]"' % (where, value))
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(':'):
                raise NatSpecError('%s: %r: expected ":PORT" after "]"' % (where, value))
            ports = rest[1:]
    elif text.count(':') == 1:
        host, ports = text.split(':')
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise NatSpecError('%s: %r is not an IP address' % (where, host))
    return address, (parse_port_range(ports, where) if ports is not None else None)


def _address(value, where, version=None):
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        raise NatSpecError('%s: %r is not an IP address' % (where, value))
    if version and address.version != version:
        raise NatSpecError('%s: %r is not an IPv%d address' % (where, value, version))
    return address


def _network(value, where):
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise NatSpecError('%s: %r is not an address or CIDR range' % (where, value))


def nat_spec(params):
    """Validate the module parameters into a normalised, backend-neutral spec.

    Raises NatSpecError naming the parameter; nothing has been changed at that point.
    """
    table = DEFAULT_TABLE if params.get('table') is None else params.get('table')
    error = table_name_error(table)
    if error:
        raise NatSpecError('table: %s' % error)
    ipv6 = bool(params.get('ipv6'))

    external = params.get('external_interface')
    if external is not None:
        error = interface_name_error(external)
        if error:
            raise NatSpecError('external_interface: %s' % error)

    internal = []
    for index, value in enumerate(params.get('internal_interfaces') or []):
        pattern = parse_interface_pattern(value, 'internal_interfaces[%d]' % index)
        if pattern not in internal:
            internal.append(pattern)

    ranges = []
    for index, value in enumerate(params.get('internal_ips') or []):
        network = _network(value, 'internal_ips[%d]' % index)
        if network.version == 6 and not ipv6:
            raise NatSpecError('internal_ips[%d]: %s is IPv6; set ipv6=true' % (index, network))
        if network not in ranges:
            ranges.append(network)

    external_ip = {}
    for version, key in ((4, 'external_ip'), (6, 'external_ip6')):
        if params.get(key):
            external_ip[version] = _address(params[key], key, version)
    if 6 in external_ip and not ipv6:
        raise NatSpecError('external_ip6: set ipv6=true to NAT IPv6')

    forwards = []
    seen = {}
    for index, item in enumerate(params.get('forwards') or []):
        where = 'forwards[%d]' % index
        if not isinstance(item, dict):
            raise NatSpecError('%s: must be a dict' % where)
        proto = item.get('proto') or 'tcp'
        if proto not in PROTOCOLS:
            raise NatSpecError('%s.proto: %r is not one of %s' % (where, proto, ', '.join(PROTOCOLS)))
        ports = parse_port_range(item.get('host_port'), where + '.host_port')
        address, dest_ports = parse_destination(item.get('destination'), where + '.destination')
        if address.version == 6 and not ipv6:
            raise NatSpecError('%s.destination: %s is IPv6; set ipv6=true' % (where, address))
        if dest_ports and dest_ports[0] != dest_ports[1] and \
                dest_ports[1] - dest_ports[0] != ports[1] - ports[0]:
            raise NatSpecError('%s.destination: the port range %d-%d is not as long as host_port %d-%d'
                               % (where, dest_ports[0], dest_ports[1], ports[0], ports[1]))
        loopback = []
        for position, value in enumerate(item.get('loopback_ips') or []):
            ip = _address(value, '%s.loopback_ips[%d]' % (where, position), address.version)
            if ip not in loopback:
                loopback.append(ip)
        key = (proto, address.version)
        for other_index, other_ports in seen.get(key, []):
            if ports[0] <= other_ports[1] and other_ports[0] <= ports[1]:
                raise NatSpecError('%s: %s port %s overlaps forwards[%d] (the same host port cannot be '
                                   'forwarded twice)' % (where, proto, _ports_text(ports), other_index))
        seen.setdefault(key, []).append((index, ports))
        forwards.append(dict(proto=proto, ports=ports, address=address, dest_ports=dest_ports,
                             loopback_ips=loopback))

    if (forwards or internal or ranges) and external is None:
        raise NatSpecError('external_interface is required for masquerading and forwards (facts §7.1)')
    return dict(table=table, ipv6=ipv6, external_interface=external, internal_interfaces=internal,
                internal_ips=ranges, external_ip=external_ip, forwards=forwards)


def _ports_text(ports):
    return '%d' % ports[0] if ports[0] == ports[1] else '%d-%d' % ports


# ---- rendering (nftables JSON, in the shape nft prints back) ---------------------------------

def _match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def _meta(key):
    return {'meta': {'key': key}}


def _payload(protocol, field):
    return {'payload': {'protocol': protocol, 'field': field}}


def _port_value(ports):
    return ports[0] if ports[0] == ports[1] else {'range': [ports[0], ports[1]]}


def _addr_value(network):
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return {'prefix': {'addr': str(network.network_address), 'len': network.prefixlen}}


def _dnat(forward):
    statement = {'addr': str(forward['address'])}
    if forward['dest_ports']:
        statement['port'] = _port_value(forward['dest_ports'])
    return {'dnat': statement}


def _source_nat(spec, version):
    address = spec['external_ip'].get(version)
    return {'snat': {'addr': str(address)}} if address else {'masquerade': None}


def render_table(spec, version):
    """``{'chains': [...], 'rules': [...]}`` of the owned table for IP ``version``."""
    family = dict(FAMILIES)[version]
    chains = [dict(name=name, type='nat', hook=hook, prio=prio, policy='accept')
              for name, hook, prio in CHAINS]
    rules = []
    external = spec['external_interface']
    ext_ip = spec['external_ip'].get(version)
    for forward in spec['forwards']:
        if forward['address'].version != version:
            continue
        label = '%s %s -> %s' % (forward['proto'], _ports_text(forward['ports']),
                                 _destination_text(forward))
        dport = _match(_payload(forward['proto'], 'dport'), _port_value(forward['ports']))
        expr = [_match(_meta('iifname'), external)]
        if ext_ip:
            expr.append(_match(_payload(family, 'daddr'), str(ext_ip)))
        rules.append(dict(chain='pre', comment='forward ' + label, expr=expr + [dport, _dnat(forward)]))
        for loopback in forward['loopback_ips']:
            for chain in ('pre', 'out'):
                rules.append(dict(chain=chain, comment='loopback %s %s' % (loopback, label), expr=[
                    _match(_payload(family, 'daddr'), str(loopback)), dport, _dnat(forward)]))
        if forward['loopback_ips']:
            # Hairpin: a client behind the host reaching the forward gets the host as source,
            # so the reply comes back through the host and its conntrack entry.
            expr = [_match(_meta('oifname'), external, op='!='),
                    _match(_payload(family, 'daddr'), str(forward['address']))]
            if forward['dest_ports']:
                expr.append(_match(_payload(forward['proto'], 'dport'), _port_value(forward['dest_ports'])))
            expr += [_match({'ct': {'key': 'status'}}, 'dnat', op='in'), {'masquerade': None}]
            rules.append(dict(chain='post', comment='hairpin ' + label, expr=expr))
    for pattern in spec['internal_interfaces']:
        rules.append(dict(chain='post', comment='masquerade from %s' % nft_interface(pattern), expr=[
            _match(_meta('iifname'), nft_interface(pattern)),
            _match(_meta('oifname'), external),
            _source_nat(spec, version)]))
    for network in spec['internal_ips']:
        if network.version != version:
            continue
        rules.append(dict(chain='post', comment='masquerade from %s' % network, expr=[
            _match(_payload(family, 'saddr'), _addr_value(network)),
            _match(_meta('oifname'), external),
            _source_nat(spec, version)]))
    # nft lists a table chain by chain: keep the rules in that order, so what is read back
    # after the change compares equal (sorted is stable: each chain keeps its own order).
    order = [name for name, dummy, dummy2 in CHAINS]
    return dict(chains=chains, rules=sorted(rules, key=lambda rule: order.index(rule['chain'])))


def _destination_text(forward):
    address = str(forward['address'])
    if forward['address'].version == 6:
        address = '[%s]' % address
    if forward['dest_ports']:
        return '%s:%s' % (address, _ports_text(forward['dest_ports']))
    return address


def render_tables(spec, present=True):
    """``{family: table}`` the module wants: ``ip`` always, ``ip6`` with ipv6; none when absent."""
    if not present:
        return {}
    tables = {'ip': render_table(spec, 4)}
    if spec['ipv6']:
        tables['ip6'] = render_table(spec, 6)
    return tables


def parse_listing(text, table):
    """The owned table as ``nft -j list table FAMILY NAME`` printed it, in render_table's shape."""
    data = json.loads(text) if text.strip() else {'nftables': []}
    chains, rules = [], []
    for entry in data.get('nftables', []):
        if 'chain' in entry:
            chain = entry['chain']
            if chain.get('table') != table:
                continue
            item = dict(name=chain['name'])
            for key in ('type', 'hook', 'prio', 'policy'):
                if key in chain:
                    item[key] = chain[key]
            chains.append(item)
        elif 'rule' in entry:
            rule = entry['rule']
            if rule.get('table') != table:
                continue
            rules.append(dict(chain=rule['chain'], comment=rule.get('comment'), expr=rule.get('expr', [])))
    return dict(chains=chains, rules=rules)


def batch(table, desired, current_families):
    """The ``nft -j -f`` input that makes the owned tables exactly ``desired``, atomically.

    ``desired``: {family: table}. Families in ``current_families`` but not desired are deleted.
    """
    commands = []
    for family in sorted(set(desired) | set(current_families)):
        ident = {'family': family, 'name': table}
        # add (no-op when it exists) + delete: the table is gone in this transaction whatever
        # was there; the add that follows rebuilds it. All of it commits at once.
        commands.append({'add': {'table': dict(ident)}})
        commands.append({'delete': {'table': dict(ident)}})
        if family not in desired:
            continue
        commands.append({'add': {'table': dict(ident)}})
        for chain in desired[family]['chains']:
            body = dict(family=family, table=table)
            body.update(chain)
            commands.append({'add': {'chain': body}})
        for rule in desired[family]['rules']:
            body = dict(family=family, table=table, chain=rule['chain'], expr=rule['expr'])
            if rule.get('comment'):
                body['comment'] = rule['comment']
            commands.append({'add': {'rule': body}})
    return json.dumps({'nftables': commands}, sort_keys=True)


# ---- a readable ruleset for --diff ----------------------------------------------------------

def _value_text(value):
    if isinstance(value, dict):
        if 'range' in value:
            return '%s-%s' % tuple(value['range'])
        if 'prefix' in value:
            return '%s/%s' % (value['prefix']['addr'], value['prefix']['len'])
        if 'set' in value:
            return '{ %s }' % ', '.join(_value_text(v) for v in value['set'])
    if isinstance(value, str) and not re.match(r'^[0-9a-fA-F.:]+\Z', value):
        return '"%s"' % value if value not in ('dnat', 'snat') else value
    return str(value)


def _left_text(left):
    if 'meta' in left:
        return left['meta']['key']
    if 'payload' in left:
        return '%s %s' % (left['payload']['protocol'], left['payload']['field'])
    if 'ct' in left:
        return 'ct %s' % left['ct']['key']
    return json.dumps(left, sort_keys=True)


def _statement_text(statement):
    if 'match' in statement:
        match = statement['match']
        op = '' if match['op'] in ('==', 'in') else match['op'] + ' '
        return '%s %s%s' % (_left_text(match['left']), op, _value_text(match['right']))
    if 'masquerade' in statement:
        return 'masquerade'
    for kind in ('dnat', 'snat'):
        if kind in statement:
            body = statement[kind] or {}
            addr = body.get('addr', '')
            if ':' in str(addr) and 'port' in body:
                addr = '[%s]' % addr
            port = (':%s' % _value_text(body['port'])) if 'port' in body else ''
            return '%s to %s%s' % (kind, addr, port)
    return json.dumps(statement, sort_keys=True)


def ruleset_text(tables, table_name):
    """``nft list``-like text of ``{family: table}`` (empty string when there is none)."""
    lines = []
    for family in sorted(tables):
        table = tables[family]
        lines.append('table %s %s {' % (family, table_name))
        for chain in table['chains']:
            lines.append('\tchain %s {' % chain['name'])
            if 'hook' in chain:
                lines.append('\t\ttype %s hook %s priority %s; policy %s;'
                             % (chain.get('type'), chain['hook'], chain.get('prio'), chain.get('policy')))
            for rule in table['rules']:
                if rule['chain'] != chain['name']:
                    continue
                text = ' '.join(_statement_text(s) for s in rule['expr'])
                if rule.get('comment'):
                    text += ' comment "%s"' % rule['comment']
                lines.append('\t\t' + text)
            lines.append('\t}')
        lines.append('}')
    return '\n'.join(lines) + ('\n' if lines else '')
