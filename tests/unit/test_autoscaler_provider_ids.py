"""The node's providerID the cluster-autoscaler sends is ``digitalocean://<droplet id>``
(the DigitalOcean cloud controller manager sets it and reads it back,
digitalocean/digitalocean-cloud-controller-manager do/droplets.go
``dropletIDFromProviderID``, "format should be: digitalocean://12345"); only ASCII digits
are a droplet id."""

from __future__ import annotations

from provisioner.autoscaler.groups import droplet_id


def test_only_ascii_digits_are_a_droplet_id() -> None:
    assert droplet_id("digitalocean://123456") == 123456
    for odd in ("digitalocean://\u0661\u0662\u0663", "digitalocean://12\u00b3",
                "digitalocean://\uff11\uff12", "digitalocean://12\n", "digitalocean://",
                "digitalocean://-1", "digitalocean://1_000", "aws://123", "123"):
        assert droplet_id(odd) is None, odd
