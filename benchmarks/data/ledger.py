"""A small ledger of shared expenses, written for the typing-session benchmark (never published,
so no model has seen it)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal


@dataclass(frozen=True)
class Expense:
    payer: str
    amount: Decimal
    shares: dict[str, int]
    note: str = ""


@dataclass
class Ledger:
    members: list[str]
    expenses: list[Expense] = field(default_factory=list)

    def add(self, payer: str, amount: str, shares: dict[str, int] | None = None, note: str = "") -> Expense:
        if payer not in self.members:
            raise KeyError(f"{payer} is not a member of this ledger")
        split = shares or {member: 1 for member in self.members}
        unknown = set(split) - set(self.members)
        if unknown:
            raise KeyError(f"unknown members: {', '.join(sorted(unknown))}")
        expense = Expense(payer, Decimal(amount), split, note)
        self.expenses.append(expense)
        return expense

    def balances(self) -> dict[str, Decimal]:
        """What each member is owed (positive) or owes (negative), to the cent."""
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for expense in self.expenses:
            weight = sum(expense.shares.values())
            totals[expense.payer] += expense.amount
            for member, share in expense.shares.items():
                part = (expense.amount * share / weight).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
                totals[member] -= part
        return {member: totals[member] for member in self.members}

    def settle(self) -> list[tuple[str, str, Decimal]]:
        """Transfers (from, to, amount) that bring every balance to zero, largest debts first."""
        balances = self.balances()
        debtors = sorted((b, m) for m, b in balances.items() if b < 0)
        creditors = sorted(((b, m) for m, b in balances.items() if b > 0), reverse=True)
        transfers = []
        i = j = 0
        while i < len(debtors) and j < len(creditors):
            debt, debtor = debtors[i]
            credit, creditor = creditors[j]
            amount = min(-debt, credit)
            transfers.append((debtor, creditor, amount))
            debtors[i] = (debt + amount, debtor)
            creditors[j] = (credit - amount, creditor)
            if debtors[i][0] == 0:
                i += 1
            if creditors[j][0] == 0:
                j += 1
        return transfers

    def report(self) -> str:
        lines = [f"{len(self.expenses)} expenses among {len(self.members)} members"]
        for member, balance in sorted(self.balances().items()):
            sign = "is owed" if balance >= 0 else "owes"
            lines.append(f"  {member:<12} {sign} {abs(balance):>8}")
        return "\n".join(lines)
