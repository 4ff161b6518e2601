"""Which split and shard each file goes to, the shard counts, and the plan's sample."""
