# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nixos_container_network: address allocation from pools and the host side of a container.

This module_util is PRIVATE to the collection: it may change without notice.

:func:`allocate` is pure (conf values, live addresses/routes and the fleet list in, an
allocation out). :class:`NetworkManager` reads the kernel once through ``_netlink``, plans
bridges first and then the container's interface, and applies the steps unless in check mode.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress

from ansible_collections.nixfleet.containers.plugins.module_utils import _addressing
from ansible_collections.nixfleet.containers.plugins.module_utils import _netlink
from ansible_collections.nixfleet.containers.plugins.module_utils._envfile import parse_conf
from ansible_collections.nixfleet.containers.plugins.module_utils._names import (
    container_name_error,
    host_interface_name,
    interface_name_error,
)
from ansible_collections.nixfleet.containers.plugins.module_utils._paths import Layout
from ansible_collections.nixfleet.containers.plugins.module_utils._steps import execute, Plan, Step

ADDRESS_KEYS = {4: ('HOST_ADDRESS', 'LOCAL_ADDRESS'), 6: ('HOST_ADDRESS6', 'LOCAL_ADDRESS6')}
FLEET_KEYS = {4: ('host_address', 'local_address'), 6: ('host_address6', 'local_address6')}


# ---- allocation ---------------------------------------------------------------------------

def _interface_or_none(value):
    if value in (None, ''):
        return None
    try:
        return ipaddress.ip_interface(str(value))
    except ValueError:
        return None


def _pair_in(values, keys, network):
    """The (host, local) interfaces of ``values`` when both are set and inside ``network``."""
    host = _interface_or_none(values.get(keys[0]))
    local = _interface_or_none(values.get(keys[1]))
    if host is None or local is None or host.version != network.version:
        return None
    if host.ip in network and local.ip in network:
        return host, local
    return None


def _text(interface, mode):
    return str(interface.ip) if mode == 'pair' else str(interface)


def allocate(name, confs, live_addresses, live_routes, fleet, pools, owner=None):
    """The addresses of container ``name`` from ``pools``.

    ``confs``: {container name: conf values} of this host. ``live_addresses``: ip_interface
    objects on the host's links (those of ``name``'s own interfaces excluded by the caller);
    ``live_routes``: route destinations. ``fleet``: dicts with ``name``, optional ``host`` and
    ``host_address``/``local_address``/``host_address6``/``local_address6`` (the caller's
    fleet-wide list). ``pools``: {4 or 6: (cidr, block_prefix, mode)}. ``owner``: this host's
    name in ``fleet``. A name keeps what its conf (or its own fleet entry) already has.
    """
    result = dict(source={})
    own_fleet = [e for e in fleet if e.get('name') == name and e.get('host') in (None, '', owner)]
    for version in sorted(pools):
        cidr, block_prefix, mode = pools[version]
        network, block_prefix = _addressing.parse_pool(cidr, block_prefix, 'pool' if version == 4 else 'pool6')
        keys, fleet_keys = ADDRESS_KEYS[version], FLEET_KEYS[version]
        kept = _pair_in(confs.get(name, {}), keys, network)
        source = 'conf'
        if kept is None:
            source = 'fleet'
            for entry in own_fleet:
                kept = _pair_in(entry, fleet_keys, network)
                if kept:
                    break
        if kept is None:
            used, networks = [], []
            for other, values in confs.items():
                if other == name:
                    continue
                for key in keys:
                    interface = _interface_or_none(values.get(key))
                    if interface is not None:
                        used.append(interface)
                        if interface.network.prefixlen < interface.max_prefixlen:
                            networks.append(interface.network)
            for entry in fleet:
                if entry in own_fleet:
                    continue
                for key in fleet_keys:
                    interface = _interface_or_none(entry.get(key))
                    if interface is not None:
                        used.append(interface)
                        if interface.network.prefixlen < interface.max_prefixlen:
                            networks.append(interface.network)
            for interface in live_addresses:
                used.append(interface)
                if interface.network.prefixlen < interface.max_prefixlen:
                    networks.append(interface.network)
            networks.extend(r for r in live_routes if r.prefixlen > 0)
            _block, host, local = _addressing.allocate_block(name, network, block_prefix, mode, used, networks)
            kept = (host, local)
            source = 'new'
        host, local = kept
        result[fleet_keys[0]] = _text(host, mode)
        result[fleet_keys[1]] = _text(local, mode)
        result['source'][str(version)] = source
    result['name'] = name
    if owner:
        result['host'] = owner
    return result


def read_confs(layout=None):
    """{name: values} of every container conf on the host (unreadable ones skipped)."""
    layout = layout or Layout.detect()
    confs = {}
    for name in layout.list_names():
        try:
            with open(layout.conf_path(name)) as handle:
                confs[name] = parse_conf(handle.read())
        except (IOError, OSError, ValueError):
            continue
    return confs


# ---- the host side ------------------------------------------------------------------------

class NetworkManager(object):
    """Plans and applies bridges and one container interface; ``run()`` gives the result."""

    def __init__(self, params, check_mode=False, netlink_factory=_netlink.Netlink):
        self.params = params
        self.check_mode = check_mode
        self.netlink_factory = netlink_factory
        self.actions = []
        self.applied = 0   # how many of the actions finished (a failed one is the last action)
        self.nl = None

    def run(self):
        params = self.params
        name = params.get('name')
        if name is not None:
            error = container_name_error(name)
            if error:
                raise ValueError('name: %s' % error)
        interface = params.get('interface')
        releasing = params.get('bridge_state') == 'absent'
        if releasing and not params.get('bridge'):
            raise ValueError('bridge_state: absent needs bridge, the bridge to release the interface from')
        if interface is None and name:
            interface = host_interface_name(name, bridged=bool(params.get('bridge')) and not releasing)
        for key, value in (('interface', interface), ('bridge', params.get('bridge'))):
            if value is not None:
                error = interface_name_error(value)
                if error:
                    raise ValueError('%s: %s' % (key, error))
        bridges = self._bridge_specs()
        host_addresses = self._addresses('host_addresses')
        local_routes = self._routes('local_addresses')
        pools = self._pools()
        if pools and not name:
            raise ValueError('allocate needs name (allocations are per container name)')
        if self.params.get('allocate') and self.params['allocate'].get('apply') and \
                (host_addresses is not None or local_routes is not None):
            raise ValueError('allocate.apply and host_addresses/local_addresses are mutually exclusive')

        self.nl = self.netlink_factory(params.get('netns'))
        try:
            return self._run(name, interface, bridges, host_addresses, local_routes, pools)
        finally:
            self.nl.close()

    # ---- input ------------------------------------------------------------------------
    def _addresses(self, key):
        values = self.params.get(key)
        if values is None:
            return None
        return sorted(set(_netlink.normalise_address(v, '%s[%d]' % (key, i)) for i, v in enumerate(values)),
                      key=_netlink._sort_key)

    def _routes(self, key):
        values = self.params.get(key)
        if values is None:
            return None
        return sorted(set(_netlink.normalise_route(v, '%s[%d]' % (key, i)) for i, v in enumerate(values)),
                      key=_netlink._sort_key)

    def _bridge_specs(self):
        specs = []
        seen = set()
        for index, item in enumerate(self.params.get('bridges') or []):
            where = 'bridges[%d]' % index
            error = interface_name_error(item.get('name'))
            if error:
                raise ValueError('%s.name: %s' % (where, error))
            if item['name'] in seen:
                raise ValueError('%s.name: bridge %s is listed twice' % (where, item['name']))
            seen.add(item['name'])
            mtu = item.get('mtu')
            if mtu is not None and not 68 <= mtu <= 65535:
                raise ValueError('%s.mtu: %d is outside 68-65535' % (where, mtu))
            addresses = None
            if item.get('addresses') is not None:
                addresses = sorted(set(_netlink.normalise_address(v, '%s.addresses[%d]' % (where, i))
                                       for i, v in enumerate(item['addresses'])), key=_netlink._sort_key)
            specs.append(dict(name=item['name'], state=item.get('state') or 'present', mtu=mtu,
                              addresses=addresses, link_state=item.get('link_state') or 'up'))
        return specs

    def _pools(self):
        allocate_params = self.params.get('allocate')
        if not allocate_params:
            return {}
        pools = {}
        mode = allocate_params.get('mode') or 'pair'
        for version, key, prefix_key in ((4, 'pool', 'block_prefix'), (6, 'pool6', 'block_prefix6')):
            cidr = allocate_params.get(key)
            if cidr is None:
                continue
            if not cidr:
                raise ValueError('allocate.%s: an empty pool; leave it out for the default' % key)
            try:
                network, block_prefix = _addressing.parse_pool(cidr, allocate_params.get(prefix_key), 'allocate.' + key)
            except _addressing.PoolError as e:
                raise ValueError(str(e))
            if network.version != version:
                raise ValueError('allocate.%s: %s is not an IPv%d range' % (key, cidr, version))
            pools[version] = (network, block_prefix, mode)
        for index, entry in enumerate(allocate_params.get('fleet_allocations') or []):
            if not isinstance(entry, dict) or not entry.get('name'):
                raise ValueError('allocate.fleet_allocations[%d]: each entry needs a name' % index)
        return pools

    # ---- the work ---------------------------------------------------------------------
    def _run(self, name, ifname, bridges, host_addresses, local_routes, pools):
        links = self.nl.links()
        result = dict(changed=False)
        if pools:
            allocation = self._allocate(name, ifname, links, pools)
            result['allocation'] = allocation
            if self.params['allocate'].get('apply'):
                host_addresses = sorted(
                    [_netlink.normalise_address(allocation[k], 'allocation') for k in ('host_address', 'host_address6')
                     if allocation.get(k)], key=_netlink._sort_key)
                local_routes = sorted(
                    [_netlink.normalise_route(_addressing_ip(allocation[k]), 'allocation')
                     for k in ('local_address', 'local_address6') if allocation.get(k)], key=_netlink._sort_key)

        plan = Plan('noop', [], before={}, after={})
        for spec in bridges:
            self._add(plan, spec['name'], *self._plan_bridge(spec, links))
        manage_interface = ifname and (host_addresses is not None or local_routes is not None
                                       or self.params.get('bridge') or self.params.get('link_state')
                                       or self.params.get('state') == 'absent')
        result['interface'] = {}
        if manage_interface:
            before, after, steps = self._plan_interface(ifname, links, host_addresses, local_routes)
            if before is None:
                result['missing'] = True
            else:
                self._add(plan, ifname, before, after, steps)
        plan.action = 'configure' if plan.steps else 'noop'

        result['changed'] = plan.changes
        result['steps'] = plan.names
        if not self.check_mode:
            execute(plan.steps, _LinkOperations(self.nl), before=self._starting)
            self.applied = len(self.actions)
        result['actions'] = self.actions
        result['diff'] = dict(before=plan.before, after=plan.after)
        if manage_interface and not self.check_mode and plan.changes:
            link = self.nl.link(ifname)
            if link:
                result['interface'] = _netlink.link_view(link, self.nl.addresses(link['index']),
                                                         self.nl.routes(link['index']))
        elif manage_interface:
            result['interface'] = plan.after.get(ifname, plan.before.get(ifname, {}))
        return result

    def _starting(self, step):
        self.applied = len(self.actions)
        self.actions.append(step.label)

    def failure_details(self):
        """What a failed run reports beside its message: the actions, and whether the host changed."""
        done = self.actions[:self.applied]
        return dict(actions=self.actions, changed=bool(done),
                    msg_suffix='; already done: %s' % ', '.join(done) if done else '')

    def _allocate(self, name, ifname, links, pools):
        own = set([ifname, host_interface_name(name), host_interface_name(name, bridged=True)])
        own_indexes = set(links[n]['index'] for n in own if n in links)
        # The container's own interfaces hold its own (kept) addresses: not a collision.
        live = [a for index, a in self.nl.addresses(with_index=True) if index not in own_indexes]
        routes = [r for index, r in self.nl.routes(with_index=True) if index not in own_indexes]
        allocate_params = self.params['allocate']
        confs = read_confs() if allocate_params.get('scan_confs', True) else {}
        try:
            return allocate(name, confs, live, routes, allocate_params.get('fleet_allocations') or [],
                            pools, owner=allocate_params.get('owner'))
        except _addressing.PoolExhausted as e:
            raise ValueError('allocate: %s' % e)

    @staticmethod
    def _add(plan, name, before, after, steps):
        plan.before[name] = before
        plan.after[name] = after
        plan.steps += steps

    def _plan_bridge(self, spec, links):
        """(before, after, steps) of one bridge."""
        name = spec['name']
        link = links.get(name)
        if link is not None and link.get('kind') != 'bridge':
            raise ValueError('bridges: %s exists and is not a bridge (kind %s)' % (name, link.get('kind')))
        addresses = self.nl.addresses(link['index']) if link else []
        before = _netlink.link_view(link, addresses, [])
        steps = []
        if spec['state'] == 'absent':
            if link is not None:
                steps.append(Step('delete_link', 'delete bridge %s' % name, name=name))
            return before, {}, steps
        if link:
            view = dict(before)
        else:
            view = dict(name=name, kind='bridge', state='down', mtu=1500, master='', addresses=[], routes=[])
            steps.append(Step('create_bridge', 'create bridge %s' % name, name=name))
        if spec['mtu'] is not None and view['mtu'] != spec['mtu']:
            steps.append(Step('set_link', 'set mtu %d on %s' % (spec['mtu'], name), name=name, mtu=spec['mtu']))
            view['mtu'] = spec['mtu']
        if spec['addresses'] is not None:
            add, remove = _netlink.plan_addresses(addresses, spec['addresses'], self.params.get('unmanaged_addresses'))
            steps += _address_steps(name, add, remove)
            view['addresses'] = [str(a) for a in sorted((set(addresses) - set(remove)) | set(add),
                                                        key=_netlink._sort_key) if not _netlink._is_link_local(a)]
        if view['state'] != spec['link_state']:
            steps.append(Step('set_link', 'set %s %s' % (name, spec['link_state']), name=name, state=spec['link_state']))
            view['state'] = spec['link_state']
        return before, view, steps

    def _plan_interface(self, ifname, links, host_addresses, local_routes):
        """(before, after, steps) of the container's interface; (None, None, []) when it is missing."""
        link = links.get(ifname)
        if link is None:
            if self.params.get('when_missing') == 'skip' or self.params.get('state') == 'absent':
                return None, None, []
            raise ValueError('interface %s does not exist (the container must be running, its host side '
                             'appears when it starts); when_missing=skip ignores this' % ifname)
        addresses = self.nl.addresses(link['index'])
        routes = self.nl.routes(link['index'])
        before = _netlink.link_view(link, addresses, routes)
        view = dict(before)
        steps = []
        absent = self.params.get('state') == 'absent'
        releasing = self.params.get('bridge_state') == 'absent'
        # Releasing a port changes nothing else about it unless asked (a down port stays down).
        link_state = self.params.get('link_state') or (None if releasing else 'up')
        if absent:
            for network in sorted(set(local_routes or []) & set(routes), key=_netlink._sort_key):
                steps.append(Step('del_route', 'remove route %s via %s' % (network, ifname), name=ifname, network=network))
            steps += _address_steps(ifname, [], sorted(set(host_addresses or []) & set(addresses), key=_netlink._sort_key))
            view['routes'] = [str(r) for r in sorted(set(routes) - set(local_routes or []), key=_netlink._sort_key)]
            view['addresses'] = [str(a) for a in sorted(set(addresses) - set(host_addresses or []), key=_netlink._sort_key)
                                 if not _netlink._is_link_local(a)]
            return before, view, steps
        bridge = self.params.get('bridge')
        if bridge and self.params.get('bridge_state') == 'absent':
            # Release only a port of this bridge: another bridge's port is not ours to touch.
            if link.get('master') == bridge:
                steps.append(Step('set_link', 'release %s from %s' % (ifname, bridge), name=ifname, master=0))
                view['master'] = ''
        elif bridge:
            bridge_link = links.get(bridge)
            planned = any(s['name'] == bridge and s['state'] == 'present' for s in self._bridge_specs())
            if bridge_link is None and not planned:
                raise ValueError('bridge: %s does not exist (list it in bridges to create it)' % bridge)
            if link.get('kind') == 'bridge':
                # The kernel refuses it (ELOOP) only after the steps before it ran.
                raise ValueError('bridge: %s is itself a bridge, and the kernel makes no bridge a port of another '
                                 'bridge (%s)' % (ifname, bridge))
            if link.get('master') != bridge:
                steps.append(Step('set_master', 'enslave %s to %s' % (ifname, bridge), name=ifname, bridge=bridge))
                view['master'] = bridge
        if link_state == 'up' and not link['up']:
            steps.append(Step('set_link', 'set %s up' % ifname, name=ifname, state='up'))
            view['state'] = 'up'
        if host_addresses is not None:
            add, remove = _netlink.plan_addresses(addresses, host_addresses, self.params.get('unmanaged_addresses'))
            steps += _address_steps(ifname, add, remove)
            view['addresses'] = [str(a) for a in sorted((set(addresses) - set(remove)) | set(add), key=_netlink._sort_key)
                                 if not _netlink._is_link_local(a)]
        if local_routes is not None and link_state != 'down':
            missing = [r for r in local_routes if r not in routes]
            for network in missing:
                steps.append(Step('add_route', 'add route %s via %s' % (network, ifname), name=ifname, network=network))
            view['routes'] = [str(r) for r in sorted(set(routes) | set(missing), key=_netlink._sort_key)]
        if link_state == 'down' and link['up']:
            steps.append(Step('set_link', 'set %s down' % ifname, name=ifname, state='down'))
            view['state'] = 'down'
        return before, view, steps


def _addressing_ip(text):
    return str(ipaddress.ip_interface(text).ip)


def _address_steps(name, add, remove):
    """Remove, then add: the addresses of link NAME."""
    return ([Step('del_address', 'remove %s from %s' % (a, name), name=name, address=a) for a in remove]
            + [Step('add_address', 'add %s to %s' % (a, name), name=name, address=a) for a in add])


class _LinkOperations(object):
    """What a network step can do, on links found by name when the step runs (a bridge made
    earlier in the same run has no index at planning time)."""

    def __init__(self, nl):
        self.nl = nl

    def _current(self, name):
        link = self.nl.link(name)
        if link is None:
            raise _netlink.NetlinkError('%s disappeared while it was being configured' % name)
        return link

    def create_bridge(self, name):
        self.nl.create_bridge(name)

    def delete_link(self, name):
        self.nl.delete_link(self._current(name))

    def set_link(self, name, **changes):
        self.nl.set_link(self._current(name), **changes)

    def set_master(self, name, bridge):
        master = self.nl.link(bridge)
        if master is None:
            raise _netlink.NetlinkError('bridge %s does not exist' % bridge)
        self.nl.set_link(self._current(name), master=master['index'])

    def add_address(self, name, address):
        self.nl.add_address(self._current(name), address)

    def del_address(self, name, address):
        self.nl.del_address(self._current(name), address)

    def add_route(self, name, network):
        self.nl.add_route(self._current(name), network)

    def del_route(self, name, network):
        self.nl.del_route(self._current(name), network)
