"""The etcd backup node agent (snapshot, encrypt, upload, prune)."""
# placeholder: the agent comes from branch b1
