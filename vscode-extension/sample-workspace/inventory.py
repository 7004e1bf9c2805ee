"""A small inventory module to try stackcoder on: type below a function, select code, or chat."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0
    tags: list[str] = field(default_factory=list)

    def total_value(self) -> float:
        return self.price * self.quantity


class Inventory:
    def __init__(self) -> None:
        self.items: dict[str, Item] = {}

    def add(self, item: Item) -> None:
        if item.name in self.items:
            self.items[item.name].quantity += item.quantity
        else:
            self.items[item.name] = item

    def remove(self, name: str, quantity: int) -> None:
        item = self.items[name]
        if quantity > item.quantity:
            raise ValueError(f"only {item.quantity} of {name} in stock")
        item.quantity -= quantity

    def total_value(self) -> float:
        return sum(item.total_value() for item in self.items.values())

    def with_tag(self, tag: str) -> list[Item]:
        # Try it: place the cursor at the end of this line and wait for a suggestion.
        
