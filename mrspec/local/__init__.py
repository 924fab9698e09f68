"""The local engine: run a whole job on this machine with the runtime task code."""
