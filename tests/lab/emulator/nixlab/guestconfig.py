"""What the stand-in guest applies of its NixOS configuration at boot and at each switch, as
NixOS's stage 2 does: `networking.bridges`, `networking.interfaces.<if>.ipv4/ipv6.addresses`
and `.routes`, `networking.defaultGateway(6)` (scripted networking) and
`environment.etc.<name>.text` (the etc activation). eval-config.nix selects them; this module
turns them into the system's data files, which the guest's `lab-network` (guest/network.sh)
and `activate` (guest/activate.sh) read. Only data reaches the guest: names and addresses are
checked here, and the guest passes each as one argument to busybox `ip`."""

import ipaddress
import os
import re
import sys

# A Linux interface name: 1 to 15 bytes, no slash, colon or white space.
INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,15}$")


def _warn(text):
    sys.stderr.write("lab: %s (not applied)\n" % text)


def _interface(name):
    if isinstance(name, str) and INTERFACE_NAME.match(name):
        return name
    _warn("interface name %r" % (name,))
    return None


def _cidr(text):
    try:
        return str(ipaddress.ip_interface(text))
    except ValueError:
        _warn("address %r" % (text,))
        return None


def _gateway(kind, gateway):
    if not gateway:
        return []
    try:
        address = str(ipaddress.ip_address(gateway.get("address")))
    except ValueError:
        _warn("%s %r" % (kind, gateway.get("address")))
        return []
    interface = gateway.get("interface")
    if interface is not None and _interface(interface) is None:
        return []
    return ["%s %s %s" % (kind, address, interface or "-")]


def network_lines(network):
    """The lines of the system's `lab-network` file, in the order NixOS sets them up: the
    bridges and their ports, each interface (up, addresses, routes), the default gateways.
    Line kinds: `bridge BR`, `port BR IF`, `up IF`, `address IF CIDR`, `route IF CIDR VIA|-`,
    `gateway ADDRESS IF|-`, `gateway6 ADDRESS IF|-`."""
    network = network or {}
    lines = []
    for bridge in sorted(network.get("bridges") or {}):
        if _interface(bridge) is None:
            continue
        lines.append("bridge %s" % bridge)
        for port in network["bridges"][bridge]:
            if _interface(port) is not None:
                lines.append("port %s %s" % (bridge, port))
    interfaces = network.get("interfaces") or {}
    for name in sorted(interfaces):
        if _interface(name) is None:
            continue
        lines.append("up %s" % name)
        settings = interfaces[name]
        for cidr in filter(None, map(_cidr, settings.get("ipv4", []) + settings.get("ipv6", []))):
            lines.append("address %s %s" % (name, cidr))
        for route in settings.get("routes", []):
            target = _cidr(route.get("to"))
            via = route.get("via")
            if via is not None and _cidr(via) is None:
                continue
            if target is not None:
                lines.append("route %s %s %s" % (name, target, via or "-"))
    lines += _gateway("gateway", network.get("defaultGateway"))
    lines += _gateway("gateway6", network.get("defaultGateway6"))
    return lines


def etc_files(etc):
    """{relative path: text} of `environment.etc.<name>.text`, without names that would leave
    /etc or that the lab's own activation writes."""
    files = {}
    for name, text in sorted((etc or {}).items()):
        parts = name.strip("/").split("/")
        if not isinstance(text, str) or "\n" in name or any(p in ("", ".", "..") for p in parts):
            _warn("environment.etc.%r" % (name,))
            continue
        files["/".join(parts)] = text
    return files


def fingerprint(guest):
    """What of GUEST (eval-config.nix's result) the system is made from, as text."""
    guest = guest or {}
    lines = network_lines(guest.get("network"))
    lines += ["etc %s %r" % item for item in sorted(etc_files(guest.get("etc")).items())]
    return "\n".join(lines)


def write(tmp, guest):
    """The system's `lab-network` file, its `etc` tree and the `lab-etc` list of its names."""
    guest = guest or {}
    with open(os.path.join(tmp, "lab-network"), "w", encoding="utf-8") as handle:
        handle.write("".join("%s\n" % line for line in network_lines(guest.get("network"))))
    files = etc_files(guest.get("etc"))
    for name, text in files.items():
        path = os.path.join(tmp, "etc", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
    with open(os.path.join(tmp, "lab-etc"), "w", encoding="utf-8") as handle:
        handle.write("".join("%s\n" % name for name in sorted(files)))
