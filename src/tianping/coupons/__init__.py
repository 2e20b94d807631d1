"""Red packets (platform coupons): issue, redeem, and the backstop when an order is returned."""
