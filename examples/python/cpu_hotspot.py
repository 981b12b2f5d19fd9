"""CPU-bound, most of it in one function of an imported module: `python3 cpu_hotspot.py [TASKS]`.

hotlib.checksum takes nearly all the CPU; the rest (building the list, sorting it) is short.
Where-in-the-code tests expect the top cpu hotspot to be checksum in hotlib.py."""
import sys

import hotlib

tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 8


def main():
    results = [hotlib.checksum(seed) for seed in range(tasks)]
    print(f"cpu_hotspot: {len(hotlib.tidy(results))} checksums")


main()
