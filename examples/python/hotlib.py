"""The hot function of cpu_hotspot.py, in a module of its own."""


def checksum(seed, steps=1_000_000):
    total = seed
    for i in range(steps):
        total = (total * 31 + i) % 1_000_003
    return total


def tidy(values):
    return sorted(values)
