"""Real network namespaces for partition tests: one namespace per broker,
each joined by a veth pair to a bridge in the test's own namespace, so the
test reaches every broker and a link can be dropped to cut one off."""

import random
import subprocess


def sh(*argv):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {proc.returncode}: {proc.stderr.strip()}")


def add_bridge(bridge, ip):
    """A bridge in this namespace with address `ip`/24."""
    sh("ip", "link", "add", bridge, "type", "bridge")
    sh("ip", "addr", "add", f"{ip}/24", "dev", bridge)
    sh("ip", "link", "set", bridge, "up")


def add_namespace(ns, bridge, host_link, peer_link, ip):
    """Network namespace `ns` with address `ip`/24 on a veth pair whose
    `host_link` end is a port of `bridge`."""
    sh("ip", "netns", "add", ns)
    sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", host_link, "type", "veth", "peer", "name", peer_link)
    sh("ip", "link", "set", peer_link, "netns", ns)
    sh("ip", "link", "set", host_link, "master", bridge)
    sh("ip", "link", "set", host_link, "up")
    sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", peer_link)
    sh("ip", "netns", "exec", ns, "ip", "link", "set", peer_link, "up")


class Network:
    def __init__(self, size):
        self.tag = f"{random.randrange(1 << 16):04x}"
        self.subnet = f"10.{random.randrange(64, 250)}.{random.randrange(1, 250)}"
        self.size = size
        self.bridge = f"gb{self.tag}"
        add_bridge(self.bridge, f"{self.subnet}.254")
        for n in range(1, size + 1):
            add_namespace(self.namespace(n), self.bridge, self.link(n), f"gp{self.tag}{n}", self.ip(n))

    def namespace(self, n):
        return f"g{self.tag}n{n}"

    def link(self, n):
        return f"gv{self.tag}{n}"

    def ip(self, n):
        return f"{self.subnet}.{n}"

    def wrap(self, n, argv):
        """`argv` run inside broker n's namespace."""
        return ["ip", "netns", "exec", self.namespace(n), *argv]

    def cut(self, n):
        """Drops broker n's only link: nobody reaches it, it reaches nobody."""
        sh("ip", "link", "set", self.link(n), "down")

    def heal(self, n):
        sh("ip", "link", "set", self.link(n), "up")

    def close(self):
        for n in range(1, self.size + 1):
            subprocess.run(["ip", "netns", "del", self.namespace(n)], capture_output=True)
            subprocess.run(["ip", "link", "del", self.link(n)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
