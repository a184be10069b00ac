"""``hvdjob smoke``: run any job spec briefly on this machine and check that it really trains.

A spec written for a cluster (hosts, hostfile, Slurm, mpirun) is rewritten for the box the smoke
runs on (:mod:`.rewrite`, sized by :mod:`.box`), launched through the same planner and executor as
``hvdjob run`` (:mod:`.launch`, orchestrated by :mod:`.runner`), and what the ranks left behind
(:mod:`.evidence`) is judged by pure checks (:mod:`.checks`) into verdicts that print as lines,
JSON or JUnit XML (:mod:`.junit`).
"""
