"""Versions of the node packages provision pins besides kubelet, kubeadm and kubectl.

containerd.io comes from Docker's apt repository, which keeps every release: unpinned, each
new droplet would install whatever is newest that day, and nodes of one cluster would differ.

containerd's RELEASES.md ("Kubernetes Support", read at containerd/containerd 301026e,
2026-08) recommends 2.3.0+ or 2.2.0+ for Kubernetes 1.36 and 2.2.0+ for 1.35; its release
table gives 2.3 long-term support until April 2028, while 2.2 ended in November 2026. 2.3.4
is the newest 2.3 patch tagged there. The bootstrap script installs the repository's build
of exactly this upstream version (``containerd.io=2.3.4-<revision>``) and holds it.
"""

from __future__ import annotations

CONTAINERD = "2.3.4"
