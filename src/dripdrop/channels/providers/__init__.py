"""One module per provider; each registers itself with dripdrop.channels.registry."""
