"""Reading other hosts over ssh: destinations, the transport, the remote collector and the parallel read."""
