"""The key pair etcd backups are encrypted to: made by provision, kept with the CA.

The nodes hold only the public half (``recipient.pem`` in kube-system/provision-backup):
a stolen node or bucket opens no snapshot. The private half stays with the cluster's other
secrets (the work folder's ``secrets/``, 0600, and the sealed copy beside remote state),
where a restore will look for it.
"""

from __future__ import annotations

from provisioner.bootstrap.pki import ClusterSecrets

KEY_BITS = 3072


def new_backup_key() -> bytes:
    """A fresh RSA 3072 private key, PEM (PKCS#8, unencrypted: the folder is 0600)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def recipient_pem(private_pem: bytes) -> bytes:
    """The public half as SubjectPublicKeyInfo PEM (what the agent encrypts to)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def recipient_of(secrets: ClusterSecrets) -> bytes | None:
    """The environment's recipient public key, or None when none was made yet."""
    return recipient_pem(secrets.backup_key) if secrets.backup_key else None
