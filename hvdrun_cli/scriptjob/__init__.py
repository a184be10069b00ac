"""Script jobs from the command line: ``hvdjob run --np 2 train.py ARGS`` without a spec file.

What a file given on the command line is (:mod:`.files`), which framework a script uses
(:mod:`.detect`), and the spec such a run is equivalent to (:mod:`.document`).
"""
