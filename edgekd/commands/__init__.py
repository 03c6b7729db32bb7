"""What each verb of the CLI does, once cli.py has parsed its options into a settings object.

One module per verb or group (distill, compare, export, bench, teacher, data, doctor); cli.py only wires
click to them.  This floor sits just below the CLI: it may import every floor beneath it, nothing imports it
but cli.py.
"""
