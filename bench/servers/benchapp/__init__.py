"""The model every Django contender of the benchmark mirrors, and the trigger endpoint."""
