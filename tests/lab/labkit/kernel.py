"""Kernel objects the lab makes and finds again: processes, network namespaces, links,
cgroups and mounts; and their removal (labctl down checks that none is left)."""

import contextlib
import fcntl
import json
import os
import signal
import shutil
import sys
import time

from labkit.common import IP, run

FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
FS_IMMUTABLE_FL, FS_APPEND_FL = 0x10, 0x20


def process_stat(pid):
    """(state letter, start time) of PID, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[19])


def process_record(pid):
    stat = process_stat(pid)
    return {"pid": pid, "start": stat[1] if stat else None}


def is_alive(record):
    """The recorded process still runs (same start time, so not a recycled PID; not a zombie)."""
    if not record or not record.get("pid"):
        return False
    stat = process_stat(record["pid"])
    return stat is not None and stat[0] != "Z" and stat[1] == record["start"]


def send_signal(record, signum):
    if is_alive(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record["pid"], signum)


def wait_for_exit(records, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(is_alive(record) for record in records):
            return []
        time.sleep(0.05)
    return [record for record in records if is_alive(record)]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as listing:
            return [int(child) for child in listing.read().split()]
    except OSError:
        return []


def namespace_inode(pid, kind):
    try:
        link = os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
    return int(link.split("[", 1)[1].rstrip("]"))


def process_cgroup(pid):
    """The process's cgroup2 path as labctl sees it (e.g. "/nfl0-host1/..."), or None."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as cgroups:
            for line in cgroups:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


def lab_processes(lab):
    """PIDs of this lab's processes: inside one of its cgroups, or inside one of its network
    namespaces that are still mounted. Only live namespaces count: the kernel reuses the inode
    numbers of freed ones (another lab's new namespace may get them), so a stopped host's PID
    namespace inode identifies nothing."""
    own = "/" + lab.prefix
    net_inodes = {netns_inode(name) for name in lab_netns_names(lab)} - {None}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = process_stat(pid)
        if stat is None or stat[0] in "ZX":
            continue    # zombies hold nothing but their PID; their parent reaps them
        cgroup = process_cgroup(pid)
        if (cgroup is not None and cgroup.startswith(own)) or namespace_inode(pid, "net") in net_inodes:
            found.append(pid)
    return found


def lab_netns_names(lab):
    with contextlib.suppress(FileNotFoundError):
        return sorted(name for name in os.listdir("/run/netns") if name.startswith(lab.prefix))
    return []


def netns_inode(name):
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def lab_links(lab):
    links = json.loads(run([IP, "-j", "link", "show"]).stdout or "[]")
    return sorted(link["ifname"] for link in links if link["ifname"].startswith(lab.prefix))


def cgroup_root():
    """Where per-host cgroups go: the cgroup2 hierarchy (hybrid: .../unified), or None."""
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype == "cgroup2" and fields[4] in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
                return fields[4]
    return None


def lab_cgroups(lab):
    root = cgroup_root()
    if root is None:
        return []
    return sorted(os.path.join(root, name) for name in os.listdir(root)
                  if name.startswith(lab.prefix) and os.path.isdir(os.path.join(root, name)))


def remove_cgroup(path):
    for directory, _subdirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(directory)


def mounts_under(path):
    prefix = path.rstrip("/") + "/"
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == path or point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def clear_file_flags(path):
    """Drop immutable/append-only flags (containers' var/empty has them) so rmtree can go on."""
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            flags = bytearray(8)
            fcntl.ioctl(descriptor, FS_IOC_GETFLAGS, flags)
            value = int.from_bytes(flags, sys.byteorder) & ~(FS_IMMUTABLE_FL | FS_APPEND_FL)
            fcntl.ioctl(descriptor, FS_IOC_SETFLAGS, value.to_bytes(8, sys.byteorder))
        finally:
            os.close(descriptor)


def remove_tree(path):
    def retry_after_clearing_flags(function, failed_path, _error):
        clear_file_flags(os.path.dirname(failed_path))
        clear_file_flags(failed_path)
        function(failed_path)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=retry_after_clearing_flags)


def read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return [part.decode(errors="replace") for part in stream.read().split(b"\0")]
    except OSError:
        return []


def kill_stragglers(lab):
    """Anything else still living in the lab (e.g. after a lost state file)."""
    for _attempt in range(3):
        stragglers = lab_processes(lab)
        if not stragglers:
            return
        for pid in stragglers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def remove_network(lab, state):
    for name in sorted(set(state.get("netns", {})) | set(lab_netns_names(lab))):
        run([IP, "netns", "del", name], check=False)
    links = set(state.get("links", [])) | set(lab_links(lab))
    for name in sorted(links - {lab.bridge}) + sorted(links & {lab.bridge}):
        run([IP, "link", "del", name], check=False)
    # veth pairs vanish once the kernel has freed their namespace
    deadline = time.monotonic() + 3.0
    while lab_links(lab) and time.monotonic() < deadline:
        time.sleep(0.05)


def remove_files(lab):
    for point in mounts_under(lab.dir):
        run(["/usr/bin/umount", "--lazy", point], check=False)
    if mounts_under(lab.dir):
        return  # never delete across a mount point; reported by leftovers()
    remove_tree(lab.dir)


def leftovers(lab):
    found = [f"netns {name}" for name in lab_netns_names(lab)]
    found += [f"link {name}" for name in lab_links(lab)]
    found += [f"process {pid} ({' '.join(read_cmdline(pid))[:60]})"
              for pid in lab_processes(lab)]
    found += [f"cgroup {path}" for path in lab_cgroups(lab)]
    found += [f"mount {point}" for point in mounts_under(lab.dir)]
    if os.path.lexists(lab.dir):
        found.append(f"state dir {lab.dir}")
    return found


# Every booted lab host's systemd, journald and logind (and each systemd guest) hold inotify
# instances of the machine's root user: three labs of three hosts pass the kernel's default of 128,
# and the next host's systemd dies with "Too many open files".
INOTIFY_INSTANCES = ("/proc/sys/fs/inotify/max_user_instances", 1024)


def raise_inotify_limit():
    """Raise the machine's inotify instance limit to INOTIFY_INSTANCES when it is lower."""
    path, wanted = INOTIFY_INSTANCES
    with open(path, encoding="ascii") as current:
        if int(current.read()) >= wanted:
            return
    with open(path, "w", encoding="ascii") as limit:
        limit.write(str(wanted))
