"""The output the suites in scripts/lib share: `ok - NAME` or `not ok - NAME: WHY` per check, then
`N passed, M failed`; a suite exits 1 when any check failed."""


class Results:
    def __init__(self):
        self.passed = self.failed = 0

    def report(self, name, error=None):
        if error is None:
            self.passed += 1
            print(f"ok - {name}", flush=True)
        else:
            self.failed += 1
            print(f"not ok - {name}: {error}", flush=True)

    def summary(self):
        """Prints the totals; returns the exit status."""
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


RESULTS = Results()
report = RESULTS.report
summary = RESULTS.summary
