# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option catalogue: one record per container option, and everything derived from it.

This module_util is PRIVATE to the collection: it may change without notice.

A record says what an option is (type, default, choices), which module takes it, where it acts (the run,
the guest system, the conf file, the unit), its conf key, its NixOS name (``containers.<name>.X``), what
a change of it means for a running container, its JSON Schema fragment and its documentation. From the
records come the argument specs of nixos_container, nixos_containers (its elements) and
nixos_container_declarative, the fleet JSON Schema's container properties, the conf key <-> option map,
the planner's key sets, the rollout's view of the conf options and the generated doc fragment
(``plugins/doc_fragments/_container_options.py``, written by ``tools/gen-doc-fragment``). How a value is
spelled in the conf file is ``_conf``'s business; in Nix, ``_declarative``'s.

Adding an option: its record here, its encoding in ``_conf`` (or ``_declarative``), then ``tools/gen-doc-fragment``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


# Which module takes an option: nixos_container, the elements of nixos_containers'
# ``containers``, a fleet spec (the JSON Schema), nixos_container_declarative.
SINGLE, SET, FLEET, DECLARATIVE = 'single', 'set', 'fleet', 'declarative'
LIVE = (SINGLE, SET)
SPEC = (SINGLE, SET, FLEET)
EVERY = (SINGLE, SET, FLEET, DECLARATIVE)

# Where an option acts.
RUN = 'run'          # what the module does in this run (state, restart, ...)
GUEST = 'guest'      # the guest system (configuration.nix, flake, closure)
CONF = 'conf'        # the conf file NAME.conf, read by the unit when it starts (facts §2.3)
UNIT = 'unit'        # the unit container@NAME.service (boot link, drop-in)
FILE = 'file'        # the declarative module's files

# What a change of the option means for a running container (facts §1.3.2, §5.7).
RELOAD = 'reload'        # a new guest system, activated in place (update)
RESTART = 'restart'      # read when the unit starts: stop and start
RECREATE = 'recreate'    # only a new container carries it
NO_RESTART = 'none'      # written, read by nothing running (e.g. the boot link)

DEFAULT_UNIT_DIR = '/etc/systemd-mutable/system'

_STR = {'type': 'string', 'minLength': 1}
_ABS_PATH = {'type': 'string', 'pattern': '^/'}
_PORT = {'type': 'integer', 'minimum': 1, 'maximum': 65535}
_STR_LIST = {'type': 'array', 'items': _STR}
_ABS_PATH_LIST = {'type': 'array', 'items': _ABS_PATH}
_BOOL = {'type': 'boolean'}
_STATES = ('absent', 'present', 'started', 'stopped')


class Option(object):
    """One option. ``suboptions`` are Options too (modes and the rest ignored there)."""

    def __init__(self, name, type='str', doc=(), modes=SPEC, applies=RUN, elements=None, default=None,
                 choices=None, required=False, suboptions=(), conf_key=None, conf_change=None, nix=None,
                 change=None, schema=None, network=False, guest_source=False, doc_declarative=None, nspawn_flags=(),
                 nspawn_mount=None):
        self.name = name
        self.type = type
        self.doc = list(doc)
        self.modes = modes
        self.applies = applies
        self.elements = elements
        self.default = default
        self.choices = choices
        self.required = required
        self.suboptions = list(suboptions)
        self.conf_key = conf_key
        # The systemd-nspawn flags in EXTRA_NSPAWN_FLAGS that the option writes (by prefix).
        self.nspawn_flags = nspawn_flags
        # For mount flags: their spec is 'source' (SOURCE[:MOUNT_POINT]) or 'mount' (MOUNT_POINT[:OPTIONS]).
        self.nspawn_mount = nspawn_mount
        self.nix = nix
        self.change = change
        # What a change of the conf KEY means, when it differs from the option's (see system_path).
        self.conf_change = conf_change or change
        self.schema = schema
        self.network = network              # only meaningful with a private network
        self.guest_source = guest_source    # one of the mutually exclusive guest sources
        self.doc_declarative = list(doc_declarative) if doc_declarative else None

    def spec(self):
        """The AnsibleModule argument spec entry."""
        entry = dict(type=self.type, required=True) if self.required else dict(type=self.type)
        for key in ('elements', 'default', 'choices'):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        if self.suboptions:
            entry['options'] = dict((o.name, o.spec()) for o in self.suboptions)
        return entry


def _sub(name, type, doc, **kwargs):
    return Option(name, type, [doc], **kwargs)


def _objects(required, **properties):
    """The JSON Schema of a list of dicts (a list option of sub-options)."""
    return {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': [required],
                                       'properties': properties}}


_VETH_FIELDS = ('name', 'host_bridge', 'host_address', 'host_address6', 'local_address', 'local_address6')


OPTIONS = (
    Option('name', required=True, modes=EVERY, schema={'type': 'string'}, doc=[
        'Name of the container.',
        "Letters, digits and C(-) only, at most 11 characters: the host side of the container's network is the "
        "interface C(ve-NAME), which must fit the kernel's 15-byte interface names. C(_) is refused because "
        'systemd-machined and declarative NixOS containers refuse it.',
    ], doc_declarative=[
        'Name of the container, the attribute under C(containers) and the file name C(NAME.nix).',
        'Letters, digits and C(-) only; C(_) is refused, as NixOS refuses it. V(default) is taken by the imports file.',
        'Length as NixOS checks it: at most 11 characters only with O(private_network) on a host whose kernel '
        'version (C(uname -r)) compares at or below 5.8; on newer kernels up to 64 characters, because '
        'systemd-nspawn shortens a long host-side C(ve-NAME) and keeps the full name as an interface altname. '
        'M(nixfleet.containers.nixos_container) keeps the CLI\'s 11 characters.',
    ]),
    Option('state', default='started', choices=list(_STATES), schema={'enum': list(_STATES)}, doc=[
        'V(started) the container exists and runs.',
        'V(present) the container exists; whether it runs is left as it is (a new container is not started).',
        'V(stopped) the container exists and does not run.',
        'V(absent) the container is stopped and destroyed (conf, root directory, profile and GC roots).',
    ]),
    Option('state', default='present', choices=['absent', 'present'], modes=(DECLARATIVE,), applies=FILE, doc=[
        'V(present) the file exists with this definition and is imported.',
        'V(absent) the file and its import are removed. After the next C(nixos-rebuild switch) NixOS stops the '
        'container but keeps its root directory C(/var/lib/nixos-containers/NAME).',
        'Files of this directory the module did not write (their first line says so) are never changed or '
        'removed; the module fails rather than overwrite one.',
    ]),
    Option('directory', 'path', default='/etc/nixos/containers', modes=(DECLARATIVE,), applies=FILE, doc=[
        'The directory of the container files and of the imports file C(default.nix). Created when missing.',
    ]),
    Option('restart', 'bool', default=False, modes=LIVE, doc=[
        'Stop and start the container even when nothing changed. Only with O(state=started).',
    ]),
    Option('recreate', 'bool', default=False, modes=LIVE, doc=[
        'Destroy and create the container again, even when nothing changed. Its root directory is lost.',
        'Its addresses are kept, because the module passes them explicitly.',
        'Without O(config), O(settings), O(config_file), O(flake) or O(system_path) the guest is rebuilt from the '
        'configuration it has now (its C(configuration.nix), its flake, or else its current system).',
        'Mutually exclusive with O(rollback) (a recreated container has a new profile).',
    ]),
    Option('rollback', 'bool', default=False, modes=LIVE, doc=[
        "Switch the container's profile to the previous generation and activate it (reload when running, or "
        'stop and start when the conf file changes too).',
        'The next run without O(rollback) applies the declared configuration again.',
        'With O(config) or O(settings) (the configuration of the generation rolled back to), its '
        'C(configuration.nix) is written too, without a build.',
        'Refused when there is no earlier generation, and together with O(recreate).',
    ]),
    Option('rebuild', 'bool', default=False, schema=_BOOL, doc=[
        "Rebuild the guest system even when the configuration text did not change (for example when a flake's "
        'inputs or an imported file changed). The result reports C(changed) only when the build gave a '
        'different system.',
    ]),
    # the guest system
    Option('config', modes=EVERY, applies=GUEST, change=RELOAD, guest_source=True, schema={'type': 'string'}, doc=[
        "The body of the guest's NixOS module, as C(nixos-container --config) takes it, for example "
        'C(services.nginx.enable = true;).',
        'Mutually exclusive with O(config_file) and O(flake); with O(system_path), the configuration it was built from.',
    ], doc_declarative=[
        "The body of the guest's NixOS module (C(containers.NAME.config)), as for "
        'M(nixfleet.containers.nixos_container), for example C(services.nginx.enable = true;). It is spliced '
        'verbatim into C({ config, lib, pkgs, ... }: { ... }).',
        'Text that does not parse, or that closes those braces, is refused (when C(nix-instantiate) is on the host).',
        'Mutually exclusive with O(config_file).',
    ]),
    Option('config_file', 'path', modes=EVERY, applies=GUEST, change=RELOAD, guest_source=True, schema=_ABS_PATH,
           doc=[
               'Absolute path of a NixOS module on the host, imported by the guest configuration (C(--config-file)).',
               "The file's content is fingerprinted, so a changed file rebuilds the guest.",
           ], doc_declarative=[
               'Absolute path of a NixOS module on the host, imported by the guest configuration.',
               'NixOS reads it at each rebuild, so a change of its content is picked up by the next '
               'C(nixos-rebuild switch) without this module reporting a change.',
           ]),
    Option('flake', applies=GUEST, change=RELOAD, guest_source=True, conf_key='FLAKE', schema=_STR, doc=[
        'A flake reference with an optional attribute, C(REF#ATTR); the system is '
        'C(REF#nixosConfigurations.ATTR) (ATTR defaults to C(container)).',
        'Unlike C(nixos-container update), which forgets the attribute, the module remembers it in the conf file.',
    ]),
    # Not an option of any module: the attribute of O(flake), kept in the conf (facts P-11).
    Option('flake_attr', modes=(), applies=GUEST, change=RELOAD, conf_key='NIXFLEET_FLAKE_ATTR'),
    # nixos_container sets a closure in the profile; the SYSTEM_PATH key (declarative) is read at start.
    Option('system_path', 'path', applies=GUEST, change=RELOAD, guest_source=True, conf_key='SYSTEM_PATH',
           conf_change=RESTART, schema=_ABS_PATH, doc=[
               "A prebuilt system closure in the Nix store (C(--system-path)), set in the container's profile with "
               'C(nix-env --set) and activated. O(config) beside it is what it was built from (written, not built).',
           ]),
    Option('settings', 'dict', modes=EVERY, applies=GUEST, change=RELOAD, schema={'type': 'object'}, doc=[
        'Guest NixOS options as data, rendered to Nix by the collection with correct escaping and appended to '
        'O(config). For example C({services: {nginx: {enable: true}}}).',
        "Settings are written as dotted attribute paths next to the template's own C(networking.hostName) and "
        'C(networking.useDHCP); setting those two again is a Nix error.',
        'A path is written as a one-key dict C({_nix_path: /abs/path}), a package as C({_nix_package: hello}) '
        '(C(pkgs.hello)). Strings are always Nix strings: a string can never inject Nix code.',
    ], doc_declarative=[
        'Guest NixOS options as data, rendered to Nix with correct escaping and appended to O(config), as for '
        'M(nixfleet.containers.nixos_container). For example C({services: {nginx: {enable: true}}}).',
        'A path is written as C({_nix_path: /abs/path}), a package as C({_nix_package: hello}).',
    ]),
    Option('nixos_path', 'path', applies=GUEST, change=RELOAD, schema=_ABS_PATH, doc=[
        'The file C(nix-env -f) evaluates the configuration with (C(--nixos-path)); default C(<nixpkgs/nixos>).',
    ]),
    # the host side and the network (the conf file)
    Option('auto_start', 'bool', modes=EVERY, applies=CONF, conf_key='AUTO_START', nix='autoStart', change=NO_RESTART,
           schema=_BOOL, doc=[
               'Start the container at boot, as a declarative container with C(autoStart = true) is.',
               'V(true) links C(machines.target.wants/container@NAME.service) in O(systemd_unit_dir) (as '
               'C(systemctl enable) and extra-container do) and records C(AUTO_START=1); V(false) removes the link '
               'and records C(AUTO_START=0). C(AUTO_START) alone is read by nothing on a current host.',
               'The link is read at boot; changing it never restarts the container.',
               "Omitted, an existing container's link is left as it is.",
           ], doc_declarative=[
               'C(autoStart). V(true) starts the container at boot and at the C(nixos-rebuild switch) that defines '
               'it, and restarts it when its definition changes (unless O(restart_if_changed=false)).',
               "Not given, the option is not written (NixOS's default, V(false)).",
           ]),
    Option('restart_if_changed', 'bool', modes=(DECLARATIVE,), applies=UNIT, nix='restartIfChanged', doc=[
        'C(restartIfChanged). V(false) keeps an O(auto_start) container running through a C(nixos-rebuild switch) '
        'that changed it; it runs the new system from its next start.',
        "Not given, the option is not written (NixOS's default, V(true)). Without O(auto_start) a switch never "
        'restarts the container.',
    ]),
    Option('private_network', 'bool', modes=EVERY, applies=CONF, conf_key='PRIVATE_NETWORK',
           nix='privateNetwork', change=RESTART, schema=_BOOL, doc=[
               'Give the container its own network namespace with a veth pair (C(PRIVATE_NETWORK=1)). Unset: V(true) '
               'for a new container (as C(nixos-container create)); an existing one keeps its own.',
               "V(false) shares the host's network; the address, bridge, port and MAC options are then ignored.",
           ], doc_declarative=[
               'C(privateNetwork). Always written, defaulting to V(true) as M(nixfleet.containers.nixos_container) '
               "does (NixOS's own default is V(false)).",
               "V(false) shares the host's network; the address, bridge, port and MAC options are then refused.",
           ]),
    # hostBridge is written before the addresses (the declarative renderer's order).
    Option('host_bridge', modes=EVERY, applies=CONF, conf_key='HOST_BRIDGE', nix='hostBridge', change=RESTART,
           network=True, schema=_STR, doc=[
               'Put the host side on this bridge (it becomes C(vb-NAME)); the host then configures no address.',
               'A bridged container needs no address option: O(local_address) and O(local_address6) alone, or none '
               '(the guest configures its C(eth0) itself), as NixOS allows. No address pair is allocated for it.',
               'A run that would start the container refuses a bridge the host does not have (before any change); '
               'so do O(macvlans) and O(interfaces) for their host interfaces.',
           ], doc_declarative=[
               'C(hostBridge). Put the host side on this bridge (it becomes C(vb-NAME)).',
               'O(local_address) and O(local_address6) alone, or no address at all, are accepted, as NixOS accepts them.',
           ]),
    Option('host_address', modes=EVERY, applies=CONF, conf_key='HOST_ADDRESS', nix='hostAddress', change=RESTART,
           network=True, schema=_STR, doc=[
               'Address (optionally with C(/prefix)) of the host side C(ve-NAME): IPv4, or IPv6 as NixOS accepts it '
               '(the unit passes it to C(ip), which infers the family). Written verbatim to C(HOST_ADDRESS), not '
               'moved to O(host_address6); with IPv6 here O(local_address) must be IPv6 too, and '
               'C(nixos-container show-ip) cannot show such a container.',
               'Required with O(local_address) unless O(host_bridge) is set.',
               'With none of O(host_address), O(local_address), O(host_address6) given and no O(host_bridge), a '
               'free pair C(10.233.N.1)/C(10.233.N.2) is chosen (avoiding every address in any conf file or on a live '
               "interface, and the subnets of prefixed addresses and of the host's on-link routes) and written "
               'explicitly, so the container keeps it across O(recreate).',
           ], doc_declarative=[
               'C(hostAddress), the address (optionally with C(/prefix)) of the host side C(ve-NAME): IPv4, or IPv6 '
               'as NixOS accepts it (written verbatim).',
               'Unlike M(nixfleet.containers.nixos_container), no free pair is chosen for you: a definition in the '
               'host configuration must name its addresses. Without any address or bridge, the container has only '
               'loopback.',
           ]),
    Option('local_address', modes=EVERY, applies=CONF, conf_key='LOCAL_ADDRESS', nix='localAddress', change=RESTART,
           network=True, schema=_STR, doc=[
               "Address (optionally with C(/prefix)) of the container's C(eth0), IPv4 or IPv6 (of the family of "
               'O(host_address)). Given together with O(host_address), or alone with O(host_bridge) (then with the '
               "bridge's prefix, like C(10.0.0.5/24)).",
           ], doc_declarative=[
               "C(localAddress), the address (optionally with C(/prefix)) of the container's C(eth0), IPv4 or IPv6. "
               'Given together with O(host_address), or alone with O(host_bridge).',
           ]),
    Option('host_address6', modes=EVERY, applies=CONF, conf_key='HOST_ADDRESS6', nix='hostAddress6', change=RESTART,
           network=True, schema=_STR, doc=[
               'IPv6 address (optionally with C(/prefix)) of the host side.',
           ], doc_declarative=[
               'C(hostAddress6), the IPv6 address (optionally with C(/prefix)) of the host side.',
           ]),
    Option('local_address6', modes=EVERY, applies=CONF, conf_key='LOCAL_ADDRESS6', nix='localAddress6',
           change=RESTART, network=True, schema=_STR, doc=[
               "IPv6 address (optionally with C(/prefix)) of the container's C(eth0).",
           ], doc_declarative=[
               "C(localAddress6), the IPv6 address (optionally with C(/prefix)) of the container's C(eth0).",
           ]),
    Option('local_mac_address', modes=EVERY, applies=CONF, conf_key='LOCAL_MAC_ADDRESS', nix='localMacAddress',
           change=RESTART, network=True, schema=_STR, doc=[
               "MAC address of the container's C(eth0) (NixOS 26.05 and newer read it).",
           ], doc_declarative=[
               "C(localMacAddress), the MAC address of the container's C(eth0) (NixOS 26.05 and newer have the option).",
           ]),
    Option('forward_ports', 'list', elements='dict', modes=EVERY, applies=CONF, conf_key='HOST_PORT',
           nix='forwardPorts', change=RESTART, network=True, suboptions=[
               _sub('protocol', 'str', 'Protocol.', choices=['tcp', 'udp'], default='tcp'),
               _sub('host_port', 'int', 'Port on the host.', required=True),
               _sub('container_port', 'int', 'Port in the container; defaults to O(forward_ports[].host_port).'),
           ], schema=_objects('host_port', protocol={'enum': ['tcp', 'udp']}, host_port=_PORT, container_port=_PORT),
           doc=[
               'Ports forwarded from the host to the container by systemd-nspawn (C(HOST_PORT)).',
               'Reaching such a port from another machine needs IP forwarding on the host (C(net.ipv4.ip_forward), '
               'for example M(nixfleet.containers.nixos_container_nat) with its default C(ip_forward=true)); from '
               'the host itself it works without, through one of the host\'s own addresses: nspawn forwards no '
               'C(127.0.0.0/8) destination, so C(localhost:PORT) is refused (use a host address, or the container\'s).',
               'A host port belongs to one container of the host; a port of another container (also one declared in '
               'the same run) is refused before any change.',
           ], doc_declarative=[
               'C(forwardPorts), ports forwarded from the host to the container by systemd-nspawn.',
           ]),
    # The options below up to extra_flags are nspawn flags in EXTRA_NSPAWN_FLAGS (see _conf).
    Option('bind_mounts', 'list', elements='dict', modes=EVERY, applies=CONF, nix='bindMounts', change=RESTART,
           nspawn_flags=('--bind-ro=', '--bind='), nspawn_mount='source', suboptions=[
               _sub('mount_point', 'str', 'Path in the container.', required=True),
               _sub('host_path', 'str', 'Path on the host; defaults to O(bind_mounts[].mount_point).'),
               _sub('read_only', 'bool', 'Mount read-only.', default=True),
           ], schema=_objects('mount_point', mount_point=_ABS_PATH, host_path=_ABS_PATH, read_only=_BOOL), doc=[
               'Host paths mounted into the container (C(--bind)/C(--bind-ro) in C(EXTRA_NSPAWN_FLAGS)).',
               'Paths cannot contain white space (the unit splits the flags on it).',
           ], doc_declarative=[
               'C(bindMounts), host paths mounted into the container, keyed by mount point (NixOS passes them to '
               'systemd-nspawn sorted by mount point).',
               'Paths cannot contain white space (the unit splits the flags on it).',
               'O(bind_mounts[].read_only) is C(isReadOnly).',
           ]),
    Option('ephemeral', 'bool', modes=EVERY, applies=CONF, nix='ephemeral', change=RESTART, schema=_BOOL,
           nspawn_flags=('--ephemeral',),
           doc=[
               'Run the container on a throw-away copy of its root (C(--ephemeral)), from a root under '
               'C(/run/nixos-containers/NAME) as NixOS runs an ephemeral container: the unit drop-in '
               '(C(container@NAME.service.d/50-nixfleet.conf) in O(systemd_unit_dir)) sets the unit\'s C(root) and '
               'C(RuntimeDirectory=nixos-containers/NAME), which systemd removes at stop, so nothing the guest '
               'writes survives a stop. C(/var/lib/nixos-containers/NAME) stays (the CLI keeps the guest\'s '
               'C(configuration.nix) there); a declarative ephemeral container has none.',
           ], doc_declarative=[
               'C(ephemeral). Run the container on a throw-away root under C(/run/nixos-containers).',
               "NixOS puts it on the container's own unit, not in the conf.",
           ]),
    Option('tmpfs', 'list', elements='str', modes=EVERY, applies=CONF, nix='tmpfs', change=RESTART,
           nspawn_flags=('--tmpfs=',), nspawn_mount='mount', schema=_ABS_PATH_LIST,
           doc=[
               'Paths in the container mounted as tmpfs (C(--tmpfs=)).',
           ], doc_declarative=[
               'C(tmpfs), paths in the container mounted as tmpfs.',
               "NixOS puts it on the container's own unit, not in the conf.",
           ]),
    Option('enable_tun', 'bool', modes=EVERY, applies=CONF, nix='enableTun', change=RESTART, schema=_BOOL, doc=[
        "Give the container C(CAP_NET_ADMIN) for TUN devices. The unit's C(DeviceAllow) for C(/dev/net/tun) "
        'cannot be set from a conf file.',
    ], doc_declarative=[
        'C(enableTun). Give the container C(CAP_NET_ADMIN) and access to C(/dev/net/tun).',
        "NixOS puts it on the container's own unit, not in the conf; there it also allows C(/dev/net/tun).",
    ]),
    Option('additional_capabilities', 'list', elements='str', modes=EVERY, applies=CONF, nix='additionalCapabilities',
           change=RESTART, nspawn_flags=('--capability=',), schema=_STR_LIST, doc=[
               'Extra capabilities (C(--capability=)), for example C(CAP_SYS_ADMIN).',
           ], doc_declarative=[
               'C(additionalCapabilities), for example C(CAP_SYS_ADMIN).',
               "NixOS puts it on the container's own unit, not in the conf.",
           ]),
    Option('extra_flags', 'list', elements='str', modes=EVERY, applies=CONF, conf_key='EXTRA_NSPAWN_FLAGS',
           nix='extraFlags', change=RESTART, schema=_STR_LIST, doc=[
               'Extra systemd-nspawn flags, appended last to C(EXTRA_NSPAWN_FLAGS).',
           ], doc_declarative=[
               'C(extraFlags), extra systemd-nspawn flags.',
           ]),
    Option('private_users', modes=EVERY, applies=CONF, conf_key='PRIVATE_USERS', nix='privateUsers', change=RESTART,
           schema=_STR, doc=[
               'User namespacing (C(PRIVATE_USERS)) - C(no), C(identity), C(pick) or a UID base.',
           ], doc_declarative=[
               'C(privateUsers) - C(no), C(identity), C(pick) or a UID base.',
           ]),
    # Conf keys the declarative module writes that no module option sets yet (facts P-13), then the host
    # interfaces given to the container (read by every container's unit).
    Option('copy_resolv_conf', 'bool', modes=(), applies=CONF, conf_key='COPY_RESOLV_CONF', change=RESTART),
    Option('network_namespace_path', 'path', modes=(), applies=CONF, conf_key='NETWORK_NAMESPACE_PATH',
           change=RESTART),
    Option('interfaces', 'list', elements='str', modes=EVERY, applies=CONF, conf_key='INTERFACES', nix='interfaces',
           change=RESTART, schema=_STR_LIST, doc=[
               'Host interfaces moved into the container while it runs (C(INTERFACES), one '
               'C(--network-interface=) each; systemd-nspawn then gives the container its own network namespace '
               'even without O(private_network)). The interface leaves the host at start and comes back at stop.',
               'The conf key is read by the unit of every container, so imperative containers get it as declarative '
               'ones do. V([]) removes them. A change is a restart.',
               'An interface cannot be listed twice, nor also in O(macvlans); nor can another container of the host move '
               'it in too, or have a macvlan on it (it is gone from the host while this one runs).',
           ], doc_declarative=[
               'C(interfaces), host interfaces moved into the container while it runs.',
               'An interface cannot be listed twice, nor also in O(macvlans).',
           ]),
    Option('macvlans', 'list', elements='str', modes=EVERY, applies=CONF, conf_key='MACVLANS', nix='macvlans',
           change=RESTART, schema=_STR_LIST, doc=[
               'Host interfaces that each get a macvlan in the container (C(MACVLANS), one C(--network-macvlan=) '
               'each), named C(mv-IF) inside and created in bridge mode, so containers on the same interface reach '
               'each other. The guest configures its addresses. Reaching them from the host needs a macvlan of the '
               'host on the same interface.',
               'Read by the unit of every container, as O(interfaces). V([]) removes them. A change is a restart.',
           ], doc_declarative=[
               'C(macvlans), host interfaces that each get a macvlan C(mv-IF) in the container (bridge mode).',
           ]),
    Option('extra_veths', 'list', elements='dict', modes=EVERY, applies=CONF, conf_key='NIXFLEET_EXTRA_VETHS',
           nix='extraVeths', change=RESTART, network=True, nspawn_flags=('--network-veth-extra=',), suboptions=[
               _sub('name', 'str', 'Name of the pair, the same on the host and in the container (at most 15 bytes; '
                    'not C(ve-), C(vb-) or C(mv-), the prefixes of nspawn\'s own interfaces).', required=True),
               _sub('host_bridge', 'str', 'Put the host side on this bridge (then no host address).'),
               _sub('host_address', 'str', 'Address (optionally with C(/prefix)) of the host side; the container gets '
                    'a route to it.'),
               _sub('host_address6', 'str', 'IPv6 address of the host side.'),
               _sub('local_address', 'str', 'Address (optionally with C(/prefix)) of the container side; the host '
                    'gets a route to it unless bridged.'),
               _sub('local_address6', 'str', 'IPv6 address of the container side.'),
           ], schema=_objects('name', **dict.fromkeys(_VETH_FIELDS, _STR)), doc=[
               'Further veth pairs (C(containers.NAME.extraVeths)), each named O(extra_veths[].name) on both sides '
               '(C(--network-veth-extra=) in C(EXTRA_NSPAWN_FLAGS)); they imply a private network.',
               "The template unit of imperative containers cannot set them up, so the collection does what a declarative container's unit does, "
               "from the container's unit drop-in (C(container@NAME.service.d/50-nixfleet.conf) in O(systemd_unit_dir)) at every start: a stale "
               'host interface of that name is deleted first; after the container is ready, inside it the interface is set up with its local '
               'addresses and a route to its host addresses (C(nixos-container run NAME -- ip ...)), and on the host it is enslaved to '
               'O(extra_veths[].host_bridge), or set up with its host addresses and a route to its local addresses. The kernel removes the pair '
               'when the container stops.',
               'The definition is kept in the conf (C(NIXFLEET_EXTRA_VETHS)). V([]) removes them. A change is a restart.',
           ], doc_declarative=[
               'C(extraVeths), further veth pairs named O(extra_veths[].name) on both sides, set up by the '
               "container's own unit (host side: bridge, or host addresses and routes; container side: local "
               'addresses and a route to the host addresses).',
           ]),
    Option('start_timeout', 'int', default=120, schema={'type': 'integer', 'minimum': 1}, doc=[
        'Seconds to wait for C(nixos-container start) (the guest reaching its default target) before failing.',
    ]),
    # boot wiring and unit properties (resource limits)
    Option('systemd_unit_dir', 'path', default=DEFAULT_UNIT_DIR, applies=UNIT, schema=_ABS_PATH, doc=[
        'The mutable systemd unit directory that gets the boot wants-link (O(auto_start)) and the drop-in for the '
        'unit properties (C(container@NAME.service.d/50-nixfleet.conf)).',
        'On NixOS C(/etc/systemd/system) is a read-only link into the store, so the default is '
        'C(/etc/systemd-mutable/system), the directory extra-container uses. systemd reads it only when the host '
        'configuration sets C(boot.extraSystemdUnitPaths = [ "/etc/systemd-mutable/system" ]).',
    ]),
    Option('cpu_quota', applies=UNIT, change=RESTART, schema=_STR, doc=[
        'C(CPUQuota=) of C(container@NAME.service), for example V(50%) (half of one CPU).',
        'The imperative containers share the template unit and their conf cannot carry unit properties; '
        'C(systemd-nspawn --property=) is ignored with C(--keep-unit), which the unit uses. So the limits go into '
        "a drop-in for C(container@NAME.service) in O(systemd_unit_dir), and systemd applies them to the unit's "
        'cgroup, where the container runs.',
        'A change is a planned restart of a running container (the plan names it).',
        'Giving any of O(cpu_quota), O(memory_max), O(tasks_max), O(unit_properties) makes the drop-in hold '
        'exactly those; omitting all four leaves the drop-in as it is; O(unit_properties={}) alone removes it.',
    ]),
    Option('memory_max', applies=UNIT, change=RESTART, schema={'type': ['string', 'integer']}, doc=[
        'C(MemoryMax=) of C(container@NAME.service), for example V(1G), a percentage or V(infinity).',
        'Written and applied as O(cpu_quota) is.',
    ]),
    Option('tasks_max', applies=UNIT, change=RESTART, schema={'type': ['string', 'integer']}, doc=[
        'C(TasksMax=) of C(container@NAME.service) (a number, a percentage or V(infinity)).',
        'Written and applied as O(cpu_quota) is.',
    ]),
    Option('unit_properties', 'dict', applies=UNIT, change=RESTART, schema={'type': 'object'}, doc=[
        'Further C([Service]) properties of C(container@NAME.service), for example C(MemoryHigh) or C(CPUWeight), '
        'written to the same drop-in as O(cpu_quota) (a name may not repeat one set by its own option).',
    ]),
)


def options_of(mode):
    """The records MODE takes, in catalogue order."""
    return [o for o in OPTIONS if mode in o.modes]


def argument_spec(mode):
    """The AnsibleModule argument spec of MODE's container options."""
    return dict((o.name, o.spec()) for o in options_of(mode))


def fleet_properties():
    """The JSON Schema properties of a fleet spec's container (before the rollout fields)."""
    return dict((o.name, o.schema) for o in options_of(FLEET))


def _names(options):
    return tuple(o.name for o in options)


# The guest sources (which of them may go together: _conf_options.GUEST_SOURCE_CONFLICTS).
GUEST_OPTIONS = _names(o for o in options_of(SINGLE) if o.guest_source)
# The options nixos_container writes into the conf file; those only a private network has.
CONF_OPTION_NAMES = _names(o for o in options_of(SINGLE) if o.applies == CONF)
NETWORK_OPTION_NAMES = _names(o for o in options_of(SINGLE) if o.network)
# The option each conf key comes from, so messages name what the user wrote.
OPTION_FOR_KEY = dict((o.conf_key, o.name) for o in OPTIONS if o.conf_key)
# The option that wrote a flag of EXTRA_NSPAWN_FLAGS, by the flag's prefix (enable_tun adds a capability).
OPTION_FOR_FLAG = tuple((flag, o.name) for o in OPTIONS for flag in o.nspawn_flags)
# The mount flags, and how their spec reads (see Option.nspawn_mount).
MOUNT_FLAGS = tuple((flag, o.nspawn_mount) for o in OPTIONS if o.nspawn_mount for flag in o.nspawn_flags)
# Conf keys whose change is a new guest system (update, not restart), and those no start reads.
GUEST_KEYS = tuple(o.conf_key for o in OPTIONS if o.conf_key and o.conf_change == RELOAD)
# Our NIXFLEET_ conf keys whose change is a restart (the unit drop-in derived from them is read at start).
RESTART_BOOKKEEPING_KEYS = frozenset(k for k, c in ((o.conf_key or '', o.conf_change) for o in OPTIONS) if k.startswith('NIXFLEET_') and c == RESTART)
NOT_READ_AT_START = frozenset(o.conf_key for o in OPTIONS if o.conf_key and o.conf_change in (RELOAD, NO_RESTART))
# containers.<name>.X of the declarative options, in the order they are written.
NIX_NAMES = tuple((o.name, o.nix) for o in options_of(DECLARATIVE) if o.nix)
