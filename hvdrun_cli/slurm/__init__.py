"""Slurm support: the sbatch renderer, the client-tool wrappers and the record of submitted jobs."""
