"""Code that runs on the nodes. Each module here is shipped verbatim in user-data, so it
imports nothing from provisioner and only the standard library plus what the node installs."""
