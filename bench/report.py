"""Tables and target checks, printed as plain text."""


def table(headers, rows):
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]

    def line(values):
        return (
            "| "
            + " | ".join(
                value.ljust(width) if i == 0 else value.rjust(width)
                for i, (value, width) in enumerate(zip(values, widths, strict=True))
            )
            + " |"
        )

    print(line([str(h) for h in headers]))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in cells:
        print(line(row))
    print()


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def ratio(value, baseline):
    return f"{value / baseline:.2f}x" if baseline else "-"


class Targets:
    """Each target with what was measured; missed ones say by how much."""

    def __init__(self):
        self.rows = []

    def at_least(self, name, value, goal, unit=""):
        met = value >= goal
        short = "" if met else f" (short by {(goal - value) / goal:.0%})"
        self.rows.append((name, f"{value:,.2f}{unit}", f"≥ {goal:,}{unit}", _verdict(met) + short))

    def below(self, name, value, goal, unit=""):
        met = value < goal
        over = "" if met else f" (over by {(value - goal) / goal:.0%})"
        self.rows.append((name, f"{value:,.2f}{unit}", f"< {goal:,}{unit}", _verdict(met) + over))

    def check(self, name, met, measured, goal):
        self.rows.append((name, measured, goal, _verdict(met)))

    def print(self, title):
        print(title)
        table(["target", "measured", "goal", "verdict"], self.rows)
        return all(row[3] == "met" for row in self.rows)


def _verdict(met):
    return "met" if met else "MISSED"
