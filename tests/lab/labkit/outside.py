"""The outside: a namespace on the lab bridge with an HTTP responder (a stand-in for the
world beyond the hosts' uplink)."""

import os
import signal
import socket
import subprocess

from labkit.common import HOST_PYTHON, LAB_SCRIPTS, NSENTER
from labkit.hosts import make_eth1_segment, make_namespace_on_bridge
from labkit.kernel import process_record, send_signal, wait_for_exit
from labkit.state import save_state


def start_outside(lab, state):
    make_namespace_on_bridge(lab, state, lab.outside_netns, lab.outside_veth, lab.outside_address)
    make_eth1_segment(lab)
    with open(lab.path("outside.log"), "ab") as log:
        # nsenter --net only: a copy of the root mount namespace would pin other labs' netns
        process = subprocess.Popen(
            [NSENTER, f"--net=/run/netns/{lab.outside_netns}", "--", HOST_PYTHON,
             os.path.join(LAB_SCRIPTS, "outside_http.py"), "--bind", lab.outside_address,
             "--port", "80"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    state["outside"] = process_record(process.pid)
    save_state(lab, state)


def outside_answer(lab, timeout=0.5):
    try:
        with socket.create_connection((lab.outside_address, 80), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := connection.recv(4096):
                answer += chunk
    except OSError:
        return None
    return answer.decode("latin-1")


def stop_outside(state):
    outside = state.get("outside")
    send_signal(outside, signal.SIGTERM)
    if wait_for_exit([outside], 2.0):
        send_signal(outside, signal.SIGKILL)
        wait_for_exit([outside], 1.0)
