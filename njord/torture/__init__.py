"""`njord torture` (issue 21): a session against a faulty simulator, killed at seeded
instants and carried on, then checked against the venue and an uninterrupted run.

- `plan`: a seed's fault plan and kill instants, drawn from `random.Random(seed)` alone;
- `venues`: what the venue says it received and executed (the paper broker's journal, or
  the simulator's own order and trade log), behind one interface;
- `invariants`: the named checks of a finished seed;
- `seed`: one seed run end to end; `report`: many seeds summed up.
"""
